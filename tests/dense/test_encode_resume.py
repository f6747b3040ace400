"""The embedding cache resumes an interrupted encoding instead of starting again."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from selectsearch.encode import EmbeddingCache


class FakeEncoder:
    """Deterministic 'embeddings' (text length and index) that count what they encode."""

    name = "fake"
    dim = 2
    max_length = 8
    precision = "fp32"
    pooling = "mean"
    normalize = False

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded.extend(texts)
        return np.array([[len(t), int(t.split("-")[1])] for t in texts], np.float32)


class StopHereError(Exception):
    pass


def texts(n: int, fail_at: int | None = None) -> Iterator[str]:
    for i in range(n):
        if i == fail_at:
            raise StopHereError
        yield f"doc-{i}"


def test_interrupted_build_resumes_where_it_stopped(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c")
    first = FakeEncoder()
    with pytest.raises(StopHereError):
        cache.build(first, texts(10, fail_at=7), n=10, fingerprint="fp", chunk=3)  # type: ignore[arg-type]
    assert not cache.matches(model="fake", fingerprint="fp", n=10)  # never looks complete
    assert len(first.encoded) == 6  # two full chunks were written before the failure

    second = FakeEncoder()
    matrix = cache.build(second, texts(10), n=10, fingerprint="fp", chunk=3)  # type: ignore[arg-type]
    assert second.encoded == [f"doc-{i}" for i in range(6, 10)]  # only the rest
    assert np.array_equal(np.asarray(matrix)[:, 1], np.arange(10))
    assert cache.matches(model="fake", fingerprint="fp", n=10)
    assert not cache.progress_path.exists()


def test_partial_of_another_corpus_is_not_resumed(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c")
    with pytest.raises(StopHereError):
        cache.build(FakeEncoder(), texts(10, fail_at=7), n=10, fingerprint="fp", chunk=3)  # type: ignore[arg-type]
    again = FakeEncoder()
    cache.build(again, texts(10), n=10, fingerprint="other", chunk=3)  # type: ignore[arg-type]
    assert len(again.encoded) == 10


def test_partial_of_another_precision_is_not_resumed(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c")
    with pytest.raises(StopHereError):
        cache.build(FakeEncoder(), texts(10, fail_at=7), n=10, fingerprint="fp", chunk=3)  # type: ignore[arg-type]
    bf16 = FakeEncoder()
    bf16.precision = "bf16"
    cache.build(bf16, texts(10), n=10, fingerprint="fp", chunk=3)  # type: ignore[arg-type]
    assert len(bf16.encoded) == 10  # fp32 rows are never mixed into a bf16 matrix
    assert cache.matches(model="fake", fingerprint="fp", n=10, precision="bf16")
    assert not cache.matches(model="fake", fingerprint="fp", n=10, precision="fp32")


def test_progress_record_from_before_precision_resumes_an_fp32_build(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c")
    with pytest.raises(StopHereError):
        cache.build(FakeEncoder(), texts(10, fail_at=7), n=10, fingerprint="fp", chunk=3)  # type: ignore[arg-type]
    record = json.loads(cache.progress_path.read_text())
    del record["precision"]  # as written by earlier releases
    cache.progress_path.write_text(json.dumps(record))
    again = FakeEncoder()
    cache.build(again, texts(10), n=10, fingerprint="fp", chunk=3)  # type: ignore[arg-type]
    assert again.encoded == [f"doc-{i}" for i in range(6, 10)]
