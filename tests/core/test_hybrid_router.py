"""``hybrid@m``: standardised score fusion of routers, and fitting its weights on held-out logs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from selectsearch.errors import RouteSpecError
from selectsearch.index.sharded import ShardedIndex
from selectsearch.route import make_router, parse_route, rank_by_scores
from selectsearch.route.base import Router
from selectsearch.route.hybrid import HybridRouter, fit_weights, standardise, weight_grid
from selectsearch.types import Query

from .conftest import TOPICS


class FixedRouter(Router):
    """Returns the same score table whatever the queries (row i for query i)."""

    def __init__(self, name: str, table: np.ndarray) -> None:
        self.name = name
        self.table = np.asarray(table, dtype=np.float64)

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        return self.table[: len(queries)]

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        return rank_by_scores(self.scores(queries))


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 8)),
              elements=st.floats(-1e3, 1e3, allow_nan=False)))
def test_standardise_rows_have_zero_mean_and_unit_or_zero_spread(scores: np.ndarray) -> None:
    z = standardise(scores)
    assert np.allclose(z.mean(axis=1), 0.0, atol=1e-9)
    spread = z.std(axis=1)
    assert np.all(np.isclose(spread, 1.0, atol=1e-6) | np.isclose(spread, 0.0, atol=1e-9))
    # ordering inside each row is kept: z taken in the order of the raw scores never decreases
    for raw, std in zip(scores, z, strict=True):
        assert np.all(np.diff(std[np.argsort(raw, kind="stable")]) >= -1e-9)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 70)),
              elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_standardise_is_numpys_mean_and_std_exactly(scores: np.ndarray) -> None:
    """standardise writes numpy's mean and std out (one mean instead of two): same bits (a
    constant row aside: zeros, next test)."""
    centred = scores - scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    expected = np.divide(centred, std, out=np.zeros_like(centred), where=std > 1e-12)
    expected[scores.min(axis=1) == scores.max(axis=1)] = 0.0
    assert np.array_equal(standardise(scores), expected)


@settings(max_examples=60, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.integers(1, 70), st.integers(1, 3))
def test_standardise_makes_a_constant_row_zeros_whatever_its_value(value: float, n_shards: int, rows: int) -> None:
    """A router that cannot tell shards apart gives no evidence. Before the exact check, a row of
    144631.44705199 over 10 shards missed its own computed mean by a rounding and became +-1
    z-scores: an arbitrary ranking with full weight in the fusion."""
    assert not standardise(np.full((rows, n_shards), value)).any()


def test_one_weight_reproduces_that_router_and_scale_does_not_matter() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    queries = [Query(str(i), "q") for i in range(6)]
    only_a = HybridRouter([FixedRouter("a", a), FixedRouter("b", b)], [1.0, 0.0])
    assert np.array_equal(only_a.rank(queries), rank_by_scores(a))
    # multiplying one router's scores by 1000 changes nothing after standardisation
    scaled = HybridRouter([FixedRouter("a", 1000 * a), FixedRouter("b", b)], [0.5, 0.5])
    plain = HybridRouter([FixedRouter("a", a), FixedRouter("b", b)], [0.5, 0.5])
    assert np.array_equal(scaled.rank(queries), plain.rank(queries))


def test_fused_ranking_can_beat_both_routers() -> None:
    # query 0: a knows shard 0 is first; b knows shard 1 is second. Only the fusion gets both
    a = np.array([[3.0, 0.0, 0.0, 2.9]])
    b = np.array([[1.0, 2.0, 0.0, 0.0]])
    fused = HybridRouter([FixedRouter("a", a), FixedRouter("b", b)], [0.5, 0.5]).rank([Query("0", "q")])
    assert fused[0, :2].tolist() == [0, 1]


def test_weight_grid_covers_the_simplex() -> None:
    grid = weight_grid(3, 0.25)
    assert len(grid) == 15 and all(abs(sum(w) - 1.0) < 1e-12 for w in grid)
    assert (1.0, 0.0, 0.0) in grid and (0.0, 0.0, 1.0) in grid
    assert weight_grid(1, 0.1) == [(1.0,)]


def test_fit_weights_prefers_the_router_that_finds_the_relevant_shards() -> None:
    rng = np.random.default_rng(1)
    n, k = 40, 6
    truth = rng.integers(0, k, size=n)
    good = rng.normal(size=(n, k))
    good[np.arange(n), truth] += 3.0
    noise = rng.normal(size=(n, k))
    sizes = np.full(k, 10)
    weights, auc, table = fit_weights([standardise(noise), standardise(good)], np.arange(n), truth, sizes, step=0.25)
    assert weights[1] > weights[0]
    assert auc == max(row["auc"] for row in table)
    only_noise = next(row["auc"] for row in table if row["weights"] == [1.0, 0.0])
    assert auc > only_noise


def test_bad_options_are_refused(tiny_index: Path) -> None:
    index = ShardedIndex.open(tiny_index)
    with pytest.raises(RouteSpecError, match="fuses real routers"):
        make_router("hybrid@2", index, routers="cori,oracle")
    with pytest.raises(RouteSpecError, match="unknown options"):
        make_router("hybrid@2", index, routers="cori,taily", depth=3)
    with pytest.raises(RouteSpecError, match="2 weights for 1 routers"):
        make_router("hybrid@2", index, routers="cori", weights="0.5,0.5")
    with pytest.raises(RouteSpecError, match="comma-separated numbers"):
        make_router("hybrid@2", index, routers="cori,taily", weights="a,b")
    with pytest.raises(RouteSpecError, match="not all 0"):
        make_router("hybrid@2", index, routers="cori,taily", weights="0,0")


def test_hybrid_of_real_routers_on_a_real_index(tiny_index: Path) -> None:
    index = ShardedIndex.open(tiny_index)
    queries = [Query(topic, " ".join(words[:4])) for topic, words in TOPICS.items()]
    hybrid = make_router(parse_route("hybrid@1"), index, routers="centroid,cori,taily", weights="0.2,0.5,0.3")
    cori = make_router(parse_route("cori@1"), index)
    ranking = hybrid.rank(queries)
    assert ranking.shape == (len(queries), index.n_shards)
    assert all(sorted(row) == list(range(index.n_shards)) for row in ranking.tolist())
    # weight 1 on CORI reproduces CORI exactly
    only_cori = make_router(parse_route("hybrid@1"), index, routers="cori,taily", weights="1,0")
    assert np.array_equal(only_cori.rank(queries), cori.rank(queries))
    # the fusion still finds the topical shard of each planted topic
    hits = 0
    for q, row in zip(queries, ranking.tolist(), strict=True):
        docs = index.shard_doc_ids(row[0])
        hits += sum(d.startswith(q.query_id) for d in docs) / max(len(docs), 1) > 0.5
    assert hits >= 3


class CountingRouter(FixedRouter):
    """A FixedRouter that counts how often it is asked to score."""

    def __init__(self, name: str, table: np.ndarray) -> None:
        super().__init__(name, table)
        self.calls = 0

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        self.calls += 1
        return super().scores(queries)


def test_a_router_weighted_zero_everywhere_is_not_run() -> None:
    rng = np.random.default_rng(1)
    a, b = CountingRouter("a", rng.normal(size=(4, 5))), CountingRouter("b", rng.normal(size=(4, 5)))
    queries = [Query(str(i), "q") for i in range(4)]
    fused = HybridRouter([a, b], [0.0, 1.0])
    assert np.array_equal(fused.rank(queries), rank_by_scores(b.table))
    assert (a.calls, b.calls) == (0, 1)  # the unused router costs nothing
    both = HybridRouter([a, b], [0.3, 0.7])
    both.rank(queries)
    assert (a.calls, b.calls) == (1, 2)
