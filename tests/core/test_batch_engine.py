"""The Java batch engine changes cost, never results.

Against the per-query path (one pyjnius Lucene search with a shard filter, what runs without a
``javac``) and against one unsharded index: same documents, same float32 scores, same order, for
every router, at k=10 and k=1000, with tied scores cut at k, empty queries, empty and repeated
shard lists, both shard visiting orders and Java threads.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from selectsearch.data import load_qrels, open_corpus
from selectsearch.index.build import BuildConfig, build_index
from selectsearch.index.sharded import ShardedIndex
from selectsearch.lucene import searcher as searcher_module
from selectsearch.lucene.searcher import ShardedLuceneSearcher
from selectsearch.partition.base import CorpusScan, FittedPartition, Partitioner, register_partition
from selectsearch.partition.registry import PARTITIONERS, register_partitioner
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Query

from .conftest import TOPICS, write_beir

pytestmark = pytest.mark.integration

TEXTS = ["rocket orbit bank", "protein cell oven", "stock market recipe gene", "rocket recipe protein bank the study",
         "galaxy dna loan", "the", "", "zzz unknown words", "rocket rocket rocket orbit", "Bake the FLOUR, butter!",
         "cell " * 40]
SHARD_LISTS: list[list[int] | None] = [None, [0], [1, 2], [3, 2], [0, 1, 3], [2, 2, 2], [], [0, 1, 2, 3], [3, 0]]


def _batched(lucene: ShardedLuceneSearcher) -> ShardedLuceneSearcher:
    if not lucene.batched:
        pytest.skip("no javac on this machine: the Java batch engine is optional")
    return lucene


@contextmanager
def _per_query(lucene: ShardedLuceneSearcher) -> Iterator[ShardedLuceneSearcher]:
    """The same searcher on the per-query path (what runs without the compiled helper)."""
    saved = lucene._batch
    lucene._batch = None
    try:
        yield lucene
    finally:
        lucene._batch = saved


def _same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    return (a[0].dtype == np.int64 and a[1].dtype == np.float32 and np.array_equal(a[0], b[0])
            and np.array_equal(a[1], b[1]))


WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


@pytest.fixture(scope="module")
def tie_indexes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """1,200 short documents from a 10-word vocabulary, each three times under different ids,
    spread over 4 random shards (and one unsharded index): every score is tied at least three
    ways, and every term has hundreds of postings per shard, so Lucene's block-max pruning acts
    (it needs posting lists longer than one 128-document block) and must respect the ties."""
    rng = random.Random(5)
    base = [" ".join(rng.choices(WORDS, weights=range(len(WORDS), 0, -1), k=rng.randint(2, 9))) for _ in range(1200)]
    docs = [{"_id": f"{copy}{i:04d}", "title": "", "text": text} for i, text in enumerate(base) for copy in "amz"]
    rng.shuffle(docs)
    beir = write_beir(tmp_path_factory.mktemp("ties") / "beir", docs, queries={"q": "alpha"}, qrels={"q": {}})
    root = tmp_path_factory.mktemp("tie-idx")
    return {name: build_index(open_corpus(beir), root / name,
                              BuildConfig(n_shards=shards, partitioner="random", threads=1, seed=7))
            for name, shards in (("k4", 4), ("k1", 1))}


def test_batch_equals_per_query_path(tiny_index: Path) -> None:
    lucene = _batched(ShardedIndex.open(tiny_index).lucene())
    texts = [t for t in TEXTS for _ in SHARD_LISTS]
    shards = [s for _ in TEXTS for s in SHARD_LISTS]
    for k in (1, 10, 1000):
        batch = lucene.batch_search(texts, k, shards)
        with _per_query(lucene):
            one_by_one = [lucene.search(t, k, s) for t, s in zip(texts, shards, strict=True)]
        assert all(_same(a, b) for a, b in zip(batch, one_by_one, strict=True)), k
        assert all(len(d) == 0 for (d, _), s in zip(batch, shards, strict=True) if s == [])
        assert all(len(d) == 0 for (d, _), t in zip(batch, texts, strict=True) if t in ("", "the", "zzz unknown words"))
        assert sum(len(d) for d, _ in batch) > 0
    # every query against every shard list, k above the collection size: each hit's shard is selected
    full = lucene.search_batch(texts, 10_000, shards)
    for i, s in enumerate(shards):
        docids, _ = full.query(i)
        owner = np.searchsorted(lucene.doc_bases, docids, side="right") - 1
        assert set(owner.tolist()) <= set(range(lucene.n_shards) if s is None else s)


def test_visiting_order_threads_and_statistics_cache_change_nothing(tiny_index: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    index = ShardedIndex.open(tiny_index)
    reference = _batched(index.lucene())
    texts = [t for t in TEXTS for _ in SHARD_LISTS]
    shards = [s for _ in TEXTS for s in SHARD_LISTS]
    expected = {k: reference.batch_search(texts, k, shards) for k in (3, 1000)}
    monkeypatch.setattr(searcher_module, "DF_CACHE_TERMS", 0)  # collection statistics looked up every time
    variants: list[Any] = [index.lucene(threads=2), index.lucene(), index.lucene()]
    variants[1]._batch.setOrder(0)  # shards in doc id order, as Lucene visits them
    variants[2]._batch.setTermCache(1 << 12)  # term states kept across queries (and terms evicted)
    for lucene in variants:
        for _ in range(2):  # the second time from the caches
            for k, want in expected.items():
                got = lucene.batch_search(texts, k, shards)
                assert all(_same(a, b) for a, b in zip(got, want, strict=True)), k


@pytest.mark.parametrize("by_rank", [True, False])
def test_ties_cut_at_k_as_the_per_query_path(tie_indexes: dict[str, Path], by_rank: bool) -> None:
    """With tie ranks (what an index's searcher uses) the top k is cut by doc id; without, by
    Lucene's docid. Either way the batch engine's cut equals the per-query path's."""
    index = ShardedIndex.open(tie_indexes["k4"])
    sharded = _batched(index.lucene() if by_rank else
                       ShardedLuceneSearcher([index.shard_path(s) / "lucene" for s in index.lucene_shards]))
    assert sharded.ties_by_rank is by_rank
    texts = ["alpha", "juliet", "india juliet", "alpha bravo charlie", "golf hotel india juliet alpha", "echo echo"]
    for k in (1, 2, 5, 10, 11, 100, 1000):
        for shards in (None, [1, 3], [2], [0, 1, 2]):
            for order in (1, 0):  # most promising shard first (the default), then doc id order
                sharded._batch.setOrder(order)
                sharded._batch.setTermCache(1 << 10 if k % 2 else 0)  # odd k: term states kept across queries
                batch = sharded.batch_search(texts, k, [shards] * len(texts))
                with _per_query(sharded):
                    reference = sharded.batch_search(texts, k, [shards] * len(texts))
                assert all(_same(a, b) for a, b in zip(batch, reference, strict=True)), (k, shards, order)
    sharded._batch.setOrder(1)
    docids, scores = sharded.search("alpha bravo", 1000)
    assert len(np.unique(scores)) * 3 <= len(scores)  # the fixture is all ties
    tied = np.flatnonzero(scores[:-1] == scores[1:])
    key = index.doc_id_ranks if by_rank else np.arange(int(sharded.shard_sizes.sum()))
    assert (key[docids[tied]] < key[docids[tied + 1]]).all()  # within tied scores: by doc id, or Lucene's docid
    if by_rank:  # and the cut at every k is the head of the deeper list
        deep = sharded.batch_search(texts, 1000, [None] * len(texts))
        for k in (1, 3, 7, 50):
            assert all(_same((d[:k], sc[:k]), got) for (d, sc), got in
                       zip(deep, sharded.batch_search(texts, k, [None] * len(texts)), strict=True)), k


def test_pipeline_hits_equal_unsharded_ranking_with_ties(tie_indexes: dict[str, Path]) -> None:
    sharded = SelectiveSearcher.open(tie_indexes["k4"], "all")
    _batched(sharded.lucene)
    single = SelectiveSearcher.open(tie_indexes["k1"], "all")
    queries = {"a": "alpha", "b": "india juliet", "c": "alpha bravo charlie delta", "d": "golf hotel"}
    for k in (10, 1000, 10_000):
        ours = {q: [(h.doc_id, h.score) for h in r.hits] for q, r in sharded.batch_search(queries, k=k).items()}
        ref = {q: [(h.doc_id, h.score) for h in r.hits] for q, r in single.batch_search(queries, k=k).items()}
        for q in queries:
            # ties ordered by doc id string (selectsearch.ranking), whatever shard holds the copies
            assert ours[q] == sorted(ours[q], key=lambda t: (-t[1], t[0]))
            # and the same list, cut at k included: which tied documents make the cut is decided by
            # their doc ids, not by where the build put them
            assert ours[q] == ref[q]


@pytest.mark.parametrize("route", ["all", "random@2", "centroid@2", "cori@2", "taily@2", "redde@2", "ranks",
                                   "oracle@1"])
def test_every_router_same_results_as_per_query_path_and_unsharded(route: str, tiny_index: Path, tiny_beir: Path,
                                                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    qrels = load_qrels(tiny_beir, split="test")
    searcher = SelectiveSearcher.open(tiny_index, route, qrels=qrels)
    _batched(searcher.lucene)
    queries = [Query(f"q{i}", t) for i, t in enumerate(TEXTS + [" ".join(w[:3]) for w in TOPICS.values()])]
    single_dir = tmp_path_factory.getbasetemp() / "batch-engine-k1"
    if not (single_dir / "manifest.json").exists():
        build_index(open_corpus(tiny_beir), single_dir, BuildConfig(n_shards=1, partitioner="random", threads=1))
    single = SelectiveSearcher.open(single_dir, "all")
    shard_of = searcher.index.shard_of_doc
    for k in (10, 1000):
        batched = searcher.batch_search(queries, k=k)
        with _per_query(searcher.lucene):
            per_query = searcher.batch_search(queries, k=k)
        exhaustive = single.batch_search(queries, k=1000)
        for q in queries:
            hits = [(h.doc_id, h.score, h.shard_id) for h in batched[q.query_id].hits]
            assert hits == [(h.doc_id, h.score, h.shard_id) for h in per_query[q.query_id].hits]
            # the unsharded ranking restricted to the searched shards, cut at k (ties at the cut too)
            chosen = set(batched[q.query_id].trace.shards)
            ref = [(h.doc_id, h.score) for h in exhaustive[q.query_id].hits if shard_of[h.doc_id] in chosen][:k]
            assert [(d, s) for d, s, _ in hits] == ref


def test_without_the_compiled_helper_results_are_the_same(tiny_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = ShardedIndex.open(tiny_index)
    fast = _batched(index.lucene())
    monkeypatch.setattr(searcher_module, "optional_jclass", lambda name: None)
    slow = index.lucene()
    assert not slow.batched
    for k in (10, 1000):
        for shards in SHARD_LISTS:
            for text in TEXTS:
                assert _same(fast.search(text, k, shards), slow.search(text, k, shards))


def test_bad_shard_lists_are_refused(tiny_index: Path) -> None:
    lucene = ShardedIndex.open(tiny_index).lucene()
    with pytest.raises(ValueError, match="shard numbers"):
        lucene.search("rocket", 10, [0, 4])
    with pytest.raises(ValueError, match="shard numbers"):
        lucene.search("rocket", 10, [-1])
    with pytest.raises(ValueError, match="2 queries but 1"):
        lucene.batch_search(["a", "b"], 10, [[0]])
    assert lucene.batch_search([], 10) == []
    empty = lucene.search_batch(["rocket", "orbit"], 10, [[], []])
    assert len(empty) == 2 and empty.offsets.tolist() == [0, 0, 0]


@register_partition
class _OddShardsEmpty(FittedPartition):
    """Documents dealt over the even shards only: the odd ones stay empty."""

    kind: ClassVar[str] = "test-odd-shards-empty"

    def __init__(self, n_shards: int) -> None:
        self.n_shards = n_shards

    def assign(self, docs: Any, positions: np.ndarray) -> np.ndarray:
        return (2 * (np.asarray(positions) % (self.n_shards // 2))).astype(np.int32)

    def save(self, folder: Path) -> dict[str, Any]:
        return {"kind": self.kind, "n_shards": self.n_shards}

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> _OddShardsEmpty:
        return cls(int(config["n_shards"]))


@dataclass(frozen=True)
class _OddShardsEmptyPartitioner(Partitioner):
    name: ClassVar[str] = "test-odd-shards-empty"
    needs_scan: ClassVar[bool] = False

    def fit(self, scan: CorpusScan, *, n_shards: int, progress: bool = False) -> _OddShardsEmpty:
        return _OddShardsEmpty(n_shards)


def test_per_query_path_filters_the_right_shard_when_a_shard_is_empty(tmp_path: Path) -> None:
    """An empty shard has no Lucene index, so the searcher's shard numbers (positions among the
    shards that have one) differ from the manifest's after it; the per-query path's filter on
    the ``shard`` field (which holds the manifest's number) must use the manifest's number, or
    it searches the wrong shard without a word."""
    docs = [{"_id": f"d{i:02d}", "title": "", "text": f"rocket orbit {WORDS[i % 10]}"} for i in range(16)]
    beir = write_beir(tmp_path / "beir", docs, queries={"q": "rocket"}, qrels={"q": {}})
    register_partitioner(_OddShardsEmptyPartitioner.name, _OddShardsEmptyPartitioner, replace=True)
    try:  # registered for this build only: other tests list the registered partitioners
        index = ShardedIndex.open(build_index(open_corpus(beir), tmp_path / "idx",
                                              BuildConfig(n_shards=8, partitioner=_OddShardsEmptyPartitioner.name,
                                                          threads=1)))
    finally:
        PARTITIONERS.unregister(_OddShardsEmptyPartitioner.name)
    assert index.lucene_shards == [0, 2, 4, 6]
    lucene = index.lucene()
    try:
        for position, shard in enumerate(index.lucene_shards):
            with _per_query(lucene) as per_query:
                docids, _ = per_query.search("rocket orbit", k=10, shards=[position])
            assert len(docids) == index.shard_sizes[shard] == 4
            assert set(index.global_shard_ids[docids].tolist()) == {shard}
        if lucene.batched:  # the batch engine: the same answers
            texts = ["rocket orbit alpha"] * 6
            lists = [[0], [1], [2], [3], [1, 3], None]
            batch = lucene.batch_search(texts, 10, lists)
            with _per_query(lucene):
                assert all(_same(a, lucene.search(t, 10, s)) for a, t, s in zip(batch, texts, lists, strict=True))
    finally:
        lucene.close()
