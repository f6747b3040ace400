"""Corpus embeddings computed by Ray tasks (issue 21, item 1): the rows of chunks encoded on a
local multi-node Ray cluster are the rows encoded here, in order; a dense build (``--space
dense``) with a :class:`RayExecutor` puts every document in the shard the single-machine build
does; a chunk that cannot be encoded fails the build with the task's own error and leaves no
cache entry that looks complete.

Runs only in a loopback-only network namespace (see tests/conftest.py); ``make test`` does that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from selectsearch.encode import EmbeddingCache, TextEncoder, encode_here
from selectsearch.errors import SelectSearchError
from selectsearch.index.distributed import RayExecutor

pytest.importorskip("ray", reason="Ray is not installed: pip install 'selectsearch[ray]'")

#: documents of SciFact the dense build uses (enough for 4 shards, a few seconds to encode)
DOCS = 300


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(max_length=128, batch_size=32)


@pytest.fixture(scope="module")
def small_corpus(scifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first ``DOCS`` documents of SciFact as a corpus file."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    with (scifact_dir / "corpus.jsonl").open(encoding="utf-8") as src:
        path.write_text("".join(line for _, line in zip(range(DOCS), src, strict=False)), encoding="utf-8")
    return path


def test_chunks_encoded_by_ray_tasks_are_the_rows_encoded_here(ray_cluster: Any, encoder: TextEncoder,
                                                               small_corpus: Path) -> None:
    texts = [json.loads(line)["text"] for line in small_corpus.read_text(encoding="utf-8").splitlines()[:90]]
    chunks = [texts[i:i + 7] for i in range(0, len(texts), 7)]  # more chunks than the tasks in flight
    here = list(encode_here(encoder, chunks))
    there = list(RayExecutor().embed(encoder, chunks))
    assert [len(m) for m in there] == [len(c) for c in chunks]
    # same model, same texts: the same vectors (up to float summation order across thread counts)
    np.testing.assert_allclose(np.vstack(there), np.vstack(here), atol=1e-5)


def _shards(index: Path) -> list[list[str]]:
    return [(d / "doc_ids.txt").read_text(encoding="utf-8").split() for d in sorted((index / "shards").iterdir())]


def test_dense_build_on_ray_puts_documents_where_the_single_machine_build_does(
        ray_cluster: Any, small_corpus: Path, tmp_path: Path) -> None:
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    def config(cache: Path) -> BuildConfig:  # each build its own empty cache: each really encodes
        return BuildConfig(n_shards=4, threads=1, space="dense",
                           partitioner_options={"cache_dir": str(cache), "max_length": 128})

    local = build_index(open_corpus(small_corpus), tmp_path / "local", config(tmp_path / "cache-local"))
    remote = build_index(open_corpus(small_corpus), tmp_path / "ray", config(tmp_path / "cache-ray"),
                         executor=RayExecutor())
    assert _shards(remote) == _shards(local)
    [local_cache] = (tmp_path / "cache-local").iterdir()
    [ray_cache] = (tmp_path / "cache-ray").iterdir()
    np.testing.assert_allclose(EmbeddingCache(ray_cache).load(), EmbeddingCache(local_cache).load(), atol=1e-5)


class _MissingModel:
    """An encoder whose model no node has: every encode task fails."""

    name = "/nonexistent/selectsearch-test-model"
    max_length, batch_size, precision, dim, pooling, normalize = 128, 32, "fp32", 384, "mean", True


def test_a_chunk_that_cannot_be_encoded_fails_cleanly(ray_cluster: Any, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "entry")
    with pytest.raises(SelectSearchError, match="selectsearch-test-model"):
        cache.build(_MissingModel(), (f"text {i}" for i in range(50)), n=50, fingerprint="f" * 64,  # type: ignore[arg-type]
                    chunk=10, encode=RayExecutor(retries=0).embed)
    assert not cache.matches(model=_MissingModel.name, fingerprint="f" * 64, n=50)
    assert not (cache.folder / "embeddings.f32").exists()
