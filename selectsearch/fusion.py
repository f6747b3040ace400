"""Fusing ranked lists: reciprocal rank fusion and a normalised convex combination.

Hybrid retrieval (``--retriever hybrid``) fuses the BM25 and the dense ranking of the searched
shards, each cut at :attr:`FusionConfig.depth` candidates:

- **RRF** (Cormack et al. 2009): ``score(d) = sum_r 1 / (k + rank_r(d))`` with 1-based ranks
  and ``k = 60``; a document absent from a list adds nothing for it.
- **Convex combination** (``convex``): each list's scores are normalised per query, then
  ``score(d) = alpha * dense(d) + (1 - alpha) * bm25(d)`` — ``alpha`` is the weight of the
  *dense* list. Normalisation ``minmax`` maps a list's scores to ``[0, 1]`` (a list whose
  scores are all equal maps to 1); ``zscore`` subtracts the list's mean and divides by its
  standard deviation (1 when it is 0). A document absent from a list gets that list's lowest
  normalised value (0 for min-max, the list's minimum z-score): it was scored no better than
  the last candidate.

Ties are broken as everywhere else (:mod:`selectsearch.ranking`: doc id ascending).

Example:
    >>> fuse([[("a", 3.0), ("b", 1.0)], [("b", 0.9), ("c", 0.5)]], FusionConfig("rrf"))[0]
    ('b', 0.03252247488101534)
    >>> cfg = FusionConfig("convex", alpha=0.5)
    >>> [d for d, _ in fuse([[("a", 3.0), ("b", 1.0)], [("b", 0.9), ("c", 0.5)]], cfg)]
    ['a', 'b', 'c']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from selectsearch.errors import SelectSearchError
from selectsearch.ranking import sort_scored

__all__ = ["FUSION_METHODS", "NORMALISATIONS", "FusionConfig", "fuse", "normalise", "rrf"]

FUSION_METHODS = ("rrf", "convex")
NORMALISATIONS = ("minmax", "zscore")

#: a ranked list: ``(doc_id, score)`` best first
Ranking = Sequence[tuple[str, float]]


@dataclass(frozen=True)
class FusionConfig:
    """How hybrid retrieval fuses its lists (recorded in every hybrid trace).

    Args:
        method: ``rrf`` or ``convex``.
        rrf_k: RRF's rank constant.
        alpha: weight of the dense list in ``convex`` (BM25 gets ``1 - alpha``).
        norm: ``minmax`` or ``zscore`` normalisation for ``convex``.
        depth: candidates taken from each list (at least the ``k`` asked for).
    """

    method: str = "rrf"
    rrf_k: float = 60.0
    alpha: float = 0.5
    norm: str = "minmax"
    depth: int = 1000

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise SelectSearchError(f"unknown fusion {self.method!r}; choose {' or '.join(FUSION_METHODS)}")
        if self.norm not in NORMALISATIONS:
            raise SelectSearchError(f"unknown normalisation {self.norm!r}; choose {' or '.join(NORMALISATIONS)}")
        if not 0.0 <= self.alpha <= 1.0:
            raise SelectSearchError(f"--alpha must be in [0, 1] (weight of the dense list), got {self.alpha}")
        if self.rrf_k < 0:
            raise SelectSearchError(f"--rrf-k must be >= 0, got {self.rrf_k}")
        if self.depth < 1:
            raise SelectSearchError(f"--fusion-depth must be >= 1, got {self.depth}")

    def describe(self) -> dict[str, Any]:
        """The parameters that matter for ``method`` (what traces record)."""
        if self.method == "rrf":
            return {"method": "rrf", "rrf_k": self.rrf_k, "depth": self.depth}
        return {"method": "convex", "alpha": self.alpha, "norm": self.norm, "depth": self.depth}

    def to_json(self) -> dict[str, Any]:
        """All fields."""
        return asdict(self)


def _ordered(scores: dict[str, float]) -> list[tuple[str, float]]:
    return sort_scored(scores.items())


def rrf(rankings: Sequence[Ranking], k: float = 60.0) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of ``rankings`` (each best first); ties as :mod:`selectsearch.ranking`."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, (doc_id, _) in enumerate(ranking, 1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return _ordered(scores)


def normalise(scores: Sequence[float], norm: str) -> list[float]:
    """``minmax`` to ``[0, 1]`` (constant lists map to 1) or ``zscore`` (std 0 counts as 1)."""
    if not scores:
        return []
    if norm == "minmax":
        lo, hi = min(scores), max(scores)
        if hi <= lo:
            return [1.0] * len(scores)
        return [(s - lo) / (hi - lo) for s in scores]
    if norm == "zscore":
        mean = sum(scores) / len(scores)
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores)) or 1.0
        return [(s - mean) / std for s in scores]
    raise SelectSearchError(f"unknown normalisation {norm!r}; choose {' or '.join(NORMALISATIONS)}")


def convex(rankings: Sequence[Ranking], weights: Sequence[float], norm: str = "minmax") -> list[tuple[str, float]]:
    """Weighted sum of per-list normalised scores; a missing document gets the list's minimum."""
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    normed = []
    for ranking in rankings:
        values = normalise([float(s) for _, s in ranking], norm)
        normed.append(({d: v for (d, _), v in zip(ranking, values, strict=True)}, min(values, default=0.0)))
    docs = {d for ranking in rankings for d, _ in ranking}
    scores = {d: sum(w * table.get(d, floor) for w, (table, floor) in zip(weights, normed, strict=True))
              for d in docs}
    return _ordered(scores)


def fuse(rankings: Sequence[Ranking], config: FusionConfig) -> list[tuple[str, float]]:
    """Fuse ``[bm25, dense]`` rankings as ``config`` says (``alpha`` weighs the second list)."""
    rankings = [list(r)[: config.depth] for r in rankings]
    if config.method == "rrf":
        return rrf(rankings, config.rrf_k)
    if len(rankings) != 2:
        raise ValueError("convex fusion takes exactly two rankings: [bm25, dense]")
    return convex(rankings, [1.0 - config.alpha, config.alpha], config.norm)
