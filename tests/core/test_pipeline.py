"""The one query pipeline: stages are values that compose, and every front end shares them."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.data import load_qrels, load_queries
from selectsearch.evaluation import evaluate
from selectsearch.pipeline import Retrieved, assemble
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Hit, Query


class _Planted:
    """A shard searcher of our own: one hit per searched shard, scored by shard id."""

    name = "planted"

    def __init__(self) -> None:
        self.calls: list[list[list[int]]] = []

    def warm(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {}

    def search(self, queries: Sequence[Query], shard_lists: Sequence[Sequence[int]], depth: int, *,
               encoded: Any = None) -> list[Retrieved]:
        self.calls.append([list(s) for s in shard_lists])
        return [Retrieved([Hit(f"d{s}", float(s), s) for s in sorted(shards, reverse=True)][:depth],
                          {"search": 0.0}) for shards in shard_lists]


class _Reverse:
    """A reranker that puts the worst hit first."""

    name = "reverse"

    def rerank(self, query: str, hits: Sequence[Hit], texts: Sequence[str]) -> list[Hit]:
        return [h._replace(score=float(i)) for i, h in enumerate(hits)][::-1]


def test_any_shard_searcher_composes_with_any_router(tiny_index: Path) -> None:
    planted = _Planted()
    base = SelectiveSearcher.open(tiny_index, "all")
    searcher = SelectiveSearcher(base.index, base.router, shard_searcher=planted)
    hits = searcher.search("anything", k=2)
    assert [h.doc_id for h in hits] == ["d3", "d2"]
    assert planted.calls == [[[0, 1, 2, 3]]]
    # deriving keeps the stage: another route, the same shard searcher
    routed = searcher.with_route("random@2")
    result = routed.batch_search({"q": "anything"}, k=5)["q"]
    assert routed.shards is planted and len(result.trace.shards) == 2
    assert result.trace.extra["retriever"] == "planted"


def test_derived_searchers_share_the_open_engines(tiny_index: Path) -> None:
    searcher = SelectiveSearcher.open(tiny_index, "all")
    for other in (searcher.with_route("centroid@1"), searcher.with_retriever("bm25"),
                  searcher.with_reranker(_Reverse(), 3)):
        assert other.engines is searcher.engines
    assert searcher.with_route("centroid@1").route_name == "centroid@1"


def test_assemble_reranks_the_head_and_keeps_the_tail_below() -> None:
    hits = [Hit(f"d{i}", 10.0 - i, 0) for i in range(5)]
    out = assemble([Query("q", "x")], [[0]], [Retrieved(hits, {"search": 1.0})], k=4, route_ms=0.5,
                   route_name="all", shard_sizes=np.array([7]), reranker=_Reverse(), rerank_depth=3,
                   text_of=str)["q"]
    assert [h.doc_id for h in out.hits] == ["d2", "d1", "d0", "d3"]
    scores = [h.score for h in out.hits]
    assert all(a > b for a, b in itertools.pairwise(scores))
    assert out.trace.docs_scored == 7 and set(out.trace.timings_ms) == {"route", "search", "rerank"}


def test_a_failed_query_gets_no_hits_and_is_not_reranked() -> None:
    ok = Retrieved([Hit("a", 1.0, 0)], {"search": 1.0})
    failed = Retrieved([Hit("b", 1.0, 1)], {"search": 1.0}, error={"error": "too_many_terms", "status": 422})
    out = assemble([Query("q1", "x"), Query("q2", "y")], [[0], [1]], [ok, failed], k=10, route_ms=0.0,
                   route_name="all", shard_sizes=np.array([3, 4]), reranker=_Reverse(), text_of=str)
    assert [h.doc_id for h in out["q1"].hits] == ["a"] and "rerank" in out["q1"].trace.timings_ms
    assert out["q2"].hits == [] and out["q2"].trace.docs_scored == 0
    assert out["q2"].trace.extra["error"]["status"] == 422


def test_evaluate_routes_through_the_searcher(tiny_index: Path, tiny_beir: Path) -> None:
    planted = _Planted()
    base = SelectiveSearcher.open(tiny_index, "all")
    searcher = SelectiveSearcher(base.index, base.router, shard_searcher=planted)
    queries = load_queries(tiny_beir, split="test")
    rows = evaluate(searcher, queries, load_qrels(tiny_beir, split="test"), ["random@1:2"], ["P@1"], k=2)
    assert [r["route"] for r in rows] == ["random@1", "random@2"]
    # exhaustive once, then each budget of the sweep through the same shard searcher
    assert [len(call[0]) for call in planted.calls] == [4, 1, 2]
