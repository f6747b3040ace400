"""Per-query fusion weights: lean on term statistics when the logs do not know the query.

A fused router (``hybrid@m``) with one weight vector must compromise. On queries that resemble
the logs, the learned routers (``knn``, MICO's head) are the best evidence; on new kinds of
queries they fall far below CORI (issue 19: 41-44% of exhaustive nDCG@10 against CORI's 84%),
while CORI and Taily, which read only the index's term statistics, do not care where a query
comes from. ``tune-route`` already fits two weight vectors on two validation splits of the logs:
one on a *random* split (familiar queries: each has near paraphrases among the training logs)
and one on a *topic-held-out* split (unfamiliar queries: whole topics are missing from the
logs). The gate mixes the two per query::

    g(q) = sigmoid((f(q) - centre) / width)
    w(q) = g(q) * w_familiar + (1 - g(q)) * w_unfamiliar

where ``f(q)`` is the query's *familiarity*: the mean cosine similarity of its embedding to its
5 nearest logged queries (:func:`selectsearch.route.knn.familiarity`, computed by the ``knn``
router as a by-product of its scores, so the gate costs nothing extra).

Why this evidence and this model. Of the reliability signals one could use (neighbour
similarity, entropy of the learned distribution, agreement between routers, CORI's score
margins), neighbour similarity is the one that measures the cause of the failure: a learned
router generalises through query similarity, so it fails exactly where no logged query is
similar. Entropy and agreement measure the router's confidence, which a confidently wrong router
does not lower. The gate has two parameters, fitted by grid search for the largest coverage AUC
on the two validation splits stacked (familiar and unfamiliar queries together, each scored with
the knowledge base of its own split), so a few hundred held-out queries fit it stably; the two
weight vectors themselves are the splits' own fits. Among the candidates are the two constant
gates (always familiar, always unfamiliar): if gating does not help on the stacked validation, the
fit says so and the router uses one weight vector.

Stored by ``tune-route`` in ``INDEX/routing.json`` under ``"gating"``; ``hybrid@m`` applies it when
the stored fusion is used and its ``knn`` router is among the fused ones (option
``hybrid.gating=off`` turns it off). The weights used for each query are in its trace
(``trace.extra["route"]["weights"]``).

Example:
    >>> gate = Gating(routers=["cori", "knn"], familiar=[0.4, 0.6], unfamiliar=[1.0, 0.0],
    ...               centre=0.6, width=0.05)
    >>> gate.weights(np.array([0.9, 0.6, 0.3])).round(2).tolist()
    [[0.4, 0.6], [0.7, 0.3], [1.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np

from selectsearch.errors import RouteSpecError

__all__ = ["FEATURE", "Gating", "fit_gating", "gate_candidates", "weighted_sum"]

#: the familiarity feature the gate reads (the only one so far; stored for the future)
FEATURE = "knn_familiarity"
#: gate widths tried, as fractions of the familiarity's spread (standard deviation) on the stacked
#: validation queries: from nearly a step to a gentle slope
WIDTH_FRACTIONS = (0.05, 0.15, 0.3, 0.6)
#: centres tried: these quantiles of the familiarity on the stacked validation queries
CENTRE_QUANTILES = tuple(np.round(np.linspace(0.05, 0.95, 19), 2).tolist())
#: a huge width (in familiarity units) makes the constant gates: ``g`` = 1 or 0 everywhere
_CONSTANT = 1e9


@dataclass(frozen=True)
class Gating:
    """Mix two weight vectors per query by familiarity (module docs).

    Attributes:
        routers: the fused routers, in the order of the weights.
        familiar: weights for familiar queries (chosen on the random validation split).
        unfamiliar: weights for unfamiliar queries (chosen on the topic-held-out split).
        centre: familiarity at which the two mix equally.
        width: slope of the gate in familiarity units (> 0).
        feature: the familiarity feature (:data:`FEATURE`).
    """

    routers: list[str]
    familiar: list[float]
    unfamiliar: list[float]
    centre: float
    width: float
    feature: str = FEATURE

    def __post_init__(self) -> None:
        n = len(self.routers)
        if len(self.familiar) != n or len(self.unfamiliar) != n:
            raise RouteSpecError(f"gating needs one familiar and one unfamiliar weight per router ({n})")
        if not self.width > 0:
            raise RouteSpecError(f"gating width must be > 0, got {self.width}")
        if self.feature != FEATURE:
            raise RouteSpecError(f"unknown gating feature {self.feature!r} (this version knows {FEATURE!r})")

    def gate(self, familiarity: np.ndarray) -> np.ndarray:
        """``(n,)`` share of the familiar weights per query, in [0, 1]."""
        z = (np.asarray(familiarity, dtype=np.float64) - self.centre) / self.width
        out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow
        return out

    @cached_property
    def constant(self) -> float | None:
        """The gate's value when it is the same for every possible query (1.0: always the
        familiar weights, 0.0: always the unfamiliar ones), else ``None``.

        Familiarity is a mean cosine similarity, in [-1, 1]; the gate is monotone in it, so it is
        constant when it takes one value at both ends (with a margin for rounding). The fitted
        constant gates (:func:`gate_candidates`' first two) are: then the other weight vector
        multiplies every score by exactly 0, and its routers need not run (:meth:`HybridRouter.needed`).
        """
        low, high = self.gate(np.array([-2.0, 2.0])).tolist()
        return low if low == high and low in (0.0, 1.0) else None

    def weights(self, familiarity: np.ndarray) -> np.ndarray:
        """``(n, len(routers))`` fusion weights per query."""
        g = self.gate(familiarity)[:, None]
        return np.asarray(g * np.asarray(self.familiar) + (1.0 - g) * np.asarray(self.unfamiliar))

    def fuse(self, parts: Sequence[np.ndarray], familiarity: np.ndarray) -> np.ndarray:
        """``(n, K)`` fused scores of standardised per-router scores ``parts`` (router order)."""
        return weighted_sum(parts, self.weights(familiarity))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters (what ``routing.json`` stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Gating:
        """The gate stored by :meth:`to_dict` (extra keys such as fit reports are ignored).

        Raises:
            RouteSpecError: missing or malformed parameters.
        """
        try:
            return cls(routers=[str(r) for r in data["routers"]], familiar=[float(w) for w in data["familiar"]],
                       unfamiliar=[float(w) for w in data["unfamiliar"]], centre=float(data["centre"]),
                       width=float(data["width"]), feature=str(data.get("feature", FEATURE)))
        except (KeyError, TypeError, ValueError) as exc:
            raise RouteSpecError(f"malformed gating in routing.json: {exc!r}") from exc


def weighted_sum(parts: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """``(n, K)``: the sum of ``parts`` (each ``(n, K)``) weighted per query by ``weights`` (``(n, len(parts))``)."""
    return np.asarray(sum(weights[:, r : r + 1] * p for r, p in enumerate(parts)))


def gate_candidates(familiarity: np.ndarray) -> list[tuple[float, float]]:
    """``(centre, width)`` pairs tried by :func:`fit_gating`: the two constant gates first
    (always familiar, always unfamiliar), then a grid over quantiles and spreads of ``familiarity``."""
    f = np.asarray(familiarity, dtype=np.float64)
    spread = float(f.std()) or 1.0
    out = [(-_CONSTANT, 1.0), (_CONSTANT, 1.0)]
    for q in CENTRE_QUANTILES:
        centre = float(np.quantile(f, q))
        out += [(centre, frac * spread) for frac in WIDTH_FRACTIONS]
    return out


def fit_gating(routers: Sequence[str], familiar: Sequence[float], unfamiliar: Sequence[float],
               parts: Sequence[np.ndarray], familiarity: np.ndarray, pair_query: np.ndarray,
               pair_shard: np.ndarray, shard_sizes: np.ndarray) -> tuple[Gating, dict[str, Any]]:
    """The gate with the largest coverage AUC on stacked validation queries.

    Args:
        routers, familiar, unfamiliar: as in :class:`Gating`.
        parts: standardised ``(n, K)`` scores of each router on the stacked validation queries.
        familiarity: ``(n,)`` their familiarity (each against its own split's knowledge base).
        pair_query, pair_shard, shard_sizes: held-out (query row, shard) pairs, as in
            :func:`selectsearch.selective_metrics.coverage_curve`.

    Returns:
        ``(gate, report)``; the report has the AUC of the chosen gate and of the two constant gates
        (``auc``, ``auc_familiar``, ``auc_unfamiliar``). Ties keep the earlier candidate, so a gate
        is chosen over a constant only when it covers more.
    """
    from selectsearch.ranking import rank_by_scores
    from selectsearch.selective_metrics import coverage_curve

    best: tuple[float, Gating] | None = None
    aucs: list[float] = []
    for centre, width in gate_candidates(familiarity):
        gate = Gating(list(routers), [float(w) for w in familiar], [float(w) for w in unfamiliar], centre, width)
        auc = coverage_curve(rank_by_scores(gate.fuse(parts, familiarity)), pair_query, pair_shard, shard_sizes).auc
        aucs.append(float(auc))
        if best is None or auc > best[0] + 1e-12:
            best = (float(auc), gate)
    assert best is not None
    gate = best[1]
    share = float(gate.gate(familiarity).mean())
    return gate, {"auc": best[0], "auc_familiar": aucs[0], "auc_unfamiliar": aucs[1],
                  "mean_familiar_share": share, "n_queries": len(familiarity), "n_pairs": len(pair_query)}
