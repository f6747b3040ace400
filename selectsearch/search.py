"""SelectiveSearcher: route -> search the selected shards -> merge exactly -> (rerank).

Data flows one way for a batch: the router ranks shards for all queries at once, and each
query's top-``budget`` shards are searched by the *retriever*:

- ``bm25`` — collection-wide BM25 statistics, one Lucene pass over just those shards (see
  :mod:`selectsearch.lucene.searcher`);
- ``dense`` — the queries are embedded once and each selected shard's FAISS index is searched
  once for all queries that chose it (:mod:`selectsearch.dense.searcher`);
- ``hybrid`` — both over the same shards, fused by RRF or a normalised convex combination
  (:mod:`selectsearch.fusion`).

Hits are ordered by ``(-score, doc_id)`` (:mod:`selectsearch.ranking`), and every query gets a
:class:`~selectsearch.types.SearchTrace` whose ``extra`` records the retriever (and for dense
and hybrid the vectors scored and the fusion used). Batched stages (query encoding, dense
search) are timed per batch and split evenly over its queries, like routing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from selectsearch.errors import SelectSearchError
from selectsearch.fusion import FusionConfig, fuse
from selectsearch.index.sharded import ShardedIndex
from selectsearch.ranking import order_by_score, scores_below
from selectsearch.route import Router, RouteSpec, make_router, parse_route
from selectsearch.types import Hit, Qrels, Query, SearchResult, SearchTrace

__all__ = ["RETRIEVERS", "Reranker", "SelectiveSearcher", "rerank_head"]

#: what searches the selected shards
RETRIEVERS = ("bm25", "dense", "hybrid")


class Reranker(Protocol):
    """Re-scores the top candidates of a query (distilled cross-encoders, DynaMaR, ...)."""

    name: str

    def rerank(self, query: str, hits: Sequence[Hit], texts: Sequence[str]) -> list[Hit]:
        """Return ``hits`` re-scored and re-ordered, best first."""
        ...


def rerank_head(reranker: Reranker, query: str, hits: Sequence[Hit], depth: int,
                text_of: Callable[[str], str]) -> list[Hit]:
    """``hits`` with the top ``depth`` re-scored by ``reranker``; the rest keep their order below.

    The tail's scores are moved below the reranked head (:func:`~selectsearch.ranking.scores_below`)
    so that scores decrease down the whole list, as evaluators and run files require.
    ``text_of`` maps a doc id to the text the reranker reads.
    """
    head = reranker.rerank(query, hits[:depth], [text_of(h.doc_id) for h in hits[:depth]])
    tail = hits[depth:]
    moved = scores_below(head[-1].score, [h.score for h in tail]) if head else []
    return head + [h._replace(score=s) for h, s in zip(tail, moved, strict=True)]


class QueryAnnotator(Protocol):
    """Adds per-query outputs to traces (query classifiers, multi-task heads).

    :class:`selectsearch.models.text_classifier.QueryClassifier` is one: it stores the predicted
    label in ``trace.extra`` and its time in ``trace.timings_ms``.
    """

    def annotate(self, queries: Sequence[str], traces: Sequence[SearchTrace]) -> object:
        """Record this stage's output for every query in its trace."""
        ...


def _ms(seconds: float) -> float:
    return seconds * 1000.0


class SelectiveSearcher:
    """Search a sharded index through a router.

    Args:
        index: the opened index.
        router: ranks shards per query.
        budget: shards searched per query (``None``: all).
        route_name: label used in traces (defaults to ``router.name@budget``).
        threads: Java threads that search the selected shards of a query concurrently.
        reranker: optional reranker applied to the top ``rerank_depth`` hits; hits below that
            depth keep their order, their scores moved below the reranked ones.
        annotators: stages that add per-query outputs to the traces (e.g. a query classifier).
        retriever: ``bm25``, ``dense`` or ``hybrid`` (``None``: ``bm25`` when the index has
            Lucene, else ``dense``).
        fusion: how ``hybrid`` fuses BM25 and dense lists (default: RRF, k=60, depth 1000).
        dense_options: options of :class:`~selectsearch.dense.searcher.ShardedDenseSearcher`
            (``encoder``, ``nprobe``, ``efsearch``, ``threads``).

    Thread safety: a searcher may be shared between threads. Its searches run one at a time (a
    lock shared with the searchers made from it by :meth:`with_route` and :meth:`with_retriever`,
    which share its open Lucene readers and encoder), so concurrent calls return exactly what
    sequential calls return. Parallelism comes from inside a call: ``threads`` Java threads per
    query, numpy/torch kernels; for parallel queries use several processes (``selectsearch serve``).

    Example:
        >>> searcher = SelectiveSearcher.open("indexes/scifact-k16", route="centroid@2")  # doctest: +SKIP
        >>> hits = searcher.search("vitamin D deficiency and fractures", k=10)  # doctest: +SKIP
        >>> hits[0]  # doctest: +SKIP
        Hit(doc_id='...', score=..., shard_id=...)
    """

    def __init__(self, index: ShardedIndex, router: Router, budget: int | None = None, *,
                 route_name: str | None = None, threads: int = 1, reranker: Reranker | None = None,
                 rerank_depth: int = 100, annotators: Sequence[QueryAnnotator] = (), k1: float | None = None,
                 b: float | None = None, retriever: str | None = None, fusion: FusionConfig | None = None,
                 dense_options: Mapping[str, Any] | None = None) -> None:
        self.index = index
        self.router = router
        self.budget = budget
        self.route_name = route_name or (router.name if budget is None else f"{router.name}@{budget}")
        self.threads = threads
        self.reranker = reranker
        self.rerank_depth = rerank_depth
        self.annotators = tuple(annotators)
        self._bm25 = (k1, b)
        self._lucene: Any = None
        if retriever is None:
            retriever = "bm25" if index.has_backend("lucene") else "dense"
        if retriever not in RETRIEVERS:
            raise SelectSearchError(f"unknown retriever {retriever!r}; choose one of {', '.join(RETRIEVERS)}")
        if retriever != "dense" and not index.has_backend("lucene"):
            raise SelectSearchError(
                f"--retriever {retriever} needs Lucene but {index.path} was built with --backend faiss only; "
                "use --retriever dense or rebuild with --backend lucene,faiss")
        if retriever != "bm25" and not index.has_backend("faiss"):
            raise SelectSearchError(
                f"--retriever {retriever} needs the FAISS backend, which {index.path} does not have; add it with "
                f"`selectsearch index SOURCE... --out {index.path} --add-backend faiss`")
        self.retriever = retriever
        self.fusion = fusion or FusionConfig()
        self.dense_options = dict(dense_options or {})
        self._dense: Any = None
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: str | os.PathLike[str], route: str | RouteSpec = "all", *, qrels: Qrels | None = None,
             seed: int = 0, threads: int = 1, router_options: Mapping[str, Any] | None = None,
             **options: Any) -> SelectiveSearcher:
        """Open the index at ``path`` with the router of spec ``route`` (e.g. ``"centroid@2"``).

        ``router_options`` go to the router's factory (e.g. ``{"mico_model": "models/hd-mico16"}``).
        """
        index = ShardedIndex.open(path)
        spec = parse_route(route) if isinstance(route, str) else route
        router = make_router(spec, index, qrels=qrels, seed=seed, **dict(router_options or {}))
        return cls(index, router, spec.budget, route_name=str(spec), threads=threads, **options)

    def with_route(self, route: str | RouteSpec, *, qrels: Qrels | None = None, seed: int = 0) -> SelectiveSearcher:
        """A searcher on the same index (and the same open Lucene readers) with another route."""
        spec = parse_route(route) if isinstance(route, str) else route
        other = SelectiveSearcher(self.index, make_router(spec, self.index, qrels=qrels, seed=seed), spec.budget,
                                  route_name=str(spec), threads=self.threads, reranker=self.reranker,
                                  rerank_depth=self.rerank_depth, annotators=self.annotators,
                                  retriever=self.retriever, fusion=self.fusion, dense_options=self.dense_options)
        other._lucene = self._lucene
        other._dense = self._dense
        other._bm25 = self._bm25
        other._lock = self._lock  # the open backends are shared, so is the lock that guards them
        return other

    def with_retriever(self, retriever: str, fusion: FusionConfig | None = None) -> SelectiveSearcher:
        """A searcher with the same router and open backends but another retriever (or fusion)."""
        other = SelectiveSearcher(self.index, self.router, self.budget, route_name=self.route_name,
                                  threads=self.threads, reranker=self.reranker, rerank_depth=self.rerank_depth,
                                  annotators=self.annotators, retriever=retriever, fusion=fusion or self.fusion,
                                  dense_options=self.dense_options)
        other._lucene = self._lucene
        other._dense = self._dense
        other._bm25 = self._bm25
        other._lock = self._lock  # the open backends are shared, so is the lock that guards them
        return other

    @property
    def lucene(self) -> Any:
        """The shared :class:`~selectsearch.lucene.searcher.ShardedLuceneSearcher` (opened lazily)."""
        with self._lock:
            if self._lucene is None:
                self._lucene = self.index.lucene(k1=self._bm25[0], b=self._bm25[1], threads=self.threads)
            return self._lucene

    @property
    def dense(self) -> Any:
        """The shared :class:`~selectsearch.dense.searcher.ShardedDenseSearcher` (opened lazily)."""
        with self._lock:
            if self._dense is None:
                from selectsearch.dense.searcher import ShardedDenseSearcher

                self._dense = ShardedDenseSearcher(self.index, **self.dense_options)
            return self._dense

    def warm(self) -> None:
        """Open what the retriever needs (JVM and Lucene readers, encoder and FAISS indexes)."""
        if self.retriever != "dense":
            self.lucene  # noqa: B018
        if self.retriever != "bm25":
            self.dense.warm()

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """Top ``k`` hits for one query text."""
        return self.batch_search([Query("q", query)], k=k)["q"].hits

    def batch_search(self, queries: Mapping[str, str] | Sequence[Query], k: int = 100) -> dict[str, SearchResult]:
        """Search many queries; returns ``{query_id: SearchResult(hits, trace)}`` in input order.

        Routing runs once for the whole batch; its time is split evenly over the queries.
        """
        qs = as_queries(queries)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not qs:
            return {}
        with self._lock:  # one batch at a time: see "Thread safety" in the class docstring
            self.warm()  # open before timing: a one-off cost, not a per-query one
            t0 = time.perf_counter()
            selected = self.router.select(qs, self.budget)
            route_ms = _ms(time.perf_counter() - t0) / len(qs)
            results = self.search_selected(qs, selected, k=k, route_ms=route_ms)
            for annotator in self.annotators:
                annotator.annotate([q.text for q in qs], [results[q.query_id].trace for q in qs])
        return results

    def search_selected(self, queries: Sequence[Query], selected: Sequence[Sequence[int]], *, k: int,
                        route_ms: float = 0.0, route_name: str | None = None) -> dict[str, SearchResult]:
        """Search each query over the shards chosen for it (routing already done).

        ``route_ms`` is recorded as each query's routing time; evaluation sweeps use this to
        route once and search at many budgets.
        """
        with self._lock:
            return self._search_selected(queries, selected, k=k, route_ms=route_ms, route_name=route_name)

    def _search_selected(self, queries: Sequence[Query], selected: Sequence[Sequence[int]], *, k: int,
                         route_ms: float, route_name: str | None) -> dict[str, SearchResult]:
        depth = max(k, self.rerank_depth) if self.reranker is not None else k
        searched = [sorted({int(s) for s in sel}) for sel in selected]
        if self.retriever == "bm25":
            retrieved = self._bm25_hits(queries, searched, depth)
        elif self.retriever == "dense":
            retrieved = self._dense_hits(queries, searched, depth)
        else:
            retrieved = self._hybrid_hits(queries, searched, depth)
        sizes = self.index.shard_sizes
        out: dict[str, SearchResult] = {}
        for q, shards, (hits, timings, extra) in zip(queries, searched, retrieved, strict=True):
            trace = SearchTrace(
                query_id=q.query_id, route=route_name or self.route_name, shards=shards,
                docs_scored=int(sizes[shards].sum()) if shards else 0,
                timings_ms={"route": route_ms, **timings}, extra={"retriever": self.retriever, **extra},
            )
            if self.reranker is not None:
                t = time.perf_counter()
                hits = rerank_head(self.reranker, q.text, hits, self.rerank_depth,
                                   lambda doc_id: self.index.doc(doc_id)["contents"])
                trace.timings_ms["rerank"] = _ms(time.perf_counter() - t)
            out[q.query_id] = SearchResult(hits[:k], trace)
        return out

    def _bm25_hits(self, queries: Sequence[Query], searched: Sequence[list[int]],
                   depth: int) -> list[tuple[list[Hit], dict[str, float], dict[str, Any]]]:
        lucene = self.lucene
        lucene_pos = {s: i for i, s in enumerate(self.index.lucene_shards)}  # empty shards have no index
        doc_ids = self.index.global_doc_ids
        shard_ids = self.index.global_shard_ids
        out: list[tuple[list[Hit], dict[str, float], dict[str, Any]]] = []
        # one query after the other from Python; Lucene searches a query's shards with `threads` in Java
        for q, shards in zip(queries, searched, strict=True):
            t = time.perf_counter()
            docids, scores = lucene.search(q.text, depth, [lucene_pos[s] for s in shards if s in lucene_pos])
            search_ms = _ms(time.perf_counter() - t)
            t = time.perf_counter()
            ids = doc_ids[docids].tolist()
            score_list = scores.tolist()
            shard_list = shard_ids[docids].tolist()
            hits = [Hit(ids[j], score_list[j], shard_list[j]) for j in order_by_score(score_list, ids)]
            out.append((hits, {"search": search_ms, "merge": _ms(time.perf_counter() - t)}, {}))
        return out

    def _dense_hits(self, queries: Sequence[Query], searched: Sequence[list[int]],
                    depth: int) -> list[tuple[list[Hit], dict[str, float], dict[str, Any]]]:
        dense = self.dense
        texts = [q.text for q in queries]
        reused = dense.reusable_vectors(self.router.encoded_queries(), texts)
        if reused is not None:  # the router embedded these queries with our encoder: its cost is in `route`
            vectors, encode_ms, source = reused, np.zeros(len(texts)), "router"
        else:
            (vectors, encode_ms), source = dense.encode_timed(texts), "encoder"
        t = time.perf_counter()
        found = dense.search_vectors(vectors, searched, depth)
        search_ms = _ms(time.perf_counter() - t) / max(len(queries), 1)
        return [([Hit(d, sc, sh) for d, sc, sh in zip(r.doc_ids, r.scores, r.shards, strict=True)],
                 {"encode": float(ms), "search": search_ms},
                 {"vectors_scored": r.vectors_scored, "query_vector": source})
                for r, ms in zip(found, encode_ms.tolist(), strict=True)]

    def _hybrid_hits(self, queries: Sequence[Query], searched: Sequence[list[int]],
                     depth: int) -> list[tuple[list[Hit], dict[str, float], dict[str, Any]]]:
        depth = max(depth, self.fusion.depth)
        lexical = self._bm25_hits(queries, searched, depth)
        dense = self._dense_hits(queries, searched, depth)
        out: list[tuple[list[Hit], dict[str, float], dict[str, Any]]] = []
        for (bm25_hits, bm25_ms, _), (dense_hits, dense_ms, dense_extra) in zip(lexical, dense, strict=True):
            t = time.perf_counter()
            shard_of = {h.doc_id: h.shard_id for h in bm25_hits}
            shard_of.update((h.doc_id, h.shard_id) for h in dense_hits)
            fused = fuse([[(h.doc_id, h.score) for h in bm25_hits], [(h.doc_id, h.score) for h in dense_hits]],
                         self.fusion)
            hits = [Hit(d, score, shard_of[d]) for d, score in fused]
            timings = {"encode": dense_ms["encode"], "search": bm25_ms["search"] + dense_ms["search"],
                       "merge": bm25_ms["merge"] + _ms(time.perf_counter() - t)}
            extra = {"fusion": self.fusion.describe(), "vectors_scored": dense_extra["vectors_scored"],
                     "search_ms_bm25": bm25_ms["search"], "search_ms_dense": dense_ms["search"]}
            out.append((hits, timings, extra))
        return out


def as_queries(queries: Mapping[str, str] | Sequence[Query]) -> list[Query]:
    """``{query_id: text}`` or a sequence of :class:`Query` as a list of :class:`Query`."""
    if isinstance(queries, Mapping):
        return [Query(str(qid), text) for qid, text in queries.items()]
    return list(queries)
