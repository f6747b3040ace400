"""Static (model2vec) query encoders: distillation, model folders, TextEncoder dispatch, short names, CLI."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from selectsearch.cli import main
from selectsearch.encode import TextEncoder, corpus_cache
from selectsearch.errors import ModelError
from selectsearch.models import static_encoder as se
from selectsearch.models.encoder import DEFAULT_ENCODER, tiny_encoder
from selectsearch.models.static_encoder import (
    DEFAULT_RECIPE,
    MANIFEST,
    STATIC_ENCODERS,
    StaticEncoder,
    StaticRecipe,
    distill_static_encoder,
    is_static_encoder,
)

TEXTS = ["rocket orbit launch", "flour sugar butter", "stock market crash", "rocket", "🚀🚀"]


@pytest.fixture(scope="module")
def transformer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (the packaged tokenizer) saved as a transformers folder."""
    tokenizer, model = tiny_encoder(hidden_size=32, layers=1, heads=2, seed=0)
    folder = tmp_path_factory.mktemp("tiny-transformer")
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory: pytest.TempPathFactory, transformer_dir: Path) -> Path:
    """The tiny BERT distilled by model2vec (the real distillation path, a small model)."""
    out = tmp_path_factory.mktemp("static") / "tiny-static"
    return distill_static_encoder(out, StaticRecipe(source=str(transformer_dir), pca_dims=16), progress=False,
                                  command="test")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SELECTSEARCH_STATIC_ENCODERS", raising=False)  # the cache's own static-encoders/


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_round_trip_through_the_model_folder(static_dir: Path, tmp_path: Path) -> None:
    enc = StaticEncoder(static_dir)
    vectors = enc.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 16) and vectors.dtype == np.float32 and enc.dim == 16
    np.testing.assert_allclose(np.linalg.norm(vectors[:4], axis=1), 1.0, rtol=1e-5)
    assert not vectors[4].any()  # no known token: the zero vector
    assert enc.encode([]).shape == (0, 16)
    manifest = json.loads((static_dir / MANIFEST).read_text())
    assert manifest["format"] == "static-encoder" and manifest["format_version"] == 1
    assert manifest["recipe"]["pca_dims"] == 16 and manifest["dim"] == 16 and manifest["command"] == "test"
    copy = enc.save(tmp_path / "copy")
    assert not (tmp_path / "copy.partial").exists()
    loaded = TextEncoder(str(copy))
    assert isinstance(loaded, StaticEncoder)
    np.testing.assert_array_equal(loaded.encode(TEXTS), vectors)
    with pytest.raises(ModelError, match="exists"):
        enc.save(copy)
    # it is also a plain model2vec model
    from model2vec import StaticModel

    plain = StaticModel.from_pretrained(copy, force_download=False).encode(TEXTS[:4])
    np.testing.assert_allclose(plain, vectors[:4], rtol=1e-5, atol=1e-6)


class _OneAtATime:
    """Stands in for the encoder's tokenizer: encodes one text at a time and refuses batches
    (``tokenizers`` encodes a batch on its own thread pool, CPU the caller's clock misses)."""

    def __init__(self, tokenizer: object) -> None:
        self.tokenizer = tokenizer
        self.calls = 0

    def encode(self, text: str, **kwargs: object) -> object:
        self.calls += 1
        return self.tokenizer.encode(text, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the static encoder called the tokenizer's {name}")


def test_texts_encode_as_model2vec_encodes_them_on_the_calling_thread(static_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Any number of texts skips model2vec's batch machinery: the vectors must be model2vec's own,
    bit for bit, including truncation, unknown tokens and empty texts, one text or many; and the
    work stays on the calling thread (model2vec and ``encode_batch_fast`` tokenise on Rust
    threads: a router measured by its thread's CPU would look cheaper than it is)."""
    enc = StaticEncoder(static_dir, max_length=12)
    texts = [*TEXTS, "", "   ", "zzzqqqxxj", "rocket " * 40, "Ünïcödé café, naïve résumé!", "a b c " * 30]
    reference = enc.table.encode(texts, max_length=12, show_progress_bar=False, use_multiprocessing=False,
                                 normalize=True)
    one_at_a_time = _OneAtATime(enc._query_tokenizer)
    monkeypatch.setattr(enc, "_query_tokenizer", one_at_a_time)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("model2vec's batch encode was called")

    monkeypatch.setattr(enc.table, "encode", refuse)
    few = enc.encode(texts)
    assert few.dtype == np.float32
    assert np.array_equal(few, reference)
    assert np.array_equal(np.concatenate([enc.encode([t]) for t in texts]), reference)
    many = enc.encode(texts * 20)  # a corpus-sized batch takes the same path
    assert np.array_equal(many, np.tile(reference, (20, 1)))
    monkeypatch.setattr(se, "ENCODE_STEP", 7)  # in steps, with a progress bar: the same rows in order
    assert np.array_equal(enc.encode(texts * 20, progress=True), many)
    assert one_at_a_time.calls > 0  # the non-ASCII texts were tokenised, one at a time


def test_distillation_is_deterministic_and_follows_the_source(static_dir: Path, transformer_dir: Path,
                                                              tmp_path: Path) -> None:
    again = distill_static_encoder(tmp_path / "again", StaticRecipe(source=str(transformer_dir), pca_dims=16),
                                   progress=False)
    np.testing.assert_array_equal(StaticEncoder(again).table.embedding, StaticEncoder(static_dir).table.embedding)
    # bag of tokens: word order does not matter, shared tokens make texts alike
    enc = StaticEncoder(static_dir)
    a, b, c = enc.encode(["rocket orbit", "orbit rocket", "flour sugar"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert a @ b > a @ c
    with pytest.raises(ModelError, match="exists"):
        distill_static_encoder(again, StaticRecipe(source=str(transformer_dir), pca_dims=16), progress=False)


def test_text_encoder_dispatches_on_static_names_only(static_dir: Path, transformer_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_static_encoder(static_dir) and is_static_encoder(str(static_dir))
    assert is_static_encoder("minilm-static")
    for other in (None, DEFAULT_ENCODER, str(transformer_dir), "no-such-encoder"):
        assert not is_static_encoder(other)
    assert type(TextEncoder(str(transformer_dir))) is TextEncoder
    enc = TextEncoder(str(static_dir), max_length=8, batch_size=3)
    assert isinstance(enc, StaticEncoder) and (enc.max_length, enc.batch_size, enc.name) == (8, 3, str(static_dir))
    # the precision a caller asks for is recorded (embedding-cache keys), as for a transformer
    assert enc.precision == "fp32"
    monkeypatch.setenv("SELECTSEARCH_ENCODER_PRECISION", "bf16")
    assert TextEncoder(str(static_dir)).precision == "bf16"
    # max_length truncates as a transformer's does: the tail of a long text counts less
    long = " ".join(["rocket"] * 5 + ["flour"] * 40)
    rocket = enc.encode(["rocket"])[0]
    untruncated = TextEncoder(str(static_dir), max_length=256).encode([long])[0]
    assert enc.encode([long])[0] @ rocket > untruncated @ rocket + 0.1


def test_the_embedding_cache_builds_and_matches_with_a_static_encoder(static_dir: Path) -> None:
    enc = TextEncoder(str(static_dir))
    cache = corpus_cache(enc.name, enc.max_length, "f" * 32)
    built = np.asarray(cache.build(enc, iter(TEXTS), n=len(TEXTS), fingerprint="f" * 32))
    assert cache.matches(model=enc.name, fingerprint="f" * 32, n=len(TEXTS))
    np.testing.assert_array_equal(built, enc.encode(TEXTS))


def test_a_folder_that_is_not_model2vec_or_newer_is_refused(static_dir: Path, tmp_path: Path) -> None:
    import shutil

    newer = tmp_path / "newer"
    shutil.copytree(static_dir, newer)
    manifest = json.loads((newer / MANIFEST).read_text())
    (newer / MANIFEST).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ModelError, match="newer selectsearch"):
        TextEncoder(str(newer))
    with pytest.raises(ModelError, match="not a model2vec folder"):
        StaticEncoder(tmp_path)
    with pytest.raises(ModelError, match="neither a model2vec folder nor one of"):
        StaticEncoder("no-such-encoder")


def test_a_foreign_model2vec_folder_without_our_manifest_works(tmp_path: Path) -> None:
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    from selectsearch.models.encoder import resolve_model_path

    tokenizer = Tokenizer.from_file(str(resolve_model_path(None) / "tokenizer.json"))
    vectors = np.random.default_rng(0).standard_normal((tokenizer.get_vocab_size(), 8)).astype(np.float16)
    # with model2vec's config, and (as sentence-transformers would) with a StaticEmbedding module only
    StaticModel(vectors, tokenizer, config={"model_type": "model2vec"}, normalize=True).save_pretrained(tmp_path / "a")
    StaticModel(vectors, tokenizer, normalize=True).save_pretrained(tmp_path / "b")
    for name in ("a", "b"):
        enc = TextEncoder(str(tmp_path / name))
        assert isinstance(enc, StaticEncoder) and enc.manifest == {} and enc.dim == 8
        assert enc.encode(["rocket orbit"]).dtype == np.float32


def test_the_short_name_resolves_to_a_copy_built_once_without_network(
        transformer_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> None:
    assert STATIC_ENCODERS["minilm-static"] == DEFAULT_RECIPE
    assert StaticRecipe(source=DEFAULT_ENCODER, pca_dims=256, sif_coefficient=1e-4, seed=0) == DEFAULT_RECIPE
    recipe = StaticRecipe(source=str(transformer_dir), pca_dims=8)
    monkeypatch.setitem(STATIC_ENCODERS, "tiny-static", recipe)
    enc = TextEncoder("tiny-static")
    folder = tmp_path / "cache" / "static-encoders" / "tiny-static"
    assert isinstance(enc, StaticEncoder) and enc.folder == folder and enc.dim == 8 and enc.name == "tiny-static"
    assert json.loads((folder / MANIFEST).read_text())["name"] == "tiny-static"
    first = enc.encode(TEXTS)
    # built once: the second use reads the folder
    real = se.distill_static_encoder
    calls: list[object] = []
    monkeypatch.setattr(se, "distill_static_encoder", lambda *a, **k: calls.append(a))
    np.testing.assert_array_equal(TextEncoder("tiny-static").encode(TEXTS), first)
    assert not calls
    # a cached folder of another recipe (e.g. left by an older selectsearch) is rebuilt
    monkeypatch.setattr(se, "distill_static_encoder", real)
    monkeypatch.setitem(STATIC_ENCODERS, "tiny-static", StaticRecipe(source=str(transformer_dir), pca_dims=4))
    assert TextEncoder("tiny-static").dim == 4
    assert not list(folder.parent.glob("*.partial"))


def test_cli_distills_into_a_folder(transformer_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli-static"
    assert main(["-q", "distill-encoder", "--source", str(transformer_dir), "--pca-dims", "8", "--out", str(out)]) == 0
    assert "8 dims" in capsys.readouterr().out and isinstance(TextEncoder(str(out)), StaticEncoder)
    assert main(["-q", "distill-encoder", "--source", str(transformer_dir), "--out", str(out)]) == 2  # exists
    assert main(["-q", "distill-encoder", "--source", str(transformer_dir)]) == 2  # not minilm-static: needs --out
    with pytest.raises(SystemExit):
        main(["-q", "distill-encoder", "--pca-dims", "0", "--out", str(out)])


@pytest.mark.slow
def test_distilling_the_packaged_minilm(tmp_path: Path, no_network: None) -> None:
    """The real thing: the packaged all-MiniLM-L6-v2 (about 30 s of one core), then routing-like similarities."""
    folder = distill_static_encoder(tmp_path / "minilm-static", DEFAULT_RECIPE, progress=False)
    enc = StaticEncoder(folder)
    manifest = enc.manifest
    assert enc.dim == 256 and manifest["vocabulary"] > 29000 and manifest["source"] == DEFAULT_ENCODER
    q, near, far = enc.encode(["vitamin d deficiency and bone fractures", "low vitamin d levels cause fractures",
                               "stock market interest rates"])
    assert q @ near > q @ far + 0.2
