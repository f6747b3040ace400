"""Per-query budgets: search the fewest shards whose calibrated coverage reaches a target.

``NAME@auto:T`` (``hybrid@auto:0.9``, ``cori@auto``, ``knn@auto:0.95/8``) turns any router that
scores shards into one that chooses how many shards each query searches. The router's scores of
a query are mapped to probabilities ``p(q, i)`` that a relevant document of ``q`` lies in shard
``i`` (a *calibration*, fitted on held-out logged queries), and the query searches the shortest
prefix of the router's own ranking whose probabilities add up to at least ``T``, clamped to
``[1, M]`` shards. A query whose scores single out one shard stops there; one whose scores are
flat (the router does not recognise it) needs many shards to gather ``T`` and gets them, up to
``M``. The shards searched are always a prefix of the router's ranking, and a higher ``T`` never
searches fewer shards (cumulative sums only grow).

The calibration model (two parameters, fitted by maximum likelihood)::

    z(q, i) = (s(q, i) - mean_i s(q, .)) / sigma
    p(q, i) = (1 - eps) * softmax_i(a * z(q, .)) + eps * size_i / sum(size)

``a`` is an inverse temperature, and ``eps`` mixes in a prior proportional to shard size: the
share of relevant documents that sit in shards the router ranks low for reasons its scores do
not show (with ``eps = 0`` this is plain temperature scaling). ``sigma`` sets the unit of the
scores; two units are tried and the one with the higher held-out likelihood kept:

* ``"global"``: one ``sigma`` for all queries (the median over the calibration queries of the
  per-query standard deviation of the scores). A query whose raw scores are flatter than usual
  then gets a flatter distribution, and more shards: the router's own uncertainty is kept.
* ``"query"``: each query's own standard deviation, so that only the *shape* of its scores
  matters (the right unit when a router's raw score scale varies from query to query, e.g.
  CORI beliefs with query length).

Why this model: it has two parameters, so about a hundred held-out queries (a few hundred
(query, document) pairs) fit it stably, where isotonic regression or per-shard parameters would
need far more; it keeps the router's ranking (the cut-off never reorders shards); and its
likelihood is exactly the quantity the cut-off needs, the probability mass of each shard. The
fit is a deterministic grid search refined around the optimum (no optimiser tolerances).

Where calibrations live: ``INDEX/routing.json`` under ``"calibration": {router name: params}``
(:func:`calibrate_routers` builds it from held-out scores;
:func:`selectsearch.route.calibrate.calibrate_index` recomputes it for an index already tuned,
:func:`store_calibration` writes it). Without a stored calibration
the router falls back to :data:`FALLBACK` (per-query units, inverse temperature 1, no prior
mix), with a warning once per index and router: see its docstring.

Example:
    >>> scores = np.array([[4.0, 0.0, 0.0, 0.0], [1.0, 0.9, 0.8, 0.7]])
    >>> cal = Calibration(inv_temperature=2.0, scale="global", sigma=1.0)
    >>> budget_cutoffs(cal.probabilities(scores), rank_by_scores(scores), 0.9, 4).tolist()
    [1, 4]
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import RouteSpecError, SelectSearchError
from selectsearch.ranking import rank_by_scores
from selectsearch.route.base import AutoBudget, Router, ScoringRouter
from selectsearch.types import EncodedQueries, Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["DEFAULT_TARGET", "FALLBACK", "MAX_SHARDS_FRACTION", "AutoBudgetRouter", "Calibration", "budget_cutoffs",
           "calibrate_routers", "coverage_at_targets", "default_max_shards", "fit_calibration",
           "make_auto_router", "read_calibration", "reliability", "store_calibration"]

log = logging.getLogger(__name__)

#: coverage target of ``NAME@auto`` without ``:T``. Reaching the last few percent of a query's
#: relevant documents means searching the thin tail of its shard distribution, where each extra
#: shard costs a full shard's documents for little expected coverage; 90% stops before that tail.
#: A ranking metric such as nDCG@10 needs the top relevant documents, which sit in the
#: high-probability shards, so it keeps most of its value at 90% coverage; recall-oriented uses
#: should ask for more (``@auto:0.95``).
DEFAULT_TARGET = 0.9

#: ``NAME@auto`` without ``/M`` searches at most this fraction of the shards (rounded up): an
#: unfamiliar query may spend several times the average budget, but selective search that reads
#: more than half the collection for one query has lost its point, and a user who needs that can
#: raise it (``/M``) or search everything.
MAX_SHARDS_FRACTION = 0.5

#: the calibration model's version (stored with its parameters)
VERSION = 1

#: scale units tried by :func:`fit_calibration`
SCALES = ("global", "query")


def default_max_shards(n_shards: int) -> int:
    """The most shards ``NAME@auto`` searches per query on an index of ``n_shards`` (see
    :data:`MAX_SHARDS_FRACTION`).

    Example:
        >>> default_max_shards(16), default_max_shards(1)
        (8, 1)
    """
    return max(1, math.ceil(MAX_SHARDS_FRACTION * n_shards))


@dataclass(frozen=True)
class Calibration:
    """Maps ``(n, K)`` router scores to shard probabilities (see the module docs for the model).

    Attributes:
        inv_temperature: ``a``, the inverse temperature (0: every shard alike).
        uniform: ``eps``, the weight of the size prior mixed in, in ``[0, 1)``.
        scale: ``"global"`` (scores divided by ``sigma``) or ``"query"`` (by each query's own
            standard deviation over the shards).
        sigma: the global unit of the scores (unused with ``"query"``).
        fitted: false for :data:`FALLBACK`.
        info: what the fit saw and achieved (queries, pairs, log-likelihood, ECE); stored, not used.
    """

    inv_temperature: float = 1.0
    uniform: float = 0.0
    scale: str = "query"
    sigma: float = 1.0
    fitted: bool = False
    info: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise RouteSpecError(f"calibration scale must be one of {', '.join(SCALES)}, got {self.scale!r}")
        if not (self.inv_temperature >= 0 and math.isfinite(self.inv_temperature)):
            raise RouteSpecError(f"calibration inverse temperature must be finite and >= 0, got {self.inv_temperature}")
        if not 0.0 <= self.uniform < 1.0:
            raise RouteSpecError(f"calibration prior weight must be in [0, 1), got {self.uniform}")
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise RouteSpecError(f"calibration sigma must be finite and > 0, got {self.sigma}")

    @property
    def temperature(self) -> float:
        """The softmax temperature in the router's own score units (``"global"``) or in per-query
        standard deviations (``"query"``); ``inf`` when ``inv_temperature`` is 0."""
        unit = self.sigma if self.scale == "global" else 1.0
        return unit / self.inv_temperature if self.inv_temperature > 0 else math.inf

    def units(self, scores: np.ndarray) -> np.ndarray:
        """Centred scores in the calibration's unit (before the inverse temperature)."""
        return _units(np.asarray(scores, dtype=np.float64), self.scale, self.sigma)

    def probabilities(self, scores: np.ndarray, shard_sizes: np.ndarray | None = None) -> np.ndarray:
        """``(n, K)`` probabilities (rows sum to 1) that a relevant document of each query is in
        each shard; ``shard_sizes`` is the prior's weight (default: every shard alike)."""
        z = self.units(scores)
        return _mix(_softmax(self.inv_temperature * z), _prior(shard_sizes, z.shape[1]), self.uniform)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (what ``routing.json`` stores)."""
        return {"model": "softmax-prior-mix", "version": VERSION, "inv_temperature": self.inv_temperature,
                "uniform": self.uniform, "scale": self.scale, "sigma": self.sigma, "fitted": self.fitted,
                **dict(self.info)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        """The calibration a :meth:`to_json` dict describes.

        Raises:
            RouteSpecError: another model or version, or bad parameters.
        """
        if data.get("model") != "softmax-prior-mix" or int(data.get("version", 0)) != VERSION:
            raise RouteSpecError(f"unknown calibration model {data.get('model')!r} version {data.get('version')!r}; "
                                 "re-run `selectsearch tune-route`")
        known = {"model", "version", "inv_temperature", "uniform", "scale", "sigma", "fitted"}
        try:
            return cls(float(data["inv_temperature"]), float(data["uniform"]), str(data["scale"]),
                       float(data["sigma"]), bool(data.get("fitted", True)),
                       {k: v for k, v in data.items() if k not in known})
        except (KeyError, TypeError, ValueError) as exc:
            raise RouteSpecError(f"bad calibration parameters {dict(data)!r} ({exc}); re-run "
                                 "`selectsearch tune-route`") from exc


#: used when no calibration is stored for a router: each query's scores in its own standard
#: deviations (the only unit that needs no data: raw score scales differ by router), inverse
#: temperature 1, no prior. With unit inverse temperature the probabilities are no sharper than
#: the z-scores themselves, so a query's top shard rarely gets more than about 3/4 of the mass
#: (z is at most sqrt(K - 1)) and T = 0.9 searches several shards even for a confident query:
#: the fallback errs towards cost, not towards missed documents. It sees only the shape of the
#: scores, not their magnitude, so it cannot tell an unfamiliar query by flat raw scores; a fitted
#: calibration (``"global"`` scale) can. Fitted calibrations on the collections measured here had
#: per-query-unit inverse temperatures of 1.0 to 1.6, i.e. sharper than this fallback.
FALLBACK = Calibration(inv_temperature=1.0, uniform=0.0, scale="query", sigma=1.0, fitted=False,
                       info={"note": "fallback: no calibration stored (run selectsearch tune-route)"})


def _units(scores: np.ndarray, scale: str, sigma: float) -> np.ndarray:
    centred = scores - scores.mean(axis=1, keepdims=True)
    if scale == "global":
        return centred / sigma
    std = scores.std(axis=1, keepdims=True)
    return np.divide(centred, std, out=np.zeros_like(centred), where=std > 1e-12)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _prior(shard_sizes: np.ndarray | None, n_shards: int) -> np.ndarray:
    if shard_sizes is None:
        return np.full(n_shards, 1.0 / n_shards)
    sizes = np.asarray(shard_sizes, dtype=np.float64)
    if sizes.shape != (n_shards,) or sizes.sum() <= 0:
        raise ValueError(f"shard_sizes must hold {n_shards} sizes with a positive sum, got shape {sizes.shape}")
    return np.asarray(sizes / sizes.sum())


def _mix(softmax: np.ndarray, prior: np.ndarray, eps: float) -> np.ndarray:
    return np.asarray((1.0 - eps) * softmax + eps * prior[None, :]) if eps > 0 else softmax


def _global_sigma(scores: np.ndarray) -> float:
    """The typical spread of a router's scores over the shards of one query (median over queries)."""
    std = scores.std(axis=1)
    std = std[std > 1e-12]
    return float(np.median(std)) if len(std) else 1.0


class _PairLikelihood:
    """Mean log-probability of the pairs' shards at ``(a, eps)``, remembering what it computed.

    For a fixed ``a`` the mean log-likelihood is concave in ``eps`` (a mean of logs of functions
    affine in ``eps``), so along an ``eps`` grid it rises to its maximum and then falls:
    :meth:`row_argmax` finds a row's maximum by bisection on that slope with about 2 log2(n)
    evaluations instead of n. Each value is computed as the whole row would be (the same
    arithmetic, one point at a time), so the maximum is the full grid's up to rounding: where a
    row is flat to rounding (``a = 0`` with a uniform prior), rounding alone orders its points
    and either finds one of them (``tests/core/test_budget.py`` compares the two). The fit on
    Home Depot's stacked validation folds spent 109 of tune-route's 142 s evaluating every grid
    point.
    """

    def __init__(self, z: np.ndarray, pq: np.ndarray, ps: np.ndarray, prior_of_pair: np.ndarray) -> None:
        rows = np.unique(pq)
        self._z, self._zr, self._where = z, z[rows], np.searchsorted(rows, pq)
        self._pq, self._ps, self._prior_of_pair = pq, ps, prior_of_pair

    def softmax_of_pairs(self, a: float) -> np.ndarray:
        """``(n_pairs,)`` each pair's shard probability under ``softmax(a * z)`` of its query."""
        logits = a * self._zr
        top = logits.max(axis=1)
        lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
        return np.asarray(np.exp(a * self._z[self._pq, self._ps] - lse[self._where]))

    def value(self, sm: np.ndarray, eps: float) -> float:
        """The mean log-likelihood at ``eps`` given :meth:`softmax_of_pairs`' ``sm``."""
        probs = (1.0 - eps) * sm + eps * self._prior_of_pair
        return float(np.log(np.maximum(probs, 1e-300)).mean())

    def row_argmax(self, a: float, eps_grid: np.ndarray) -> tuple[int, float]:
        """The first index of the maximum over ``eps_grid`` (increasing) at this ``a``, and the maximum."""
        sm = self.softmax_of_pairs(a)
        seen: dict[int, float] = {}

        def f(j: int) -> float:
            if j not in seen:
                seen[j] = self.value(sm, float(eps_grid[j]))
            return seen[j]

        lo, hi = 0, len(eps_grid) - 1
        while lo < hi:  # the first j whose right neighbour is no higher: the top of a concave row
            mid = (lo + hi) // 2
            if f(mid) >= f(mid + 1):
                hi = mid
            else:
                lo = mid + 1
        return lo, f(lo)

    def argmax(self, a_grid: np.ndarray, eps_grid: np.ndarray) -> tuple[int, int, float]:
        """``(i, j, value)`` of the grid's maximum, the first in row-major order as ``np.argmax``."""
        best = (0, 0, -math.inf)
        for i, a in enumerate(a_grid):
            j, value = self.row_argmax(float(a), eps_grid)
            if value > best[2]:
                best = (i, j, value)
        return best


def _fit_one(z: np.ndarray, pq: np.ndarray, ps: np.ndarray, prior: np.ndarray) -> tuple[float, float, float]:
    """``(a, eps, mean log-likelihood)`` by a coarse grid, then a finer grid around its best point."""
    likelihood = _PairLikelihood(z, pq, ps, prior[ps])
    a_grid = np.concatenate([[0.0], np.geomspace(1e-2, 1e2, 121)])
    eps_grid = np.concatenate([[0.0], np.geomspace(1e-4, 0.9, 100)])
    i, j, _ = likelihood.argmax(a_grid, eps_grid)
    a_lo, a_hi = a_grid[max(i - 1, 0)], a_grid[min(i + 1, len(a_grid) - 1)]
    e_lo, e_hi = eps_grid[max(j - 1, 0)], eps_grid[min(j + 1, len(eps_grid) - 1)]
    fine_a = np.unique(np.concatenate([np.linspace(a_lo, a_hi, 81), [a_grid[i]]]))
    fine_e = np.unique(np.concatenate([np.linspace(e_lo, e_hi, 81), [eps_grid[j]]]))
    fi, fj, ll = likelihood.argmax(fine_a, fine_e)
    return float(fine_a[fi]), float(fine_e[fj]), ll


def fit_calibration(scores: np.ndarray, pair_query: np.ndarray, pair_shard: np.ndarray,
                    shard_sizes: np.ndarray | None = None, *, scale: str | None = None) -> Calibration:
    """Fit a router's calibration on held-out logged queries by maximum likelihood.

    Args:
        scores: ``(n_queries, K)`` raw shard scores of the router (what its ``scores`` returns;
            for ``hybrid``, the fused score).
        pair_query, pair_shard: one entry per held-out (query, relevant document) pair: the
            query's row in ``scores`` and the document's shard (as
            :func:`selectsearch.route.tuning.held_out_logs` gives them).
        shard_sizes: documents per shard, the prior's weights (default: every shard alike).
        scale: ``"global"`` or ``"query"`` (see the module docs); ``None`` fits both and keeps
            the one with the higher likelihood.

    Returns:
        the fitted :class:`Calibration`; its ``info`` holds ``n_queries``, ``n_pairs``, the mean
        log-likelihood per pair (``log_likelihood``; ``log_likelihood_prior`` is the prior's
        alone, the no-information baseline), the other scale's likelihood, and the ECE of
        :func:`reliability` on these pairs (in-sample: a 2-parameter fit barely overfits).

    Raises:
        SelectSearchError: no pairs, or pairs outside ``scores``.
    """
    s = np.asarray(scores, dtype=np.float64)
    pq = np.asarray(pair_query, dtype=np.int64)
    ps = np.asarray(pair_shard, dtype=np.int64)
    if s.ndim != 2 or not len(pq) or len(pq) != len(ps):
        raise SelectSearchError(f"calibration needs (n, K) scores and equal, non-empty pair arrays; got scores "
                                f"{s.shape}, {len(pq)} queries and {len(ps)} shards of pairs")
    if pq.min() < 0 or pq.max() >= s.shape[0] or ps.min() < 0 or ps.max() >= s.shape[1]:
        raise SelectSearchError("calibration pairs point outside the score matrix")
    prior = _prior(shard_sizes, s.shape[1])
    scales = SCALES if scale is None else (scale,)
    fits: dict[str, tuple[float, float, float, float]] = {}
    for unit in scales:
        sigma = _global_sigma(s[np.unique(pq)]) if unit == "global" else 1.0
        a, eps, ll = _fit_one(_units(s, unit, sigma), pq, ps, prior)
        fits[unit] = (a, eps, ll, sigma)
    best = max(scales, key=lambda u: fits[u][2])
    a, eps, ll, sigma = fits[best]
    cal = Calibration(a, eps, best, sigma, True)
    probs = cal.probabilities(s, shard_sizes)
    rel = reliability(probs, pq, ps)
    info = {"n_queries": len(np.unique(pq)), "n_pairs": len(pq), "log_likelihood": ll,
            "log_likelihood_prior": float(np.log(prior[ps]).mean()),
            "log_likelihood_by_scale": {u: fits[u][2] for u in scales},
            "ece": rel["ece"], "classwise_ece": rel["classwise_ece"]}
    return Calibration(a, eps, best, sigma, True, info)


# ---------------------------------------------------------------------------------------------- cut-offs and reports
def budget_cutoffs(probabilities: np.ndarray, ranking: np.ndarray, target: float, max_shards: int) -> np.ndarray:
    """Per query, the fewest shards of its ranking whose probabilities add up to ``target``,
    clamped to ``[1, max_shards]``.

    Nested by construction: the cumulative sums along a ranking only grow, so a higher ``target``
    never gives a smaller cut-off, and the shards searched are the first ones of ``ranking``.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target must be in (0, 1], got {target}")
    if max_shards < 1:
        raise ValueError(f"max_shards must be at least 1, got {max_shards}")
    probs = np.asarray(probabilities, dtype=np.float64)
    if not len(probs):
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(np.take_along_axis(probs, np.asarray(ranking, dtype=np.int64), axis=1), axis=1)
    # 1 + the number of prefixes still short of the target; the tolerance lets T = 1 stop at the
    # last shard despite rounding
    needed = 1 + (cum < target - 1e-9).sum(axis=1)
    return np.asarray(np.clip(needed, 1, max_shards), dtype=np.int64)


def _relevant_shares(n_queries: int, n_shards: int, pq: np.ndarray, ps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(share of each query's relevant pairs in each shard (n, K), pairs per query (n,))``."""
    counts = np.zeros((n_queries, n_shards))
    np.add.at(counts, (pq, ps), 1.0)
    n = counts.sum(axis=1)
    return np.divide(counts, n[:, None], out=np.zeros_like(counts), where=n[:, None] > 0), n


def reliability(probabilities: np.ndarray, pair_query: np.ndarray, pair_shard: np.ndarray, *,
                n_bins: int = 10) -> dict[str, Any]:
    """How well shard probabilities match where the relevant documents are.

    ``ece`` (expected calibration error) is about each query's top shard: queries (weighted by
    their relevant pairs) are binned by the probability given to their most probable shard, and
    per bin the mean probability is compared with the share of relevant pairs that shard really
    holds; ``table`` lists the bins. ``classwise_ece`` does the same over every (query, shard)
    cell (dominated by the many near-zero cells, so smaller).
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    pq = np.asarray(pair_query, dtype=np.int64)
    ps = np.asarray(pair_shard, dtype=np.int64)
    share, n = _relevant_shares(probs.shape[0], probs.shape[1], pq, ps)
    rows = n > 0
    top = probs[rows].argmax(axis=1)
    p_top = probs[rows][np.arange(rows.sum()), top]
    y_top = share[rows][np.arange(rows.sum()), top]
    table, ece = _binned(p_top, y_top, n[rows], n_bins)
    _, classwise = _binned(probs[rows].ravel(), share[rows].ravel(), np.repeat(n[rows], probs.shape[1]), n_bins)
    return {"ece": ece, "classwise_ece": classwise, "table": table}


def _binned(p: np.ndarray, y: np.ndarray, w: np.ndarray, n_bins: int) -> tuple[list[dict[str, Any]], float]:
    idx = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    table = []
    gap = 0.0
    for b in range(n_bins):
        sel = idx == b
        weight = float(w[sel].sum())
        if weight <= 0:
            continue
        mean_p = float((w[sel] * p[sel]).sum() / weight)
        mean_y = float((w[sel] * y[sel]).sum() / weight)
        table.append({"bin": f"{b / n_bins:.1f}-{(b + 1) / n_bins:.1f}", "weight": weight, "cells": int(sel.sum()),
                      "predicted": mean_p, "observed": mean_y})
        gap += weight * abs(mean_p - mean_y)
    total = float(w.sum())
    return table, gap / total if total > 0 else 0.0


def coverage_at_targets(probabilities: np.ndarray, ranking: np.ndarray, pair_query: np.ndarray,
                        pair_shard: np.ndarray, targets: Sequence[float], max_shards: int,
                        shard_sizes: np.ndarray | None = None) -> list[dict[str, float]]:
    """Per target: the coverage the cut-offs promise against the coverage they achieve.

    ``predicted`` is the mean (over relevant pairs' queries) of the probability mass searched,
    ``achieved`` the fraction of relevant pairs whose shard is searched, ``shards`` the mean
    shards searched per query (``docs_frac`` the mean fraction of documents, when ``shard_sizes``
    is given). A calibrated router has ``achieved`` close to ``predicted``; below ``target``
    where ``max_shards`` cuts in.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    rank = np.asarray(ranking, dtype=np.int64)
    pq = np.asarray(pair_query, dtype=np.int64)
    ps = np.asarray(pair_shard, dtype=np.int64)
    rows = np.unique(pq)
    position = np.argsort(rank, axis=1)  # position[q, shard] = where the shard is in q's ranking
    cum = np.cumsum(np.take_along_axis(probs, rank, axis=1), axis=1)
    out = []
    for target in targets:
        cut = budget_cutoffs(probs, rank, float(target), max_shards)
        row = {"target": float(target), "predicted": float(cum[pq, cut[pq] - 1].mean()),
               "achieved": float((position[pq, ps] < cut[pq]).mean()), "shards": float(cut[rows].mean())}
        if shard_sizes is not None:
            sizes = np.asarray(shard_sizes, dtype=np.float64)
            docs = np.array([sizes[rank[q, : cut[q]]].sum() for q in rows])
            row["docs_frac"] = float(docs.mean() / sizes.sum())
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------- the router
class AutoBudgetRouter(ScoringRouter):
    """A scoring router with per-query cut-offs from its calibrated shard probabilities.

    The ranking is the wrapped router's (by score, ties by shard id); :meth:`cutoffs` (used when
    no fixed budget is given: ``select(queries, None)``) is :func:`budget_cutoffs` of
    :meth:`probabilities`. Scores are computed once per batch for ranking and cut-off.

    Args:
        router: any router with ``scores(queries) -> (n, K)``.
        calibration: from :func:`fit_calibration` (or :data:`FALLBACK`).
        shard_sizes: documents per shard (the calibration's prior).
        target: coverage target in (0, 1] (default :data:`DEFAULT_TARGET`).
        max_shards: most shards per query (default :func:`default_max_shards`).
    """

    def __init__(self, router: Router, calibration: Calibration, shard_sizes: np.ndarray, *,
                 target: float | None = None, max_shards: int | None = None) -> None:
        if not callable(getattr(router, "scores", None)):
            raise RouteSpecError(f"router {router.name!r} ranks shards without scoring them, so it has no "
                                 f"probabilities for a per-query budget; use a fixed budget ({router.name}@M) or a "
                                 "scoring router (hybrid, cori, taily, knn, centroid, redde, ranks, mico)")
        self.router = router
        self.name = router.name
        self.shard_sizes = np.asarray(shard_sizes, dtype=np.float64)
        self.n_shards = len(self.shard_sizes)
        self.calibration = calibration
        self.target = DEFAULT_TARGET if target is None else float(target)
        self.max_shards = default_max_shards(self.n_shards) if max_shards is None else int(max_shards)
        if not 0.0 < self.target <= 1.0:
            raise RouteSpecError(f"coverage target must be in (0, 1], got {self.target}")
        if not 1 <= self.max_shards <= self.n_shards:
            raise RouteSpecError(f"max_shards must be between 1 and the {self.n_shards} shards, got {self.max_shards}")
        self._last: tuple[tuple[str, ...], np.ndarray] | None = None

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        """The wrapped router's ``(n, K)`` scores (the last batch's are reused: ranking and
        cut-off of one batch score it once)."""
        key = tuple(q.text for q in queries)
        if self._last is None or self._last[0] != key:
            self._last = (key, np.asarray(self.router.scores(queries), dtype=np.float64))  # type: ignore[attr-defined]
        return self._last[1]

    def probabilities(self, queries: Sequence[Query]) -> np.ndarray:
        """``(n, K)`` calibrated probabilities that a relevant document of each query is in each shard."""
        return self.calibration.probabilities(self.scores(queries), self.shard_sizes)

    def cutoffs(self, queries: Sequence[Query]) -> np.ndarray | None:
        if not queries:
            return np.zeros(0, dtype=np.int64)
        scores = self.scores(queries)
        return budget_cutoffs(self.calibration.probabilities(scores, self.shard_sizes), rank_by_scores(scores),
                              self.target, self.max_shards)

    def encoded_queries(self) -> EncodedQueries | None:
        return self.router.encoded_queries()

    def route_details(self) -> list[dict[str, Any]] | None:
        return self.router.route_details()

    def offer_encoded(self, encoded: EncodedQueries | None) -> None:
        offer = getattr(self.router, "offer_encoded", None)
        if callable(offer):
            offer(encoded)


_WARNED: set[tuple[str, str]] = set()


def make_auto_router(router: Router, auto: AutoBudget, index: ShardedIndex, *, warn: bool = True) -> AutoBudgetRouter:
    """Wrap ``router`` (built for ``index``) in the per-query budget ``auto``, with the
    calibration stored for it in ``INDEX/routing.json`` (:func:`read_calibration`), else
    :data:`FALLBACK` with a warning once per index and router (unless ``warn`` is false: the
    caller has said so already).

    A stored ``hybrid`` calibration is used only when the router fuses the same routers with the
    same weights as when it was fitted (options such as ``hybrid.weights=...`` change the scores).
    """
    stored = read_calibration(index.path, router.name)
    why = f"no calibration for {router.name!r} in {index.path / 'routing.json'}"
    if stored is not None and not _same_fusion(router, stored):
        why = (f"the calibration stored for {router.name!r} was fitted for routers {stored.get('routers')} weights "
               f"{stored.get('weights')}, not this fusion")
        stored = None
    calibration = Calibration.from_json(stored) if stored is not None else FALLBACK
    if stored is None and warn and (str(index.path), router.name) not in _WARNED:
        _WARNED.add((str(index.path), router.name))
        log.warning("%s@auto: %s; using the uncalibrated fallback (per-query z-scores, temperature 1), which "
                    "tends to search more shards than needed. Calibrate with `selectsearch tune-route`", router.name,
                    why)
    return AutoBudgetRouter(router, calibration, index.shard_sizes, target=auto.target, max_shards=auto.max_shards)


def _same_fusion(router: Router, stored: Mapping[str, Any]) -> bool:
    """Whether a stored calibration fits ``router``: for a fusion, the same routers and weights."""
    if "routers" not in stored:
        return True
    subs = getattr(router, "routers", None)
    weights = getattr(router, "weights", None)
    if subs is None or weights is None:
        return False
    names = [r.name for r in subs]
    gating = getattr(router, "gating", None)
    same_gate = (gating.to_dict() if gating is not None else None) == stored.get("gating")
    ranker = getattr(router, "ranker", None)
    if (ranker.digest if ranker is not None else None) != stored.get("ranker"):
        return False
    return same_gate and names == list(stored["routers"]) and len(weights) == len(stored.get("weights", ())) and bool(
        np.allclose(weights, stored["weights"], atol=1e-9))


# ---------------------------------------------------------------------------------------------- fitting on an index
def calibrate_routers(scores: Mapping[str, np.ndarray], pair_query: np.ndarray, pair_shard: np.ndarray,
                      shard_sizes: np.ndarray, *, fusion: tuple[Sequence[str], Sequence[float]] | None = None,
                      gating: Mapping[str, Any] | None = None, ranker: str | None = None
                      ) -> dict[str, dict[str, Any]]:
    """Calibrations of several routers on the same held-out pairs, as ``routing.json`` stores them.

    ``tune-route`` calls it with each tuned router's raw scores and the fused score (under
    ``"hybrid"``, with ``fusion=(routers, weights)`` so that a different fusion is not given
    this calibration; with ``gating=`` the gate's parameters when the fused scores were gated, with
    ``ranker=`` the digest of the shard ranker that scored them)::

        raw = {n: built[n].scores(held.queries) for n in names}
        fused = sum(w * standardise(raw[n]) for n, w in zip(names, weights))
        tuned["calibration"] = calibrate_routers({**raw, "hybrid": fused}, held.pair_query,
                                                 held.pair_shard, index.shard_sizes,
                                                 fusion=(names, weights))
    """
    out: dict[str, dict[str, Any]] = {}
    for name, s in scores.items():
        entry = fit_calibration(s, pair_query, pair_shard, shard_sizes).to_json()
        if name == "hybrid" and fusion is not None:
            entry["routers"] = list(fusion[0])
            entry["weights"] = [float(w) for w in fusion[1]]
            if gating is not None:  # the fused scores were gated: only a router with this gate shares them
                entry["gating"] = dict(gating)
            if ranker is not None:  # scored by a shard ranker: only a router with this ranker shares them
                entry["ranker"] = ranker
        out[name] = entry
    return out


def read_calibration(index_path: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """The calibration ``routing.json`` stores for router ``name``, or ``None``."""
    from selectsearch.route.routing_file import read_routing

    tuned = read_routing(index_path)
    entry = (tuned or {}).get("calibration", {}).get(name)
    return dict(entry) if isinstance(entry, dict) else None


def store_calibration(index_path: str | os.PathLike[str], calibration: Mapping[str, Mapping[str, Any]]) -> Path:
    """Add (or replace) ``calibration`` entries in ``INDEX/routing.json``, written whole or not at all.

    Raises:
        RouteSpecError: the index has no ``routing.json`` (tune it first).
    """
    from selectsearch.route.routing_file import read_routing, write_routing

    tuned = read_routing(index_path)
    if tuned is None:
        raise RouteSpecError(f"{index_path} has no routing.json; run `selectsearch tune-route` first")
    tuned["calibration"] = {**tuned.get("calibration", {}), **{k: dict(v) for k, v in calibration.items()}}
    return write_routing(index_path, tuned, overwrite=True)
