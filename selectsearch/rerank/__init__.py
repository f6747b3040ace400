"""Rerankers: a cross-encoder teacher trained on qrels with BM25 negatives, and its ReAugKD student.

- :mod:`selectsearch.rerank.candidates`: BM25 top-k candidates from our own index, training pairs.
- :mod:`selectsearch.rerank.teacher`: the cross-encoder (all-MiniLM-L6-v2 + relevance head).
- :mod:`selectsearch.rerank.student`: ReAugKD distillation of the teacher (KB = training pairs).
- :mod:`selectsearch.rerank.rerankers`: :func:`load_reranker` for either folder, as a
  :class:`selectsearch.search.Reranker`.
- :mod:`selectsearch.rerank.formats`: the registry of reranker folder formats (add one with
  :func:`~selectsearch.rerank.formats.register_reranker`).

Heavy libraries (torch, transformers, faiss) are imported only when a model is trained or loaded.

Example:
    >>> from selectsearch.rerank import load_reranker
    >>> reranker = load_reranker("/work/models/hd-rerank-teacher")  # doctest: +SKIP
"""

from __future__ import annotations

from selectsearch.rerank.candidates import PairConfig, TrainingPair, bm25_candidates, training_pairs
from selectsearch.rerank.rerankers import (
    CrossEncoderReranker,
    DistilledReranker,
    RerankStats,
    expected_grade,
    interpolate,
    load_reranker,
    reranker_kind,
)

__all__ = [
    "CrossEncoderReranker",
    "DistilledReranker",
    "PairConfig",
    "RerankStats",
    "TrainingPair",
    "bm25_candidates",
    "expected_grade",
    "interpolate",
    "load_reranker",
    "reranker_kind",
    "training_pairs",
]
