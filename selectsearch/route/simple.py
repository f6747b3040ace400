"""The routers that need no learning: ``all``, ``random``, ``centroid`` and ``oracle``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from selectsearch.errors import RouteSpecError, SelectSearchError
from selectsearch.partition.base import QuerySpace
from selectsearch.route.base import Router, rank_by_scores
from selectsearch.types import EncodedQueries, Qrels, Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["CentroidRouter", "ExhaustiveRouter", "OracleRouter", "RandomRouter", "make_centroid_router",
           "make_oracle_router"]


class ExhaustiveRouter(Router):
    """Every shard, in shard-id order."""

    name = "all"

    def __init__(self, n_shards: int) -> None:
        self.n_shards = n_shards

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        return np.tile(np.arange(self.n_shards, dtype=np.int32), (len(queries), 1))


class RandomRouter(Router):
    """A seeded random permutation per query, derived from ``(seed, query text)``.

    The same query always gets the same shards, whatever batch it is in.
    """

    name = "random"

    def __init__(self, n_shards: int, seed: int = 0) -> None:
        self.n_shards = n_shards
        self.seed = seed

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        out = np.empty((len(queries), self.n_shards), np.int32)
        for i, q in enumerate(queries):
            digest = hashlib.sha256(f"{self.seed}\x00{q.text}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            out[i] = rng.permutation(self.n_shards)
        return out


class CentroidRouter(Router):
    """Shards ranked by the query's similarity to their k-means centroids."""

    name = "centroid"

    def __init__(self, space: QuerySpace) -> None:
        self.space = space

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        """``(n, K)`` similarity of each query to each shard's centroid."""
        return np.asarray(self.space.query_scores([q.text for q in queries]))

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        return rank_by_scores(self.scores(queries))

    def encoded_queries(self) -> EncodedQueries | None:
        encoded: EncodedQueries | None = getattr(self.space, "encoded", None)  # dense spaces embed queries
        return encoded


class OracleRouter(Router):
    """Shards ranked by how many relevant documents (relevance > 0) of the query they hold.

    Ties (and queries without judgements) fall back to larger shards first, then shard id.
    For evaluation only: it reads the answers.
    """

    name = "oracle"

    def __init__(self, qrels: Qrels, shard_of_doc: dict[str, int], shard_sizes: np.ndarray) -> None:
        if not qrels:
            raise SelectSearchError("the oracle router needs qrels; pass --data and --split (or qrels=...)")
        self.qrels = qrels
        self.shard_of_doc = shard_of_doc
        self.shard_sizes = np.asarray(shard_sizes, dtype=np.float64)

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        k = len(self.shard_sizes)
        # relevant count dominates; shard size (normalised below 1) breaks ties
        tie = self.shard_sizes / (self.shard_sizes.max() + 1.0)
        scores = np.tile(tie, (len(queries), 1))
        for i, q in enumerate(queries):
            for doc_id, rel in self.qrels.get(q.query_id, {}).items():
                shard = self.shard_of_doc.get(doc_id)
                if rel > 0 and shard is not None and shard < k:
                    scores[i, shard] += 1.0
        return rank_by_scores(scores)


def make_centroid_router(index: ShardedIndex) -> CentroidRouter:
    """The ``centroid`` router of ``index`` (its partition's feature space).

    Raises:
        RouteSpecError: the partition has no centroids (e.g. a random one).
    """
    space = index.partition.query_space()
    if space is None:
        raise RouteSpecError(
            f"'centroid' needs a partition with centroids; {index.path} was built with "
            f"{index.manifest.partition_kind!r} — use random@m/all or rebuild with --partitioner kmeans"
        )
    return CentroidRouter(space)


def make_oracle_router(index: ShardedIndex, qrels: Qrels | None = None) -> OracleRouter:
    """The ``oracle`` router of ``index`` for the judgements ``qrels``."""
    return OracleRouter(qrels or {}, index.shard_of_doc, index.shard_sizes)
