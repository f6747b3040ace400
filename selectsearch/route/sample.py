"""ReDDE and Rank-S: shard selection by voting of central-sample-index (CSI) results.

Both run the query (BM25) on the CSI — a random sample of every shard in one Lucene index, see
:mod:`selectsearch.index.csi` — and let the top ``depth`` sampled documents vote for their shard.

* **ReDDE** (Si & Callan, SIGIR 2003): each top-ranked sampled document of shard ``i`` stands for
  ``|D_i| / |S_i|`` documents of that shard (shard size over sample size), so
  ``score(i) = sum_{d in top(depth), d in S_i} |D_i| / |S_i|``. Default ``depth`` = 50 (on SciFact,
  16 shards: coverage AUC 77.0 at depth 10, 79.0 at 30, 75.4 at 100).
* **Rank-S** (Kulkarni, Tigelaar, Hiemstra & Callan, CIKM 2012): votes decay exponentially with
  rank, ``score(i) = sum_{d in top(depth), d in S_i} s(d) * B^(-rank(d))`` with base ``B``
  (default 3) and ``s(d)`` the CSI score normalised by the top score. Its own cut-off (route spec
  ``ranks`` without ``@M``) searches the shards whose score is at least ``threshold``
  (default 1e-4), at least one.

Shards without votes are ranked after the voted ones, larger shards first, then by shard id.
The router's cost (the CSI search) is part of the routing time in traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.index.csi import CsiInfo, ensure_csi
from selectsearch.route.base import Router, RouteSpec, rank_by_scores
from selectsearch.route.registry import ROUTERS
from selectsearch.types import Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["CsiVotingRouter", "make_sample_router"]


class CsiVotingRouter(Router):
    """ReDDE (``method="redde"``) or Rank-S (``method="ranks"``) over a CSI."""

    def __init__(self, index: ShardedIndex, csi: CsiInfo, *, method: str, depth: int = 100, base: float = 3.0,
                 threshold: float = 1e-4) -> None:
        from selectsearch.lucene.indexer import read_lucene_ids
        from selectsearch.lucene.searcher import ShardedLuceneSearcher

        if method not in ("redde", "ranks"):
            raise ValueError(f"unknown CSI method {method!r}")
        self.name = method
        self.method = method
        self.depth = depth
        self.base = base
        self.threshold = threshold
        self.n_shards = index.n_shards
        self.csi = csi
        bm25 = index.manifest.bm25
        self._searcher = ShardedLuceneSearcher([csi.lucene_dir], k1=bm25.k1, b=bm25.b,
                                               analyzer=index.manifest.analyzer_class)
        shard_of = index.shard_of_doc
        self._csi_shard = np.asarray([shard_of[d] for d in read_lucene_ids(csi.lucene_dir)], dtype=np.int64)
        sizes = np.asarray(index.shard_sizes, dtype=np.float64)
        samples = np.maximum(csi.sample_sizes.astype(np.float64), 1.0)
        self._redde_weight = sizes / samples
        # unvoted shards: larger first (a tiny tie-breaker far below any vote)
        self._prior = 1e-9 * sizes / max(sizes.max(), 1.0)
        self._last: tuple[tuple[str, ...], np.ndarray] | None = None

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        """``(n, K)`` shard scores."""
        out = np.tile(self._prior, (len(queries), 1))
        for i, q in enumerate(queries):
            docids, scores = self._searcher.search(q.text, self.depth)
            if not len(docids):
                continue
            shards = self._csi_shard[docids]
            if self.method == "redde":
                votes = self._redde_weight[shards]
            else:
                ranks = np.arange(1, len(docids) + 1, dtype=np.float64)
                votes = (scores / max(float(scores[0]), 1e-12)) * self.base ** (-ranks)
            out[i] += np.bincount(shards, weights=votes, minlength=self.n_shards)
        return out

    def _cached_scores(self, queries: Sequence[Query]) -> np.ndarray:
        # select() asks for the ranking and then the cut-off of the same batch: search the CSI once
        key = tuple(q.text for q in queries)
        if self._last is None or self._last[0] != key:
            self._last = (key, self.scores(queries))
        return self._last[1]

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        return rank_by_scores(self._cached_scores(queries))

    def cutoffs(self, queries: Sequence[Query]) -> np.ndarray | None:
        if self.method != "ranks":
            return None
        return np.maximum(1, (self._cached_scores(queries) >= self.threshold).sum(axis=1))


def make_sample_router(spec: RouteSpec, index: ShardedIndex, *, qrels: Any = None, seed: int = 0,
                       csi_rate: float | None = None, depth: int | None = None, base: float = 3.0,
                       threshold: float = 1e-4, **options: Any) -> CsiVotingRouter:
    """Factory used by :func:`selectsearch.route.make_router` for ``redde`` and ``ranks``.

    Raises:
        RouteSpecError: an unknown option (the message names the valid ones, see
            :mod:`selectsearch.route.registry`).
    """
    ROUTERS.check(spec.name, options)  # refuses what is left, naming the valid options
    csi = ensure_csi(index, rate=csi_rate)
    default_depth = 50 if spec.name == "redde" else 100
    return CsiVotingRouter(index, csi, method=spec.name, depth=depth or default_depth, base=base, threshold=threshold)
