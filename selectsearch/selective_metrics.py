"""Selective-search metrics: coverage, cost and the AUC of the coverage-cost curve.

Definitions follow the MICO reference code (see ``shared/docs/methods.md``):

* ``coverage@m`` — fraction of held-out (query, relevant document) pairs whose document lies in
  one of the query's top-``m`` shards (weighted by clicks when given);
* ``cost@m`` — mean number of documents in the ``m`` searched shards (total work), reported as a
  fraction of the collection; averaged over the same pairs;
* ``latency-cost@m`` — mean size of the LARGEST searched shard (parallel shards finish when the
  largest does), as a fraction of the collection;
* ``AUC`` — area under the (cost fraction, coverage) curve over m = 1..K with (0, 0) prepended,
  by the trapezoid rule, x100. A random router on a balanced partition scores about 50; an
  oracle close to 100.

Example:
    >>> import numpy as np
    >>> rankings = np.array([[0, 1], [1, 0]])          # two queries, two shards
    >>> curve = coverage_curve(rankings, np.array([0, 1]), np.array([0, 0]), np.array([5, 5]))
    >>> curve.coverage.tolist(), round(curve.auc, 1)
    ([0.5, 1.0], 50.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CoverageCurve", "coverage_curve", "partition_balance", "relevant_pairs"]


@dataclass(frozen=True)
class CoverageCurve:
    """Per-budget arrays (index ``m - 1`` is budget ``m``) and the AUC."""

    coverage: np.ndarray
    cost_fraction: np.ndarray
    latency_fraction: np.ndarray
    auc: float

    def at(self, m: int) -> dict[str, float]:
        """The curve's values at budget ``m``."""
        return {"coverage": float(self.coverage[m - 1]), "cost_fraction": float(self.cost_fraction[m - 1]),
                "latency_fraction": float(self.latency_fraction[m - 1])}


def relevant_pairs(query_ids: Sequence[str], qrels: Mapping[str, Mapping[str, int]],
                   shard_of_doc: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(pair_query, pair_shard)`` of every (query, document) pair with relevance > 0.

    ``pair_query`` is the row of the query in ``query_ids``; documents not in the index are skipped.

    Example:
        >>> q, s = relevant_pairs(["a", "b"], {"a": {"d1": 1, "d2": 0}, "b": {"d2": 2}}, {"d1": 3, "d2": 0})
        >>> q.tolist(), s.tolist()
        ([0, 1], [3, 0])
    """
    pq: list[int] = []
    ps: list[int] = []
    for row, qid in enumerate(query_ids):
        for doc_id, rel in qrels.get(qid, {}).items():
            if rel > 0 and doc_id in shard_of_doc:
                pq.append(row)
                ps.append(shard_of_doc[doc_id])
    return np.asarray(pq, dtype=np.int64), np.asarray(ps, dtype=np.int64)


def coverage_curve(rankings: np.ndarray, pair_query: np.ndarray, pair_shard: np.ndarray, shard_sizes: np.ndarray,
                   weights: np.ndarray | None = None) -> CoverageCurve:
    """Coverage and cost at every budget 1..K for held-out (query, relevant doc) pairs.

    Args:
        rankings: ``(n_queries, K)`` shard ids per query, best first (a permutation per row).
        pair_query: ``(n_pairs,)`` row of ``rankings`` of each pair's query.
        pair_shard: ``(n_pairs,)`` shard holding each pair's document.
        shard_sizes: ``(K,)`` documents per shard.
        weights: ``(n_pairs,)`` click counts (default 1).

    Raises:
        ValueError: shapes disagree or a ranking row is not a permutation of the shards.
    """
    rankings = np.asarray(rankings)
    pair_query = np.asarray(pair_query, dtype=np.int64)
    pair_shard = np.asarray(pair_shard, dtype=np.int64)
    sizes = np.asarray(shard_sizes, dtype=np.float64)
    n_queries, k = rankings.shape
    if sizes.shape != (k,):
        raise ValueError(f"rankings have {k} shards but shard_sizes has shape {sizes.shape}")
    if pair_query.shape != pair_shard.shape:
        raise ValueError(f"pair_query {pair_query.shape} and pair_shard {pair_shard.shape} differ")
    if len(pair_query) == 0:
        raise ValueError("no (query, document) pairs to evaluate")
    if not np.array_equal(np.sort(rankings, axis=1), np.tile(np.arange(k), (n_queries, 1))):
        raise ValueError("each ranking row must be a permutation of 0..K-1")
    w = np.ones(len(pair_query)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    # position of each shard in each query's ranking
    position = np.empty_like(rankings)
    np.put_along_axis(position, rankings, np.arange(k)[None, :].repeat(n_queries, 0), axis=1)
    pair_rank = position[pair_query, pair_shard]  # 0-based rank of the pair's shard
    found_at = np.bincount(pair_rank, weights=w, minlength=k)
    coverage = np.cumsum(found_at)
    total = sizes.sum()
    # cost and latency depend on the query alone: weigh each query's curve by its pairs' weight
    # (one row per query with pairs, not per pair: tune-route scores hundreds of rankings of
    # ~130k stacked pairs on Home Depot)
    query_weight = np.bincount(pair_query, weights=w, minlength=n_queries)
    rows = np.flatnonzero(query_weight)
    ranked_sizes = sizes[rankings[rows]]  # (queries with pairs, K)
    cost = (np.cumsum(ranked_sizes, axis=1) * query_weight[rows, None]).sum(0) / total
    latency = (np.maximum.accumulate(ranked_sizes, axis=1) * query_weight[rows, None]).sum(0) / total
    xs = np.concatenate([[0.0], cost])
    ys = np.concatenate([[0.0], coverage])
    auc = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0) * 100.0)
    return CoverageCurve(coverage=coverage, cost_fraction=cost, latency_fraction=latency, auc=auc)


def partition_balance(sizes: np.ndarray) -> dict[str, float]:
    """Shard sizes summary: max/mean, min/mean, entropy (nats) and entropy / log K."""
    arr = np.asarray(sizes, dtype=np.float64)
    p = arr / arr.sum()
    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum())
    k = len(arr)
    return {"max_over_mean": float(arr.max() / arr.mean()), "min_over_mean": float(arr.min() / arr.mean()),
            "entropy": entropy, "entropy_normalised": entropy / float(np.log(k)) if k > 1 else 1.0,
            "empty_shards": int((arr == 0).sum())}
