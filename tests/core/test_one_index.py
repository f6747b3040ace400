"""The shards merged into one Lucene index (``--lucene-ranges``) change cost, never results.

Against the same index searched shard index by shard index: same documents, same float32 scores,
same order, for every shard list (repeated, reversed, empty, all), k from 1 to 1000 on documents
whose scores are all tied (block-max pruning acts and must respect the ties), both visiting
orders and Java threads, the per-query path, and every router through the pipeline. And a one
index that does not hold the shards' documents in order is refused, never searched.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from selectsearch.errors import CorruptIndexError, IndexExistsError
from selectsearch.index.integrity import quick_check, verify_index
from selectsearch.index.ranges import RANGES_DIR, add_lucene_ranges
from selectsearch.index.sharded import ShardedIndex
from selectsearch.lucene import searcher as searcher_module
from selectsearch.lucene.searcher import ShardedLuceneSearcher
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Query

from .conftest import TOPICS
from .test_batch_engine import SHARD_LISTS, TEXTS, _batched, _per_query, _same, tie_indexes  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ranged(tmp_path_factory: pytest.TempPathFactory, tie_indexes: dict[str, Path],  # noqa: F811
           tiny_index: Path) -> dict[str, Path]:
    """Copies of the tied 4-shard index and of the tiny k-means index, with their one index."""
    out = {}
    for name, source in (("ties", tie_indexes["k4"]), ("tiny", tiny_index)):
        copy = tmp_path_factory.mktemp("ranged") / name
        shutil.copytree(source, copy)
        add_lucene_ranges(copy)
        out[name] = copy
    return out


def _both(path: Path, **kw: object) -> tuple[ShardedLuceneSearcher, ShardedLuceneSearcher]:
    index = ShardedIndex.open(path)
    shards, one = index.lucene(one_index=False, **kw), index.lucene(**kw)  # type: ignore[arg-type]
    assert shards.one_index is None and one.one_index == path / RANGES_DIR
    return _batched(shards), _batched(one)


def test_one_index_returns_what_the_shard_indexes_return(ranged: dict[str, Path]) -> None:
    shards, one = _both(ranged["ties"])
    texts = ["alpha", "juliet", "india juliet", "alpha bravo charlie", "golf hotel india juliet alpha", "echo echo",
             "", "zzz"]
    lists: list[list[int] | None] = [None, [1, 3], [2], [0, 1, 2], [3, 0], [2, 2, 1], [], [0, 1, 2, 3], [0, 3]]
    for k in (1, 2, 5, 10, 11, 100, 1000):
        for order in (1, 0):
            for engine in (shards, one):
                engine._batch.setOrder(order)
            for s in lists:
                want = shards.batch_search(texts, k, [s] * len(texts))
                got = one.batch_search(texts, k, [s] * len(texts))
                assert all(_same(a, b) for a, b in zip(got, want, strict=True)), (k, s, order)
    for engine in (shards, one):
        engine._batch.setOrder(1)
    # Java threads: the one slice of an all-shards query is cut so that each thread scores a part
    _, threaded = _both(ranged["ties"], threads=2)
    for s in lists:
        for k in (1, 10, 1000):
            want = shards.batch_search(texts, k, [s] * len(texts))
            got = threaded.batch_search(texts, k, [s] * len(texts))
            assert all(_same(a, b) for a, b in zip(got, want, strict=True)), (k, s, "threads")
    deep = one.search("alpha bravo", 1000)
    assert len(np.unique(deep[1])) * 3 <= len(deep[1])  # the fixture is all ties: the cut decides
    # the per-query path (no javac) on the one index: a filter on the shard field, same answers
    with _per_query(one):
        for s in lists:
            for k in (1, 10, 1000):
                assert all(_same(one.search(t, k, s), shards.search(t, k, s)) for t in texts), (k, s)


@pytest.mark.parametrize("few", [0.0, 0.5])
def test_threads_and_mixed_batches_on_the_one_index(ranged: dict[str, Path], few: float,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """few: the share of shards up to which a query goes to the shard indexes (0.5: a batch whose
    queries go to both engines, joined back in order)."""
    monkeypatch.setattr(searcher_module, "SHARD_INDEXES_UP_TO", few)
    shards, _ = _both(ranged["tiny"])
    _, one = _both(ranged["tiny"], threads=2)
    assert (one._batch_shards is not None) is (few > 0)
    texts = [t for t in TEXTS for _ in SHARD_LISTS]
    lists = [s for _ in TEXTS for s in SHARD_LISTS]
    for k in (3, 10, 1000):
        want = shards.batch_search(texts, k, lists)
        assert all(_same(a, b) for a, b in zip(one.batch_search(texts, k, lists), want, strict=True)), k
        assert all(_same(one.search(t, k, s), w) for t, s, w in zip(texts, lists, want, strict=True)), k


@pytest.mark.parametrize("route", ["all", "cori@2", "cori@1", "taily@2", "redde@2", "ranks", "random@3"])
def test_every_router_gets_the_same_hits_from_the_one_index(route: str, ranged: dict[str, Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(searcher_module, "SHARD_INDEXES_UP_TO", 0.25)  # one shard of 4: the shard indexes
    queries = [Query(f"q{i}", t) for i, t in enumerate(TEXTS + [" ".join(w[:3]) for w in TOPICS.values()])]
    with_one = SelectiveSearcher.open(ranged["tiny"], route)
    _batched(with_one.lucene)
    assert with_one.lucene.one_index is not None
    without = SelectiveSearcher.open(ranged["tiny"], route)
    without.engines._lucene = ShardedIndex.open(ranged["tiny"]).lucene(one_index=False)  # type: ignore[attr-defined]
    for k in (10, 1000):
        a, b = with_one.batch_search(queries, k=k), without.batch_search(queries, k=k)
        for q in queries:  # batches (routed in Python) and one query at a time (routed in the engine)
            assert [(h.doc_id, h.score, h.shard_id) for h in a[q.query_id].hits] == \
                [(h.doc_id, h.score, h.shard_id) for h in b[q.query_id].hits]
            one_q = with_one.batch_search([q], k=k)[q.query_id]
            assert [(h.doc_id, h.score) for h in one_q.hits] == [(h.doc_id, h.score) for h in b[q.query_id].hits]


def test_a_one_index_holding_other_documents_is_refused(ranged: dict[str, Path],
                                                        tmp_path: Path) -> None:
    from selectsearch.lucene.indexer import merge_shard_indexes

    copy = tmp_path / "idx"
    shutil.copytree(ranged["tiny"], copy)
    index = ShardedIndex.open(copy)
    # the same documents, shards in another order: same count, wrong places
    swapped = tmp_path / "swapped"
    merge_shard_indexes([index.shard_path(s) / "lucene" for s in reversed(index.lucene_shards)], swapped)
    shutil.rmtree(copy / RANGES_DIR)
    shutil.copytree(swapped, copy / RANGES_DIR)
    with pytest.raises(CorruptIndexError, match=r"holds .* at doc"):
        ShardedIndex.open(copy).lucene()
    assert ShardedIndex.open(copy).lucene(one_index=False).one_index is None  # the shards still search
    problems, _ = verify_index(copy)
    assert any(p.file == RANGES_DIR and "the shards hold" in p.message for p in problems)
    # recorded for other shards than the manifest's
    manifest = index.manifest
    assert manifest.lucene_ranges is not None
    bad = dataclasses.replace(manifest.lucene_ranges, shards=list(reversed(manifest.lucene_ranges.shards)))
    dataclasses.replace(manifest, lucene_ranges=bad).write(copy)
    with pytest.raises(CorruptIndexError, match="was merged from shards"):
        ShardedIndex.open(copy).lucene()
    # and a one index that is gone: refused at open, with the folder named
    manifest.write(copy)
    shutil.rmtree(copy / RANGES_DIR)
    assert any(p.file == RANGES_DIR for p in quick_check(copy, manifest))
    with pytest.raises(CorruptIndexError, match=RANGES_DIR):
        ShardedIndex.open(copy)


def test_adding_it_twice_needs_overwrite_and_a_healthy_one_verifies(ranged: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "idx"
    shutil.copytree(ranged["tiny"], copy)
    with pytest.raises(IndexExistsError, match="--overwrite"):
        add_lucene_ranges(copy)
    add_lucene_ranges(copy, overwrite=True)
    manifest = ShardedIndex.open(copy).manifest
    assert manifest.lucene_ranges is not None and manifest.backends_added
    assert [a["backend"] for a in manifest.backends_added].count("lucene-ranges") == 2
    assert not (copy / f"{RANGES_DIR}.partial").exists()
    assert verify_index(copy)[0] == []


def test_the_cli_builds_and_adds_it(tiny_beir: Path, tmp_path: Path) -> None:
    out = tmp_path / "built"
    cmd = [sys.executable, "-m", "selectsearch", "-q", "index", str(tiny_beir), "--out", str(out), "--shards", "3",
           "--partitioner", "random", "--threads", "1", "--lucene-ranges"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["lucene_ranges"] is True
    assert ShardedIndex.open(out).lucene().one_index == out / RANGES_DIR
    again = subprocess.run([sys.executable, "-m", "selectsearch", "-q", "index", str(tiny_beir), "--out", str(out),
                            "--add-backend", "lucene-ranges"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--overwrite" in again.stderr
    for extra, says in ((["--backend", "faiss"], "builds none"), (["--add-backend", "faiss"], "new build")):
        refused = subprocess.run([*cmd[:7], str(tmp_path / "other"), *cmd[8:], *extra], capture_output=True,
                                 text=True, timeout=600)
        assert refused.returncode == 2 and says in refused.stderr and not (tmp_path / "other").exists(), extra
