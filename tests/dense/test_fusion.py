"""RRF and normalised convex combination, alone and inside hybrid search."""

from __future__ import annotations

from pathlib import Path

import pytest

from selectsearch.errors import SelectSearchError
from selectsearch.fusion import FusionConfig, convex, fuse, normalise, rrf
from selectsearch.search import SelectiveSearcher

BM25 = [("a", 12.0), ("b", 9.0), ("c", 3.0)]
DENSE = [("c", 0.9), ("d", 0.8), ("a", 0.1)]


def test_rrf_scores_and_tie_break() -> None:
    fused = dict(rrf([BM25, DENSE], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert fused["d"] == pytest.approx(1 / 62)
    # b (rank 2 in one list) and d (rank 2 in the other) tie: doc id decides
    order = [d for d, _ in rrf([BM25, DENSE], k=60)]
    assert order == ["a", "c", "b", "d"]


def test_minmax_and_zscore() -> None:
    assert normalise([2.0, 4.0, 3.0], "minmax") == [0.0, 1.0, 0.5]
    assert normalise([5.0, 5.0], "minmax") == [1.0, 1.0]
    z = normalise([1.0, 2.0, 3.0], "zscore")
    assert sum(z) == pytest.approx(0.0) and z[2] == pytest.approx(1.224744871)


def test_convex_weights_reduce_to_one_list() -> None:
    only_dense = [d for d, _ in fuse([BM25, DENSE], FusionConfig("convex", alpha=1.0))]
    assert only_dense[:3] == ["c", "d", "a"]
    only_bm25 = [d for d, _ in fuse([BM25, DENSE], FusionConfig("convex", alpha=0.0))]
    assert only_bm25[:3] == ["a", "b", "c"]
    half = dict(convex([BM25, DENSE], [0.5, 0.5], "minmax"))
    # a: bm25 1.0, dense 0.0 ; c: bm25 0.0, dense 1.0 ; d missing from bm25 -> 0
    assert half["a"] == pytest.approx(0.5) and half["c"] == pytest.approx(0.5)
    assert half["d"] == pytest.approx(0.5 * (0.8 - 0.1) / 0.8)


def test_fusion_depth_cuts_lists() -> None:
    fused = [d for d, _ in fuse([BM25, DENSE], FusionConfig("rrf", depth=1))]
    assert fused == ["a", "c"]


@pytest.mark.parametrize("kwargs", [{"method": "max"}, {"norm": "l2"}, {"alpha": 1.5}, {"depth": 0}])
def test_bad_fusion_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(SelectSearchError):
        FusionConfig(**kwargs)  # type: ignore[arg-type]


def test_hybrid_search_fuses_bm25_and_dense_and_records_it(dense_index: Path) -> None:
    base = SelectiveSearcher.open(dense_index, route="centroid@2", retriever="hybrid",
                                  fusion=FusionConfig("rrf", depth=50))
    query = "rocket orbit planet"
    result = base.batch_search({"q": query}, k=10)["q"]
    trace = result.trace
    assert trace.extra["retriever"] == "hybrid"
    assert trace.extra["fusion"] == {"method": "rrf", "rrf_k": 60.0, "depth": 50}
    assert trace.extra["vectors_scored"] == trace.docs_scored
    bm25 = base.with_retriever("bm25").batch_search({"q": query}, k=50)["q"].hits
    dense = base.with_retriever("dense").batch_search({"q": query}, k=50)["q"].hits
    expected = rrf([[(h.doc_id, h.score) for h in bm25], [(h.doc_id, h.score) for h in dense]])[:10]
    assert [(h.doc_id, h.score) for h in result.hits] == expected
    assert all(h.shard_id in trace.shards for h in result.hits)
    # convex with all weight on the dense list ranks like dense search
    dense_only = base.with_retriever("hybrid", FusionConfig("convex", alpha=1.0, depth=50))
    assert [h.doc_id for h in dense_only.search(query, k=10)] == [h.doc_id for h in dense[:10]]
