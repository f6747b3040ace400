"""Validation AUC (coverage-cost curve) of a MICO model on held-out log pairs.

Queries are ranked by the routing head, documents go to the argmax of the assignment head and
shard sizes come from assigning the corpus (frozen mode: every document; full mode: a seeded
sample). The curve is :func:`selectsearch.selective_metrics.coverage_curve`, the one the
benchmarks use.

Example:
    >>> import numpy as np
    >>> curve = routing_curve(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([0, 1]), np.array([0, 1]),
    ...                       np.array([5, 5]))
    >>> round(curve.auc, 1), curve.coverage.tolist()
    (75.0, [1.0, 1.0])
"""

from __future__ import annotations

import numpy as np

from selectsearch.ranking import rank_by_scores
from selectsearch.selective_metrics import CoverageCurve, coverage_curve

__all__ = ["argmax_in_chunks", "routing_curve"]


def routing_curve(query_scores: np.ndarray, pair_query: np.ndarray, pair_shard: np.ndarray, shard_sizes: np.ndarray,
                  weights: np.ndarray | None = None) -> CoverageCurve:
    """Coverage-cost curve of routing by ``query_scores`` ``(n_queries, K)``."""
    return coverage_curve(rank_by_scores(query_scores), pair_query, pair_shard, shard_sizes, weights)


def argmax_in_chunks(vectors: np.ndarray, weight: np.ndarray, bias: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """``argmax(vectors @ weight.T + bias)`` row by row in chunks (works on a memmap)."""
    out = np.empty(len(vectors), dtype=np.int32)
    for start in range(0, len(vectors), chunk):
        block = np.asarray(vectors[start:start + chunk], dtype=np.float32)
        out[start:start + len(block)] = np.argmax(block @ weight.T + bias, axis=1)
    return out
