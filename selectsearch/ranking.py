"""The one order of hits: score descending, ties by doc id descending — trec_eval's order.

Why descending doc ids: trec_eval (and so ir-measures, whose default provider is pytrec_eval)
ignores the rank column of a run and re-sorts each query's documents by score, breaking ties by
doc id in *descending* string order (``comp_sim_docno`` in trec_eval's ``form_res_rels.c``).
Returning hits in exactly that order is what makes three things the same number: the metrics we
compute in-process, the metrics ir-measures or trec_eval compute from the TREC run we write, and
the metrics of the ranking a user actually receives. Any other tie-break (ascending ids, Lucene
docid order) lets an evaluator silently score a different ranking from the one returned, which on
collections with duplicate documents moves nDCG@10 by several thousandths.

Scores are never altered to force an order (Anserini's score-ties adjuster does that); the
run file holds the exact scores.

Example:
    >>> order_by_score([1.0, 2.0, 1.0], ["a", "b", "c"])
    [1, 2, 0]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

__all__ = ["order_by_score", "sort_scored"]

T = TypeVar("T")


def order_by_score(scores: Sequence[float], doc_ids: Sequence[str]) -> list[int]:
    """Positions of ``scores``/``doc_ids`` in rank order (score desc, then doc id desc).

    Input already sorted by score with no tie (the common case for a Lucene top-k) is
    recognised in one pass and returned as is.
    """
    n = len(scores)
    if len(doc_ids) != n:
        raise ValueError(f"{n} scores but {len(doc_ids)} doc ids")
    if all(scores[j] > scores[j + 1] for j in range(n - 1)):
        return list(range(n))
    return sorted(range(n), key=lambda j: (scores[j], doc_ids[j]), reverse=True)


def sort_scored(items: Iterable[T], *, score_of: int = 1, doc_of: int = 0) -> list[T]:
    """Tuples (or NamedTuples such as :class:`~selectsearch.types.Hit`) in rank order.

    ``doc_of``/``score_of`` give the positions of the doc id and the score in each item
    (``Hit`` and ``(doc_id, score)`` pairs: the defaults).
    """
    return sorted(items, key=lambda it: (it[score_of], it[doc_of]), reverse=True)  # type: ignore[index]
