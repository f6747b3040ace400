"""Coverage, cost and AUC of the coverage-cost curve (synthetic data, no index)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selectsearch.selective_metrics import coverage_curve, partition_balance


def _random_rankings(n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(k) for _ in range(n)])


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 32), st.integers(0, 1000))
def test_random_router_on_balanced_partition_scores_about_50(k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_queries, n_pairs = 400, 2000
    rankings = _random_rankings(n_queries, k, seed)
    curve = coverage_curve(rankings, rng.integers(0, n_queries, n_pairs), rng.integers(0, k, n_pairs), np.full(k, 100))
    assert curve.auc == pytest.approx(50, abs=4)
    assert curve.coverage[-1] == pytest.approx(1.0) and curve.cost_fraction[-1] == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 16), st.integers(0, 1000))
def test_oracle_coverage_never_below_any_router(k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_queries = 50
    pair_query = rng.integers(0, n_queries, 300)
    pair_shard = rng.integers(0, k, 300)
    sizes = np.full(k, 10)
    # oracle: shards ranked by the number of the query's relevant docs they hold
    counts = np.zeros((n_queries, k))
    np.add.at(counts, (pair_query, pair_shard), 1)
    ids = np.broadcast_to(np.arange(k), counts.shape)
    oracle = np.lexsort((ids, -counts), axis=1)
    oracle_curve = coverage_curve(oracle, pair_query, pair_shard, sizes)
    for other_seed in range(3):
        other = coverage_curve(_random_rankings(n_queries, k, seed + other_seed), pair_query, pair_shard, sizes)
        assert np.all(oracle_curve.coverage >= other.coverage - 1e-12)
    assert oracle_curve.coverage[-1] == pytest.approx(1.0)


def test_hand_computed_curve() -> None:
    # 2 queries, 3 shards of sizes 1, 2, 7; pairs: q0 -> shard 2, q1 -> shard 0 (twice the clicks)
    rankings = np.array([[2, 0, 1], [1, 0, 2]])
    curve = coverage_curve(rankings, np.array([0, 1]), np.array([2, 0]), np.array([1, 2, 7]), weights=np.array([1, 2]))
    np.testing.assert_allclose(curve.coverage, [1 / 3, 1.0, 1.0])
    # cost per pair at m=1: q0 searches shard 2 (7/10), q1 shard 1 (2/10); weights 1/3, 2/3
    np.testing.assert_allclose(curve.cost_fraction, [(0.7 + 2 * 0.2) / 3, (0.8 + 2 * 0.3) / 3, 1.0])
    np.testing.assert_allclose(curve.latency_fraction, [(0.7 + 2 * 0.2) / 3, (0.7 + 2 * 0.2) / 3, 0.7])
    xs = [0, *curve.cost_fraction]
    ys = [0, *curve.coverage]
    expected = sum((xs[i + 1] - xs[i]) * (ys[i + 1] + ys[i]) / 2 for i in range(3)) * 100
    assert curve.auc == pytest.approx(expected)


def test_bad_rankings_rejected() -> None:
    with pytest.raises(ValueError, match="permutation"):
        coverage_curve(np.array([[0, 0]]), np.array([0]), np.array([0]), np.array([1, 1]))


def test_partition_balance() -> None:
    even = partition_balance(np.array([5, 5, 5, 5]))
    assert even["max_over_mean"] == 1.0 and even["entropy_normalised"] == pytest.approx(1.0)
    skewed = partition_balance(np.array([17, 1, 1, 1]))
    assert skewed["max_over_mean"] == pytest.approx(3.4) and skewed["entropy_normalised"] < 0.6


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 30), st.integers(1, 80), st.integers(0, 2**31 - 1), st.booleans())
def test_cost_weighs_each_pair_as_its_query(k: int, n_queries: int, n_pairs: int, seed: int, clicks: bool) -> None:
    """Cost and latency are computed per query weighted by its pairs: they must equal the
    per-pair definition (every pair pays its query's searched shards), with repeated queries,
    queries without pairs and click weights."""
    rng = np.random.default_rng(seed)
    rankings = _random_rankings(n_queries, k, seed)
    pq, ps = rng.integers(0, n_queries, n_pairs), rng.integers(0, k, n_pairs)
    sizes = rng.integers(0, 50, k).astype(float) + (np.arange(k) == 0)
    w = rng.integers(1, 5, n_pairs).astype(float) if clicks else np.ones(n_pairs)
    curve = coverage_curve(rankings, pq, ps, sizes, weights=w if clicks else None)
    per_pair = sizes[rankings[pq]]
    share = (w / w.sum())[:, None]
    np.testing.assert_allclose(curve.cost_fraction, (np.cumsum(per_pair, axis=1) * share).sum(0) / sizes.sum(),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.latency_fraction,
                               (np.maximum.accumulate(per_pair, axis=1) * share).sum(0) / sizes.sum(),
                               rtol=1e-12, atol=1e-15)
