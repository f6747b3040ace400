"""The query pipeline's stages: route -> search the selected shards -> merge -> (rerank).

- :mod:`selectsearch.pipeline.stages` — the protocols (:class:`ShardSearcher`,
  :class:`Reranker`, :class:`QueryAnnotator`), a query's :class:`Retrieved` hits, and
  :func:`assemble`, the one step that turns them into results (traces, reranking, cut to k);
- :mod:`selectsearch.pipeline.shards` — the in-process shard searchers (``bm25``, ``dense``,
  ``hybrid``) over an index's shared :class:`Engines`, found by name in :data:`RETRIEVERS`
  (``--retriever``; add yours with :func:`register_retriever`).

:class:`selectsearch.search.SelectiveSearcher` composes them with a router; the serving
coordinator composes the same stages over shard groups on Ray (:mod:`selectsearch.serve.remote`).
Nothing heavy is imported here: engines open on first use.
"""

from __future__ import annotations

from selectsearch.pipeline.shards import RETRIEVERS, register_retriever
from selectsearch.pipeline.stages import (
    QueryAnnotator,
    Reranker,
    Retrieved,
    ShardSearcher,
    assemble,
    rerank_head,
)

__all__ = ["RETRIEVERS", "QueryAnnotator", "Reranker", "Retrieved", "ShardSearcher", "assemble", "register_retriever",
           "rerank_head"]
