"""The one order of hits, and scores that make every evaluator see exactly that order.

**Order.** Best score first; tied scores by ascending doc id (pyserini's and Anserini's
convention). Every part that ranks documents (Lucene merge, FAISS merge, fusion, rerankers, run
files) sorts through this module.

**Why evaluation needs more than the order.** Evaluators ignore the rank column and re-sort each
query by score, and they break ties differently: ir-measures' pytrec_eval provider (nDCG, AP,
P, R) puts tied documents in *descending* doc-id order (trec_eval's ``comp_sim_docno``), while
its ``msmarco`` (RR@k) and ``judged`` providers put them in ascending order. On a collection with
duplicate documents that silently scores a different ranking from the one returned (nDCG@10
0.2572 for 0.2536). So the scores handed to ir-measures and written to TREC run files are made
strictly decreasing down the ranking (:func:`strict_scores`): a tied score is lowered by one
float32 unit in the last place per position — float32 because trec_eval keeps scores in single
precision, so a smaller step would be lost (measured: a difference of 1e-9 at score 1.0 is a tie
to it, 1e-7 is not). The change is about 6e-8 of the score per tied position, far below what
separates BM25 scores that are not tied, while every evaluator, whatever its tie-break, now
scores exactly the ranking we return. Anserini's ``ScoreTiesAdjusterReranker``
does the same with a coarser step. :class:`~selectsearch.types.Hit` objects keep exact scores.

Example:
    >>> order_by_score([1.0, 2.0, 1.0], ["b", "c", "a"])
    [1, 2, 0]
    >>> s = strict_scores([2.0, 1.0, 1.0])
    >>> s[0] == 2.0 and s[1] == 1.0 and s[2] < 1.0
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["order_by_score", "rank_by_scores", "scores_below", "sort_scored", "strict_scores"]

T = TypeVar("T")


def order_by_score(scores: Sequence[float], doc_ids: Sequence[str]) -> list[int]:
    """Positions of ``scores``/``doc_ids`` in rank order (score descending, then doc id ascending).

    Input already sorted by score with no tie (the common case for a Lucene top-k) is
    recognised in one pass and returned as is.
    """
    n = len(scores)
    if len(doc_ids) != n:
        raise ValueError(f"{n} scores but {len(doc_ids)} doc ids")
    if all(scores[j] > scores[j + 1] for j in range(n - 1)):
        return list(range(n))
    return sorted(range(n), key=lambda j: (-scores[j], doc_ids[j]))


def sort_scored(items: Iterable[T], *, score_of: int = 1, doc_of: int = 0) -> list[T]:
    """Tuples (or NamedTuples such as :class:`~selectsearch.types.Hit`) in rank order.

    ``doc_of``/``score_of`` give the positions of the doc id and the score in each item
    (``Hit`` and ``(doc_id, score)`` pairs: the defaults).
    """
    return sorted(items, key=lambda it: (-it[score_of], it[doc_of]))  # type: ignore[index]


def strict_scores(scores: Sequence[float]) -> list[float]:
    """Scores of a ranking (best first) made strictly decreasing in float32, for evaluators and run files.

    Each score becomes ``min(score, previous - 1 float32 ulp)``: unchanged where the ranking
    has no tie (and distinct in float32), lowered by a few units in the last place where it has.
    The ranking must already be in rank order (scores non-increasing); anything else is a bug
    upstream.

    Raises:
        ValueError: a score is higher than the one ranked before it, or NaN; tied scores at the
            lowest finite double (no lower finite value to move to).
    """
    import numpy as np  # lazy: ``import selectsearch.data`` (run files) stays free of numpy
    values = np.asarray(scores, dtype=np.float64)
    if len(values) < 2:
        return values.tolist()
    if np.isnan(values).any() or np.any(np.diff(values) > 0):
        raise ValueError("scores are not in rank order (best first); sort with selectsearch.ranking first")
    # beyond float32's range no evaluator keeps scores in single precision: step in double there
    fits = bool(np.all(np.abs(values) <= np.finfo(np.float32).max))
    single: np.ndarray = values.astype(np.float32) if fits else values.copy()
    if np.all(np.diff(single) < 0):
        return values.tolist()
    out = single.copy()
    for i in range(1, len(out)):
        if out[i] >= out[i - 1]:
            out[i] = np.nextafter(out[i - 1], out.dtype.type(-np.inf))
            if np.isinf(out[i]):  # a tie at the lowest finite value cannot be separated: refuse, never write -inf
                raise ValueError(f"tied scores at the lowest finite value ({values[i]!r}) cannot be made strictly "
                                 "decreasing; rescale the scores")
    changed = out != single
    return np.where(changed, out.astype(np.float64), values).tolist()


def scores_below(floor: float, scores: Sequence[float]) -> list[float]:
    """Scores of a ranking's tail moved, order and gaps kept, to lie strictly below ``floor``.

    A reranker rescores only the head of a ranking, on its own scale; the tail it did not see
    keeps its rank. Left with first-stage scores the tail could outscore the head, and every
    evaluator (which re-sorts by score) would score a different ranking from the one returned.

    Example:
        >>> scores_below(-2.0, [12.0, 11.5])
        [-3.0, -3.5]
    """
    if not scores:
        return []
    shift = float(scores[0]) - float(floor) + 1.0
    return [float(s) - shift for s in scores]


def rank_by_scores(scores: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Shard ids sorted by descending score, ties by ascending shard id. Shape ``(n, K)``.

    The order of shards, as :func:`order_by_score` is the order of documents (used by every
    router and by the coverage curves of routing validation).

    Example:
        >>> rank_by_scores([[0.5, 2.0, 0.5]]).tolist()
        [[1, 0, 2]]
    """
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    # a stable sort keeps tied shards in id order (lexsort with the ids as a second key gives the
    # same order at twice the cost; this runs for every routed query)
    return np.argsort(-scores, axis=1, kind="stable").astype(np.int32)
