"""Shard searchers of one process: Lucene BM25, FAISS, and the two fused.

Every one searches each query over its own list of shards and merges exactly
(:class:`~selectsearch.pipeline.stages.ShardSearcher`):

- ``bm25`` (:class:`LuceneShards`) — collection-wide BM25 statistics, one Lucene pass over just
  the selected shards (:mod:`selectsearch.lucene.searcher`);
- ``dense`` (:class:`DenseShards`) — the queries are embedded once (or the router's vectors are
  reused) and each selected shard's FAISS index is searched once for all queries that chose it
  (:mod:`selectsearch.dense.searcher`);
- ``hybrid`` (:class:`FusedShards`) — both over the same shards, fused by RRF or a normalised
  convex combination (:mod:`selectsearch.fusion`).

They share the opened engines of an index through :class:`Engines` (one JVM reader set, one
encoder), so switching retriever or route never reopens anything. Batched stages (query
encoding, dense search) are timed per batch and split evenly over its queries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import SelectSearchError
from selectsearch.fusion import FusionConfig, fuse
from selectsearch.pipeline.stages import Retrieved, ShardSearcher
from selectsearch.registry import Registry
from selectsearch.types import Hit, HitList, Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["RETRIEVERS", "DenseShards", "Engines", "FusedShards", "LuceneShards", "default_retriever",
           "make_shard_searcher", "register_retriever"]


def _ms(seconds: float) -> float:
    return seconds * 1000.0


class Engines:
    """The search engines of one index, opened on first use and shared by every searcher over it.

    ``lock`` serialises the searches that use them (pyjnius and the memoised encoder are shared
    state); searchers made from one another share it with the engines.
    """

    def __init__(self, index: ShardedIndex, *, threads: int = 1, k1: float | None = None, b: float | None = None,
                 dense_options: Mapping[str, Any] | None = None) -> None:
        self.index = index
        self.threads = threads
        self.bm25 = (k1, b)
        self.dense_options = dict(dense_options or {})
        self.lock = threading.RLock()
        self._lucene: Any = None
        self._dense: Any = None

    @property
    def lucene(self) -> Any:
        """The :class:`~selectsearch.lucene.searcher.ShardedLuceneSearcher` (starts the JVM)."""
        with self.lock:
            if self._lucene is None:
                self._lucene = self.index.lucene(k1=self.bm25[0], b=self.bm25[1], threads=self.threads)
            return self._lucene

    @property
    def dense(self) -> Any:
        """The :class:`~selectsearch.dense.searcher.ShardedDenseSearcher` (loads the encoder lazily)."""
        with self.lock:
            if self._dense is None:
                from selectsearch.dense.searcher import ShardedDenseSearcher

                self._dense = ShardedDenseSearcher(self.index, **self.dense_options)
            return self._dense


class LuceneShards:
    """BM25 over the selected shards with collection-wide statistics (``bm25``).

    The engine cuts and orders each query's hits by (score, doc id) itself (the index's searcher
    has its tie ranks, :attr:`~selectsearch.index.sharded.ShardedIndex.doc_id_ranks`), so the
    hits are handed on as columns (:class:`~selectsearch.types.HitList`): no Python object per
    hit until one is read.
    """

    name = "bm25"

    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        self._engine_shard: list[int] | None = None  # the engine's number of each shard (-1: empty)

    def warm(self) -> None:
        self.engines.lucene  # noqa: B018 - opening is the point

    def describe(self) -> dict[str, Any]:
        return {}

    def routes_in_engine(self, router: Any) -> bool:
        """Whether :meth:`search_routed` can route one query by ``router`` inside the engine: the
        router scores in Java (CORI, ``engine_scorer``) and the compiled engine is there."""
        return getattr(router, "engine_scorer", None) is not None and self.engines.lucene.batched

    def search_routed(self, query: Query, router: Any, budget: int, depth: int
                      ) -> tuple[list[int], np.ndarray, Retrieved] | None:
        """Route one query by ``router`` and search its ``budget`` best shards in one call into
        Java (:meth:`~selectsearch.lucene.searcher.ShardedLuceneSearcher.search_routed`): the
        shards chosen (best first), the router's score of every shard, and the hits — the same as
        ``router.select`` then :meth:`search`, without routing in Python (a third of a selective
        query's CPU at k=10). ``None`` when :meth:`routes_in_engine` is false."""
        if not self.routes_in_engine(router):
            return None
        index = self.engines.index
        t = time.perf_counter()
        found = self.engines.lucene.search_routed(query.text, router.engine_scorer, budget, self._engine_shards(),
                                                  depth)
        search_ms = _ms(time.perf_counter() - t)
        if found is None:
            return None
        docids, scores, shards, router_scores = found
        t = time.perf_counter()
        hits = HitList(index.global_doc_ids, docids, scores, index.global_shard_ids)
        return shards, router_scores, Retrieved(hits, {"search": search_ms, "merge": _ms(time.perf_counter() - t)})

    def _engine_shards(self) -> list[int]:
        """Each shard's number in the Lucene engine, -1 for an empty shard (it has no index)."""
        if self._engine_shard is None:
            index = self.engines.index
            lucene_pos = {s: i for i, s in enumerate(index.lucene_shards)}
            self._engine_shard = [lucene_pos.get(s, -1) for s in range(index.n_shards)]
        return self._engine_shard

    def search(self, queries: Sequence[Query], shard_lists: Sequence[Sequence[int]], depth: int, *,
               encoded: Any = None) -> list[Retrieved]:
        index = self.engines.index
        lucene = self.engines.lucene
        engine = self._engine_shards()
        doc_ids = index.global_doc_ids
        shard_ids = index.global_shard_ids
        # the whole batch in one call (one crossing into Java with the compiled engine); its time
        # is split evenly over the queries, like the other batched stages
        t = time.perf_counter()
        found = lucene.search_batch([q.text for q in queries], depth,
                                    [[engine[s] for s in shards if 0 <= s < len(engine) and engine[s] >= 0]
                                     for shards in shard_lists])
        search_ms = _ms(time.perf_counter() - t) / max(len(queries), 1)
        out: list[Retrieved] = []
        for i in range(len(queries)):
            t = time.perf_counter()
            docids, scores = found.query(i)
            hits = HitList(doc_ids, docids, scores, shard_ids)  # Hit objects made when read
            out.append(Retrieved(hits, {"search": search_ms, "merge": _ms(time.perf_counter() - t)}))
        return out


class DenseShards:
    """FAISS search of the selected shards' embeddings (``dense``)."""

    name = "dense"

    def __init__(self, engines: Engines) -> None:
        self.engines = engines

    def warm(self) -> None:
        self.engines.dense.warm()

    def describe(self) -> dict[str, Any]:
        return {}

    def search(self, queries: Sequence[Query], shard_lists: Sequence[Sequence[int]], depth: int, *,
               encoded: Any = None) -> list[Retrieved]:
        dense = self.engines.dense
        texts = [q.text for q in queries]
        reused = dense.reusable_vectors(encoded, texts)
        if reused is not None:  # the router embedded these queries with our encoder: its cost is in `route`
            vectors, encode_ms, source = reused, np.zeros(len(texts)), "router"
        else:
            (vectors, encode_ms), source = dense.encode_timed(texts), "encoder"
        t = time.perf_counter()
        found = dense.search_vectors(vectors, shard_lists, depth)
        search_ms = _ms(time.perf_counter() - t) / max(len(queries), 1)
        return [Retrieved([Hit(d, sc, sh) for d, sc, sh in zip(r.doc_ids, r.scores, r.shards, strict=True)],
                          {"encode": float(ms), "search": search_ms},
                          {"vectors_scored": r.vectors_scored, "query_vector": source})
                for r, ms in zip(found, encode_ms.tolist(), strict=True)]


class FusedShards:
    """BM25 and dense over the same shards, fused (``hybrid``; :mod:`selectsearch.fusion`)."""

    name = "hybrid"

    def __init__(self, engines: Engines, fusion: FusionConfig | None = None) -> None:
        self.engines = engines
        self.fusion = fusion or FusionConfig()
        self.lexical = LuceneShards(engines)
        self.dense = DenseShards(engines)

    def warm(self) -> None:
        self.lexical.warm()
        self.dense.warm()

    def describe(self) -> dict[str, Any]:
        return {"fusion": self.fusion.describe()}

    def search(self, queries: Sequence[Query], shard_lists: Sequence[Sequence[int]], depth: int, *,
               encoded: Any = None) -> list[Retrieved]:
        depth = max(depth, self.fusion.depth)
        lexical = self.lexical.search(queries, shard_lists, depth)
        dense = self.dense.search(queries, shard_lists, depth, encoded=encoded)
        out: list[Retrieved] = []
        for bm25, vec in zip(lexical, dense, strict=True):
            t = time.perf_counter()
            shard_of = {h.doc_id: h.shard_id for h in bm25.hits}
            shard_of.update((h.doc_id, h.shard_id) for h in vec.hits)
            fused = fuse([[(h.doc_id, h.score) for h in bm25.hits], [(h.doc_id, h.score) for h in vec.hits]],
                         self.fusion)
            hits = [Hit(d, score, shard_of[d]) for d, score in fused]
            timings = {"encode": vec.timings_ms["encode"],
                       "search": bm25.timings_ms["search"] + vec.timings_ms["search"],
                       "merge": bm25.timings_ms["merge"] + _ms(time.perf_counter() - t)}
            extra = {"fusion": self.fusion.describe(), "vectors_scored": vec.extra["vectors_scored"],
                     "search_ms_bm25": bm25.timings_ms["search"], "search_ms_dense": vec.timings_ms["search"]}
            out.append(Retrieved(hits, timings, extra))
        return out


#: every shard searcher by ``--retriever`` name (add yours with :func:`register_retriever` or the
#: ``selectsearch.retrievers`` entry points); ``meta["needs"]`` names the index backends it uses
RETRIEVERS = Registry("retriever", group="selectsearch.retrievers", context=("engines", "fusion"))


def register_retriever(name: str, factory: Any = None, *, description: str | None = None,
                       needs: tuple[str, ...] = (), replace: bool = False) -> Any:
    """Register a shard searcher as ``--retriever name``; a decorator without ``factory``.

    Args:
        name: lower-case name (``[a-z][a-z0-9_-]*``).
        factory: a :class:`~selectsearch.pipeline.ShardSearcher` class or a function returning one;
            called with ``engines`` (the index's shared :class:`Engines`) and ``fusion`` when it
            names them as parameters.
        description: one line for ``--help`` (default: the factory's docstring's first line).
        needs: index backends it uses (``"lucene"``, ``"faiss"``): checked before it is built.
        replace: replace a retriever registered under ``name`` before.
    """
    return RETRIEVERS.register(name, factory, description=description, replace=replace, needs=tuple(needs))


register_retriever("bm25", LuceneShards, needs=("lucene",),
                   description="BM25 with collection-wide statistics over the selected shards (Lucene)")
register_retriever("dense", DenseShards, needs=("faiss",),
                   description="nearest neighbours of the query embedding in the selected shards (FAISS)")
register_retriever("hybrid", FusedShards, needs=("lucene", "faiss"),
                   description="BM25 and dense over the same shards, fused (--fusion rrf or convex)")


def default_retriever(index: ShardedIndex) -> str:
    """``bm25`` when the index has Lucene, else ``dense``."""
    return "bm25" if index.has_backend("lucene") else "dense"


def make_shard_searcher(retriever: str, engines: Engines, fusion: FusionConfig | None = None) -> ShardSearcher:
    """The shard searcher of ``retriever`` over ``engines``' index.

    Raises:
        SelectSearchError: an unknown retriever, or one the index lacks the backend for (naming the fix).
    """
    index = engines.index
    needs = RETRIEVERS.entry(retriever).meta.get("needs", ())
    if "lucene" in needs and not index.has_backend("lucene"):
        raise SelectSearchError(
            f"--retriever {retriever} needs Lucene but {index.path} was built with --backend faiss only; "
            "use --retriever dense or rebuild with --backend lucene,faiss")
    if "faiss" in needs and not index.has_backend("faiss"):
        raise SelectSearchError(
            f"--retriever {retriever} needs the FAISS backend, which {index.path} does not have; add it with "
            f"`selectsearch index SOURCE... --out {index.path} --add-backend faiss`")
    searcher: ShardSearcher = RETRIEVERS.build(retriever, {}, {"engines": engines, "fusion": fusion})
    return searcher
