"""The stages of the one query pipeline, and the step that turns their output into results.

Route -> search the selected shards -> merge -> (rerank) -> cut to ``k``. The router is a
:class:`~selectsearch.route.Router`; searching and merging is a :class:`ShardSearcher`
(Lucene, FAISS, both fused — :mod:`selectsearch.pipeline.shards` — or shard groups on Ray —
:mod:`selectsearch.serve.remote`); :func:`assemble` is the single place where the hits of a
batch become :class:`~selectsearch.types.SearchResult` objects with their traces and are
reranked. :class:`~selectsearch.search.SelectiveSearcher` composes these stages in process, the
serving coordinator composes the same ones over Ray.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from selectsearch.ranking import scores_below
from selectsearch.types import Hit, Query, SearchResult, SearchTrace

__all__ = ["QueryAnnotator", "Reranker", "Retrieved", "ShardSearcher", "assemble", "rerank_head", "selected_scores"]


@dataclass
class Retrieved:
    """One query's merged hits from the shards it was sent to, best first, and what they cost.

    ``timings_ms`` holds the stage times (``search``, ``merge``, ``encode`` ...), ``extra`` what
    the trace should record (vectors scored, fusion, shard groups ...). ``missing_shards`` are
    selected shards that did not answer (only remote search has them); ``error`` marks a query
    whose search failed on its own (it gets no hits and is not reranked).
    """

    hits: Sequence[Hit]  #: a list, or a HitList (:class:`~selectsearch.types.HitList`)
    timings_ms: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)
    missing_shards: list[int] = field(default_factory=list)
    error: dict[str, Any] | None = None


class ShardSearcher(Protocol):
    """Searches each query over its own list of shards and merges the hits exactly.

    ``encoded`` is whatever query vectors an earlier stage computed for these queries (the
    router's, :meth:`~selectsearch.route.Router.encoded_queries`); a dense searcher reuses them
    when they come from its own encoder, others ignore them.
    """

    #: the retriever's name in traces and result rows (``bm25``, ``dense``, ``hybrid``)
    name: str

    def warm(self) -> None:
        """Open what searching needs now, so that it is not counted as query time."""
        ...

    def search(self, queries: Sequence[Query], shard_lists: Sequence[Sequence[int]], depth: int, *,
               encoded: Any = None) -> list[Retrieved]:
        """The top ``depth`` hits of every query over its shards, one :class:`Retrieved` each."""
        ...

    def describe(self) -> dict[str, Any]:
        """What distinguishes this searcher in a result row (e.g. the fusion), else ``{}``."""
        ...


class Reranker(Protocol):
    """Re-scores the top candidates of a query (distilled cross-encoders, DynaMaR, ...)."""

    name: str

    def rerank(self, query: str, hits: Sequence[Hit], texts: Sequence[str]) -> list[Hit]:
        """Return ``hits`` re-scored and re-ordered, best first."""
        ...


class QueryAnnotator(Protocol):
    """Adds per-query outputs to traces (query classifiers, multi-task heads).

    :class:`selectsearch.models.text_classifier.QueryClassifier` is one: it stores the predicted
    label in ``trace.extra`` and its time in ``trace.timings_ms``.
    """

    def annotate(self, queries: Sequence[str], traces: Sequence[SearchTrace]) -> object:
        """Record this stage's output for every query in its trace."""
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


def selected_scores(scores: np.ndarray, shards: Sequence[int]) -> dict[str, float]:
    """``{shard id: router score}`` of a query's selected shards, best first (JSON keys are strings).

    Example:
        >>> selected_scores(np.array([0.1, 0.7, 0.3]), [0, 1])
        {'1': 0.7, '0': 0.1}
    """
    row = np.asarray(scores, dtype=np.float64)
    order = sorted(shards, key=lambda s: (-row[s], s))
    return {str(int(s)): float(row[s]) for s in order}


def assemble(queries: Sequence[Query], shard_lists: Sequence[Sequence[int]], retrieved: Sequence[Retrieved], *,
             k: int, route_ms: float, route_name: str, shard_sizes: np.ndarray,
             trace_extra: Mapping[str, Any] | None = None, reranker: Reranker | None = None,
             rerank_depth: int = 100, text_of: Callable[[str], str] | None = None,
             router_scores: np.ndarray | None = None, explain: bool = False) -> dict[str, SearchResult]:
    """``{query_id: SearchResult}`` in input order: traces built, hits reranked, cut to ``k``.

    A trace counts as documents scored the documents of the shards that answered (none for a
    query whose search failed). ``trace_extra`` is recorded in every trace, before the query's
    own ``extra``. ``router_scores`` (``(len(queries), n_shards)``, the router's
    :meth:`~selectsearch.route.Router.last_scores`) puts each query's scores of its selected
    shards in its trace (:func:`selected_scores`); with ``explain`` the trace also gets the scores
    of every shard, ``extra["shard_scores"]`` (a list indexed by shard id; ``None`` for a router
    that ranks without scores), which is what a routing chart draws. The reranker (with ``text_of`` giving the
    texts it reads) rescores the top ``rerank_depth`` hits of every query that did not fail; its
    time is the trace's ``rerank``.
    """
    out: dict[str, SearchResult] = {}
    for i, (q, shards, r) in enumerate(zip(queries, shard_lists, retrieved, strict=True)):
        missing = set(r.missing_shards)
        answered = [s for s in shards if s not in missing]
        trace = SearchTrace(
            query_id=q.query_id, route=route_name, shards=list(shards),
            docs_scored=int(shard_sizes[answered].sum()) if answered and r.error is None else 0,
            timings_ms={"route": route_ms, **r.timings_ms}, missing_shards=sorted(missing),
            extra={**(trace_extra or {}), **r.extra},
        )
        if router_scores is not None:
            trace.extra["router_scores"] = selected_scores(router_scores[i], shards)
        if explain:
            trace.extra["shard_scores"] = (None if router_scores is None
                                           else [float(x) for x in np.asarray(router_scores[i], dtype=np.float64)])
        hits = r.hits
        if r.error is not None:
            trace.extra["error"] = dict(r.error)
            hits = []
        elif reranker is not None:
            if text_of is None:
                raise ValueError("a reranker needs text_of, the document text of a doc id")
            t = time.perf_counter()
            hits = rerank_head(reranker, q.text, hits, rerank_depth, text_of)
            trace.timings_ms["rerank"] = (time.perf_counter() - t) * 1000.0
        out[q.query_id] = SearchResult(hits[:k], trace)
    return out
