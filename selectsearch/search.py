"""SelectiveSearcher: the query pipeline as a composition of values.

route (a :class:`~selectsearch.route.Router`) -> search the selected shards and merge exactly
(a :class:`~selectsearch.pipeline.ShardSearcher`: ``bm25``, ``dense`` or ``hybrid``, see
:mod:`selectsearch.pipeline.shards`) -> optional reranker -> annotators. The stages are in
:mod:`selectsearch.pipeline`; the serving coordinator composes the same ones over Ray.

Hits are ordered by ``(-score, doc_id)`` (:mod:`selectsearch.ranking`), and every query gets a
:class:`~selectsearch.types.SearchTrace` whose ``extra`` records the retriever (and for dense
and hybrid the vectors scored and the fusion used).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from selectsearch.fusion import FusionConfig
from selectsearch.index.sharded import ShardedIndex
from selectsearch.pipeline.shards import Engines, default_retriever, make_shard_searcher
from selectsearch.pipeline.stages import QueryAnnotator, Reranker, Retrieved, ShardSearcher, assemble, rerank_head
from selectsearch.route import Router, RouteSpec, as_route, make_router
from selectsearch.types import Hit, Qrels, Query, SearchResult

__all__ = ["QueryAnnotator", "Reranker", "SelectiveSearcher", "as_queries", "rerank_head"]

def _ms(seconds: float) -> float:
    return seconds * 1000.0


class SelectiveSearcher:
    """Search a sharded index through a router: router + shard searcher + reranker + annotators.

    Args:
        index: the opened index.
        router: ranks shards per query.
        budget: shards searched per query (``None``: all, or the router's own cut-off).
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
        engines: the opened engines of ``index`` to share (what :meth:`with_route` and
            :meth:`with_retriever` pass on); ``threads``, ``k1``, ``b`` and ``dense_options``
            configure new ones.
        shard_searcher: any :class:`~selectsearch.pipeline.ShardSearcher` to use instead of the
            ``retriever``'s (your own engine, or :class:`~selectsearch.serve.remote.RemoteShards`).

    Thread safety: a searcher may be shared between threads. Its searches run one at a time (a
    lock shared, with the engines, by the searchers made from it by :meth:`with_route` and
    :meth:`with_retriever`), so concurrent calls return exactly what sequential calls return.
    Parallelism comes from inside a call: ``threads`` Java threads per query, numpy/torch
    kernels; for parallel queries use several processes (``selectsearch serve``).

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
                 dense_options: Mapping[str, Any] | None = None, engines: Engines | None = None,
                 shard_searcher: ShardSearcher | None = None) -> None:
        self.index = index
        self.router = router
        self.budget = budget
        self.route_name = route_name or (router.name if budget is None else f"{router.name}@{budget}")
        self.reranker = reranker
        self.rerank_depth = rerank_depth
        self.annotators = tuple(annotators)
        self.engines = engines or Engines(index, threads=threads, k1=k1, b=b, dense_options=dense_options)
        self.fusion = fusion or FusionConfig()
        self.shards: ShardSearcher = shard_searcher or make_shard_searcher(
            retriever or default_retriever(index), self.engines, self.fusion)

    @property
    def retriever(self) -> str:
        """The shard searcher's name: ``bm25``, ``dense`` or ``hybrid``."""
        return self.shards.name

    @property
    def threads(self) -> int:
        return self.engines.threads

    @property
    def dense_options(self) -> dict[str, Any]:
        return self.engines.dense_options

    @classmethod
    def open(cls, path: str | os.PathLike[str], route: str | RouteSpec | Router | type[Router] = "all", *,
             qrels: Qrels | None = None, seed: int = 0, threads: int = 1,
             router_options: Mapping[str, Any] | None = None,
             **options: Any) -> SelectiveSearcher:
        """Open the index at ``path`` with the router of spec ``route`` (e.g. ``"centroid@2"``; a
        :class:`~selectsearch.route.Router` object or class also works, see :func:`~selectsearch.route.as_route`).

        ``router_options`` go to the router's factory (e.g. ``{"mico_model": "models/hd-mico16"}``).
        """
        index = ShardedIndex.open(path)
        spec = as_route(route)
        router = make_router(spec, index, qrels=qrels, seed=seed, **dict(router_options or {}))
        return cls(index, router, spec.budget, route_name=str(spec), threads=threads, **options)

    def with_route(self, route: str | RouteSpec | Router | type[Router], *, qrels: Qrels | None = None,
                   seed: int = 0) -> SelectiveSearcher:
        """A searcher on the same index (and the same open engines) with another route."""
        spec = as_route(route)
        return self.with_router(make_router(spec, self.index, qrels=qrels, seed=seed), spec.budget, str(spec))

    def with_router(self, router: Router, budget: int | None = None, route_name: str | None = None
                    ) -> SelectiveSearcher:
        """A searcher with this router instance and budget, sharing everything else."""
        return self._derive(router=router, budget=budget, route_name=route_name)

    def with_retriever(self, retriever: str, fusion: FusionConfig | None = None) -> SelectiveSearcher:
        """A searcher with the same router and open engines but another retriever (or fusion)."""
        return self._derive(retriever=retriever, fusion=fusion or self.fusion, shard_searcher=None)

    def with_reranker(self, reranker: Reranker | None, depth: int | None = None) -> SelectiveSearcher:
        """A searcher that reranks the top ``depth`` hits (default: this searcher's depth) with
        ``reranker`` (``None``: no reranking), sharing everything else."""
        return self._derive(reranker=reranker, rerank_depth=self.rerank_depth if depth is None else depth)

    def _derive(self, **changes: Any) -> SelectiveSearcher:
        # every stage is a value: a derived searcher shares the others, and the open engines
        stages: dict[str, Any] = {"router": self.router, "budget": self.budget, "route_name": self.route_name,
                                  "reranker": self.reranker, "rerank_depth": self.rerank_depth,
                                  "annotators": self.annotators, "fusion": self.fusion, "engines": self.engines,
                                  "shard_searcher": self.shards}
        stages.update(changes)
        return SelectiveSearcher(self.index, **stages)

    @property
    def lucene(self) -> Any:
        """The shared :class:`~selectsearch.lucene.searcher.ShardedLuceneSearcher` (opened lazily)."""
        return self.engines.lucene

    @property
    def dense(self) -> Any:
        """The shared :class:`~selectsearch.dense.searcher.ShardedDenseSearcher` (opened lazily)."""
        return self.engines.dense

    def warm(self) -> None:
        """Open what the retriever needs (JVM and Lucene readers, encoder and FAISS indexes)."""
        self.shards.warm()

    def search(self, query: str, k: int = 10) -> Sequence[Hit]:
        """Top ``k`` hits for one query text (a list of :class:`~selectsearch.types.Hit`; for BM25 a
        :class:`~selectsearch.types.HitList`, which reads as one)."""
        return self.batch_search([Query("q", query)], k=k)["q"].hits

    def batch_search(self, queries: Mapping[str, str] | Sequence[Query], k: int = 100, *,
                     explain: bool = False) -> dict[str, SearchResult]:
        """Search many queries; returns ``{query_id: SearchResult(hits, trace)}`` in input order.

        Routing runs once for the whole batch; its time is split evenly over the queries.
        ``explain`` records the router's score of every shard in each trace
        (``extra["shard_scores"]``, see :func:`~selectsearch.pipeline.assemble`).
        """
        qs = as_queries(queries)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not qs:
            return {}
        with self.engines.lock:  # one batch at a time: see "Thread safety" in the class docstring
            self.warm()  # open before timing: a one-off cost, not a per-query one
            results = self._search_routed_in_engine(qs[0], k, explain) if len(qs) == 1 else None
            if results is None:
                t0 = time.perf_counter()
                selected = self.router.select(qs, self.budget)
                route_ms = _ms(time.perf_counter() - t0) / len(qs)
                details = self.router.route_details()
                results = self.search_selected(qs, selected, k=k, route_ms=route_ms,
                                               router_scores=self.router.last_scores(qs), explain=explain)
                if details is not None:
                    for q, detail in zip(qs, details, strict=True):
                        results[q.query_id].trace.extra["route"] = detail
            for annotator in self.annotators:
                annotator.annotate([q.text for q in qs], [results[q.query_id].trace for q in qs])
        return results

    def route_budgets(self, queries: Sequence[Query], budgets: Sequence[int | None]
                      ) -> tuple[np.ndarray, list[list[list[int]]], float]:
        """Route once for several budgets (evaluation sweeps): the router's ranking, each budget's
        shards per query (:meth:`~selectsearch.route.Router.selections`) and the routing time per
        query in ms. Search them with :meth:`search_selected`."""
        with self.engines.lock:
            t0 = time.perf_counter()
            ranking, selections = self.router.selections(queries, budgets)
            return ranking, selections, _ms(time.perf_counter() - t0) / max(len(queries), 1)

    @property
    def routes_in_engine(self) -> bool:
        """Whether one query at a time is routed inside the search engine: a fixed budget, a router
        that scores in Java (CORI) and the compiled Lucene engine. Then :meth:`batch_search` of one
        query makes one call into Java for routing and search (the same shards and hits; its trace
        records ``route`` as 0 ms, the search time including the routing, and
        ``extra["routed_in_engine"] = True``); batches of queries are routed in Python, where CORI
        scores a whole batch at once."""
        routes = getattr(self.shards, "routes_in_engine", None)
        return self.budget is not None and routes is not None and bool(routes(self.router))

    def _search_routed_in_engine(self, query: Query, k: int, explain: bool) -> dict[str, SearchResult] | None:
        """:meth:`batch_search` of one query routed inside the engine, or ``None`` when it cannot be."""
        if not self.routes_in_engine:
            return None
        found = self.shards.search_routed(query, self.router, self.budget, self._depth(k))  # type: ignore[attr-defined]
        if found is None:
            return None
        shards, router_scores, retrieved = found
        retrieved.extra["routed_in_engine"] = True
        return self._assemble([query], [sorted(shards)], [retrieved], k=k, route_ms=0.0, route_name=None,
                              router_scores=router_scores[None, :], explain=explain)

    def search_selected(self, queries: Sequence[Query], selected: Sequence[Sequence[int]], *, k: int,
                        route_ms: float = 0.0, route_name: str | None = None,
                        router_scores: np.ndarray | None = None, explain: bool = False
                        ) -> dict[str, SearchResult]:
        """Search each query over the shards chosen for it (routing already done).

        ``route_ms`` is recorded as each query's routing time; evaluation sweeps use this to
        route once (:meth:`~selectsearch.route.Router.selections`) and search at many budgets.
        ``router_scores`` (the router's :meth:`~selectsearch.route.Router.last_scores`) puts the
        scores of each query's selected shards in its trace (``extra["router_scores"]``), and with
        ``explain`` those of every shard (``extra["shard_scores"]``).
        """
        depth = self._depth(k)
        shard_lists = [sorted({int(s) for s in sel}) for sel in selected]
        with self.engines.lock:
            retrieved = self.shards.search(queries, shard_lists, depth, encoded=self.router.encoded_queries())
            return self._assemble(queries, shard_lists, retrieved, k=k, route_ms=route_ms, route_name=route_name,
                                  router_scores=router_scores, explain=explain)

    def _depth(self, k: int) -> int:
        """Hits to retrieve for ``k`` results: the reranker reads ``rerank_depth`` of them."""
        return max(k, self.rerank_depth) if self.reranker is not None else k

    def _assemble(self, queries: Sequence[Query], shard_lists: Sequence[Sequence[int]],
                  retrieved: Sequence[Retrieved], *, k: int, route_ms: float, route_name: str | None,
                  router_scores: np.ndarray | None, explain: bool) -> dict[str, SearchResult]:
        """:func:`~selectsearch.pipeline.assemble` with this searcher's route name, retriever and reranker."""
        return assemble(queries, shard_lists, retrieved, k=k, route_ms=route_ms,
                        route_name=route_name or self.route_name, shard_sizes=self.index.shard_sizes,
                        trace_extra={"retriever": self.retriever}, reranker=self.reranker,
                        rerank_depth=self.rerank_depth, text_of=self._text, router_scores=router_scores,
                        explain=explain)

    def _text(self, doc_id: str) -> str:
        return str(self.index.doc(doc_id)["contents"])


def as_queries(queries: Mapping[str, str] | Sequence[Query]) -> list[Query]:
    """``{query_id: text}`` or a sequence of :class:`Query` as a list of :class:`Query`."""
    if isinstance(queries, Mapping):
        return [Query(str(qid), text) for qid, text in queries.items()]
    return list(queries)
