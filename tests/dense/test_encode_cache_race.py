"""Two processes building the same embedding cache entry at once: both get, and leave, a complete
and correct matrix; a reader polling meanwhile never sees a half-written entry."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from selectsearch.encode import EmbeddingCache

N = 48


class SlowEncoder:
    """Deterministic rows ``[i, len(text)]`` for ``doc-<i>``, slow enough for builds to overlap."""

    name = "slow"
    dim = 2
    max_length = 8
    precision = "fp32"
    pooling = "mean"
    normalize = False

    def __init__(self, log: Path) -> None:
        self.log = log

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self.log.open("a") as f:  # who encoded how many texts
            f.write(f"{os.getpid()} {len(texts)}\n")
        time.sleep(0.01)
        return np.array([[int(t.split("-")[1]), len(t)] for t in texts], np.float32)


def texts() -> Iterator[str]:
    return (f"doc-{i}" for i in range(N))


EXPECTED = np.array([[i, len(f"doc-{i}")] for i in range(N)], np.float32)


def _build(folder: str, start: Any, results: Any) -> None:
    try:
        start.wait()
        encoder = SlowEncoder(Path(folder).with_name("encoded.log"))
        matrix = EmbeddingCache(Path(folder)).build(encoder, texts(), n=N, fingerprint="fp", chunk=4)  # type: ignore[arg-type]
        results.put(("ok", bool(np.array_equal(np.asarray(matrix), EXPECTED))))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def _read_while(cache: EmbeddingCache, writers: list[Any]) -> list[str]:
    """Poll the entry as a user of the cache would; return what was wrong."""
    problems = []
    while any(w.is_alive() for w in writers):
        try:
            if cache.matches(model="slow", fingerprint="fp", n=N):
                got = np.array(cache.load())
                if not np.array_equal(got, EXPECTED):
                    problems.append(f"incomplete or wrong matrix: {got[:, 0].tolist()}")
        except Exception as exc:  # a half-written meta.json, a vanished file, ...
            problems.append(repr(exc))
        time.sleep(0.001)
    return problems


@pytest.mark.parametrize("round_", range(4))
def test_two_processes_build_the_same_entry(tmp_path: Path, round_: int) -> None:
    ctx = mp.get_context("fork")  # the fake encoder needs no torch, and fork starts in milliseconds
    start, results = ctx.Barrier(2), ctx.Queue()
    folder = tmp_path / "entry"
    writers = [ctx.Process(target=_build, args=(str(folder), start, results)) for _ in range(2)]
    for w in writers:
        w.start()
    problems = _read_while(EmbeddingCache(folder), writers)
    for w in writers:
        w.join(30)
    outcomes = [results.get(timeout=5) for _ in writers]
    assert outcomes == [("ok", True), ("ok", True)], outcomes
    assert not problems, problems[:3]
    cache = EmbeddingCache(folder)
    assert cache.matches(model="slow", fingerprint="fp", n=N)
    assert np.array_equal(np.asarray(cache.load()), EXPECTED)
    assert not (folder / "embeddings.f32.partial").exists() and not cache.progress_path.exists()
    # one process encoded the corpus once; the other waited and took its entry
    encoded: dict[str, int] = {}
    for line in (tmp_path / "encoded.log").read_text().split("\n")[:-1]:
        pid, count = line.split()
        encoded[pid] = encoded.get(pid, 0) + int(count)
    assert list(encoded.values()) == [N]
