"""Parallel indexing (``--threads N``) gives the serial build's index, on Java threads of this
process's JVM and, without the compiled helper, in worker processes; a shard Lucene cannot index
fails the build with that shard's name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from selectsearch.data import open_corpus
from selectsearch.errors import SelectSearchError
from selectsearch.index.build import BuildConfig, build_index
from selectsearch.index.sharded import ShardedIndex
from selectsearch.search import SelectiveSearcher

QUERIES = {"q1": "rocket orbit", "q2": "flour butter bake", "q3": "stock market bank", "q4": "gene protein study"}
SHARDS = 4
_VOLATILE = ("created", "build_seconds", "command")


def _build(tiny_beir: Path, out: Path, threads: int) -> Path:
    return build_index(open_corpus(tiny_beir), out, BuildConfig(n_shards=SHARDS, partitioner="kmeans", seed=3,
                                                                threads=threads))


def _same_index(got: Path, reference: Path) -> None:
    a, b = ShardedIndex.open(got), ShardedIndex.open(reference)
    for s in range(SHARDS):
        assert a.shard_doc_ids(s) == b.shard_doc_ids(s)
        for name in ("docs/docs.jsonl", "doc_ids.txt", "docs.offsets.npy"):
            assert (a.shard_path(s) / name).read_bytes() == (b.shard_path(s) / name).read_bytes(), name
    ma, mb = a.manifest.to_json(), b.manifest.to_json()
    for m in (ma, mb):
        for key in _VOLATILE:
            m.pop(key)
        m["partition"].pop("fit_seconds")
        m["build"].pop("threads")
    assert ma == mb

    def run(index: Path) -> dict[str, list[tuple[str, float]]]:
        found = SelectiveSearcher.open(index, route="all").batch_search(QUERIES, k=100)
        return {q: [(h.doc_id, h.score) for h in r.hits] for q, r in found.items()}

    assert run(got) == run(reference)


@pytest.fixture(scope="module")
def serial(tiny_beir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tiny_beir, tmp_path_factory.mktemp("serial") / "k4", threads=1)


def test_java_threads_build_the_serial_index(tiny_beir: Path, serial: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import selectsearch.index.index_worker as workers

    def no_workers(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("worker processes were started although the Java helper is available")

    monkeypatch.setattr(workers, "run_workers", no_workers)
    _same_index(_build(tiny_beir, tmp_path / "k4", threads=2), serial)


def test_worker_processes_build_the_serial_index_without_the_helper(tiny_beir: Path, serial: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import selectsearch.lucene.indexer as indexer

    monkeypatch.setattr(indexer, "index_shards_in_jvm", lambda *args, **kwargs: None)  # as without javac
    _same_index(_build(tiny_beir, tmp_path / "k4", threads=2), serial)


def test_a_shard_lucene_cannot_index_names_the_shard(tmp_path: Path) -> None:
    from selectsearch.lucene.indexer import index_shards_in_jvm

    good = tmp_path / "good"
    good.mkdir()
    (good / "docs.jsonl").write_text('{"id": "d1", "contents": "a rocket in orbit", "shard": "0"}\n')
    finished = index_shards_in_jvm([(0, good, tmp_path / "out0"), (7, tmp_path / "missing", tmp_path / "out7")],
                                   threads=2, memory_mb=64)
    assert finished is not None
    with pytest.raises(SelectSearchError, match="shard 007: Lucene could not index it"):
        list(finished)
