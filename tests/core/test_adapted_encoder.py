"""The static query encoder adapted to an index (``knn.encoder=adapted``, the ``knn`` default)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from selectsearch.encode import TextEncoder
from selectsearch.index.sharded import ShardedIndex
from selectsearch.models.adapted_encoder import MIN_TEXTS, TEXT_CHARS, AdaptRecipe, _ridge, fit_table, recipe_key
from selectsearch.models.static_encoder import MANIFEST, static_encoder_folder
from selectsearch.route.knn import adapted_encoder_folder, document_texts


def _bags(rng: np.random.Generator, n_texts: int, vocabulary: int) -> sp.csr_matrix:
    """Mean-pooling rows of random 3-8 token texts."""
    rows, cols = [], []
    for i in range(n_texts):
        ids = rng.integers(0, vocabulary, rng.integers(3, 9))
        rows += [i] * len(ids)
        cols += ids.tolist()
    counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_texts, vocabulary))
    return sp.csr_matrix(sp.diags(1.0 / np.asarray(counts.sum(axis=1)).ravel()) @ counts)


def test_the_fit_learns_what_a_token_means_in_the_texts_not_alone() -> None:
    """Planted: the teacher's vector of each token is its distilled vector mapped, plus a
    context shift the distilled table cannot know. The fit recovers it; the mapping alone cannot."""
    rng = np.random.default_rng(0)
    vocabulary, dim = 60, 12
    base = rng.standard_normal((vocabulary, 8))
    truth = base @ rng.standard_normal((8, dim)) + 0.8 * rng.standard_normal((vocabulary, dim))
    pool = _bags(rng, 3000, vocabulary)
    table, report = fit_table(pool, pool @ truth, base, lambdas=(0.01, 0.1, 1.0), holdout=0.1, seed=0)
    assert table.shape == (vocabulary, dim)
    best = report["heldout_cosine"][str(report["lambda"])]
    assert best > 0.99 > report["heldout_cosine_mapped_base"]
    assert report["texts"] == 3000 and report["heldout_texts"] == 300


def test_the_conjugate_gradient_solve_is_the_normal_equations_solution() -> None:
    from scipy.sparse.linalg import spsolve

    rng = np.random.default_rng(1)
    vocabulary = 40
    base = rng.standard_normal((vocabulary, 5))
    pool = _bags(rng, 200, vocabulary)
    targets = rng.standard_normal((200, 7))
    table = _ridge(pool, targets, base, 0.1, tol=1e-10)
    projection, *_ = np.linalg.lstsq(pool @ base, targets, rcond=None)
    gram = (pool.T @ pool).tocsc()
    diagonal = gram.diagonal()
    ridge = 0.1 * diagonal[diagonal > 0].mean()
    direct = spsolve((gram + ridge * sp.identity(vocabulary, format="csc")).tocsc(),
                     pool.T @ targets + ridge * (base @ projection))
    np.testing.assert_allclose(table, direct, rtol=1e-6, atol=1e-8)
    # a token no text contains keeps its mapped distilled vector
    unseen = np.zeros((1, vocabulary))
    unseen[0, 3] = 1.0
    pool_without = sp.csr_matrix(pool.multiply(1 - unseen))
    kept = _ridge(pool_without, targets, base, 0.1)
    projection_without, *_ = np.linalg.lstsq(pool_without @ base, targets, rcond=None)
    np.testing.assert_allclose(kept[3], base[3] @ projection_without)


def test_document_texts_are_short_seeded_and_come_two_per_document(tiny_index: Path) -> None:
    index = ShardedIndex.open(tiny_index)
    texts = document_texts(index, 10, seed=0)
    assert texts == document_texts(index, 10, seed=0) != document_texts(index, 10, seed=1)
    assert 10 <= len(texts) <= 20 and all(0 < len(t) <= TEXT_CHARS for t in texts)
    assert len(document_texts(index, 10**6, seed=0)) >= index.n_docs  # never more documents than there are


@pytest.fixture(scope="module")
def index_600(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 documents of the tiny topics: enough texts (1,200) to adapt to."""
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    from .conftest import make_docs, write_beir

    beir = write_beir(tmp_path_factory.mktemp("beir600"), make_docs(n_per_topic=150))
    out = tmp_path_factory.mktemp("idx600") / "k4"
    build_index(open_corpus(beir), out, BuildConfig(n_shards=4, partitioner="kmeans", threads=1))
    return out


def test_a_small_index_keeps_the_base_encoder(tiny_index: Path) -> None:
    index = ShardedIndex.open(tiny_index)
    assert index.n_docs * 2 < MIN_TEXTS
    assert adapted_encoder_folder(index) == static_encoder_folder("minilm-static")


def test_the_adapted_encoder_is_built_once_per_index_and_loads_as_a_static_encoder(index_600: Path) -> None:
    index = ShardedIndex.open(index_600)
    recipe = AdaptRecipe(docs=500)
    folder = adapted_encoder_folder(index, recipe)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["name"] == "adapted" and manifest["recipe"]["docs"] == 500 and manifest["dim"] == 384
    assert manifest["collection"] == str(index_600)
    assert manifest["fit"]["texts"] == 1000 and manifest["fit"]["lambda"] in recipe.lambdas
    stamp = (folder / MANIFEST).stat().st_mtime_ns
    assert adapted_encoder_folder(index, recipe) == folder and (folder / MANIFEST).stat().st_mtime_ns == stamp
    manifest_bytes = (index_600 / "manifest.json").read_bytes()
    assert folder.name == f"adapted-{recipe_key(manifest_bytes, recipe)}"
    assert recipe_key(manifest_bytes, AdaptRecipe(docs=501)) != recipe_key(manifest_bytes, recipe)
    encoder = TextEncoder(str(folder))
    assert getattr(encoder, "static", False)
    vectors = encoder.encode(["rocket orbit launch", "flour sugar butter"])
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the static table lands where the transformer puts the same text
    teacher = TextEncoder().encode(["rocket orbit launch", "flour sugar butter"])
    assert float(np.sum(vectors * teacher, axis=1).min()) > 0.5


def test_cli_builds_the_adapted_encoder_ahead(index_600: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from selectsearch.cli import main

    assert main(["-q", "distill-encoder", "--index", str(index_600)]) == 0
    out = capsys.readouterr().out
    assert "adapted to" in out and "knn.encoder=adapted" in out
    assert Path(out.split(":", 1)[0]) == adapted_encoder_folder(ShardedIndex.open(index_600))  # what knn will use
    assert main(["-q", "distill-encoder", "--index", str(index_600), "--out", str(index_600 / "x")]) == 2
    assert not (index_600 / "x").exists()
    assert main(["-q", "distill-encoder", "--index", str(index_600 / "missing")]) == 2
