"""Per-query comparisons with a baseline: paired tests, Holm's correction, win/tie/loss, bootstrap intervals.

The selective-search literature (Kulkarni & Callan 2010, 2015) reports each selective
configuration next to exhaustive search with a paired test over queries and marks the ones that
are *not significantly worse* than exhaustive. This module does that for any per-query values
(``{query_id: value}`` per route, as :func:`selectsearch.evaluation.evaluate` computes them):

* :func:`compare_paired` — mean difference, wins / ties / losses, the two-sided paired t-test
  (``scipy.stats.ttest_rel``) and the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, zero
  differences dropped, its default) of one route against the baseline on the same queries;
* :func:`holm` — Holm's step-down adjustment of a family of p-values (strong control of the
  family-wise error rate);
* :func:`compare_routes` — every route against the baseline, per measure, Holm-adjusted over the
  routes compared (one family per measure and test), with a verdict: ``worse`` or ``better``
  when the adjusted p-value of the chosen test is below ``alpha``, else ``n.s.``;
  ``not_worse`` is ``verdict != "worse"``;
* :func:`bootstrap_ci` and :func:`ratio_ci` — percentile bootstrap intervals over queries
  (``scipy.stats.bootstrap``) of a mean and of the ratio of two paired means.

"Not significantly worse" is an absence of evidence, not a proof of equivalence: the more routes
a run compares (the larger Holm's family), the easier it is to earn. Read it with the win/tie/loss
counts and the mean difference.

Example:
    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    >>> c = compare_paired({"a": 0.5, "b": 0.2, "c": 0.9}, {"a": 0.5, "b": 0.4, "c": 0.7})
    >>> c["wins"], c["ties"], c["losses"]
    (1, 1, 1)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["TESTS", "bootstrap_ci", "compare_paired", "compare_routes", "holm", "ratio_ci"]

#: the paired tests computed for every comparison, by the name ``--significance`` takes
TESTS = ("t", "wilcoxon")


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order.

    The i-th smallest p-value (1-based) is multiplied by ``m - i + 1``, capped at 1, and made
    non-decreasing along the sorted order (Holm 1979); a hypothesis is rejected at level alpha
    when its adjusted p-value is below alpha.

    Raises:
        ValueError: a p-value that is NaN or outside [0, 1].

    Example:
        >>> holm([0.04, 0.001]).tolist()
        [0.04, 0.002]
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def _paired_arrays(values: Mapping[str, float], baseline: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Both value sets on the same queries, in a fixed order; refuse different query sets."""
    if set(values) != set(baseline):
        only = sorted(set(values) ^ set(baseline))
        raise ValueError(f"paired values need the same queries; {len(only)} differ (e.g. {', '.join(only[:3])})")
    qids = sorted(values)
    return (np.asarray([values[q] for q in qids], dtype=np.float64),
            np.asarray([baseline[q] for q in qids], dtype=np.float64))


def compare_paired(values: Mapping[str, float], baseline: Mapping[str, float], *, tie_tolerance: float = 0.0
                   ) -> dict[str, Any]:
    """One route against the baseline over the same queries: differences and two paired tests.

    Returns ``{"queries", "mean", "baseline_mean", "mean_diff", "wins", "ties", "losses", "t":
    {"statistic", "p"}, "wilcoxon": {"statistic", "p"}}``; a query is a tie when its two values
    differ by at most ``tie_tolerance``. p-values are two-sided. Degenerate cases get a defined
    answer rather than NaN: identical values (every difference 0) give p = 1 for both tests, a
    constant non-zero difference gives the t-test p = 0 (an exact shift), fewer than 2 queries
    give p = 1 (nothing can be concluded).

    Raises:
        ValueError: the two mappings do not hold the same queries.
    """
    from scipy import stats

    x, y = _paired_arrays(values, baseline)
    diff = x - y
    n = len(diff)
    wins = int((diff > tie_tolerance).sum())
    losses = int((diff < -tie_tolerance).sum())
    out: dict[str, Any] = {"queries": n, "mean": float(x.mean()) if n else 0.0,
                           "baseline_mean": float(y.mean()) if n else 0.0,
                           "mean_diff": float(diff.mean()) if n else 0.0,
                           "wins": wins, "ties": n - wins - losses, "losses": losses}
    if n < 2 or not diff.any():
        out["t"] = {"statistic": 0.0, "p": 1.0}
        out["wilcoxon"] = {"statistic": 0.0, "p": 1.0}
        return out
    if np.ptp(diff) == 0.0:  # a constant non-zero shift: the t statistic is infinite
        out["t"] = {"statistic": float(np.sign(diff[0]) * np.inf), "p": 0.0}
    else:
        with warnings.catch_warnings():  # nearly identical samples: scipy warns, the result stands
            warnings.simplefilter("ignore", RuntimeWarning)
            t = stats.ttest_rel(x, y)
        out["t"] = {"statistic": float(t.statistic), "p": float(t.pvalue)}
    w = stats.wilcoxon(x, y)
    out["wilcoxon"] = {"statistic": float(w.statistic), "p": float(w.pvalue)}
    return out


def compare_routes(per_query: Mapping[str, Mapping[str, Mapping[str, float]]], baseline: str,
                   measures: Sequence[str], *, alpha: float = 0.05, test: str = "t", tie_tolerance: float = 0.0
                   ) -> dict[str, dict[str, Any]]:
    """Every route of ``per_query`` (``{route: {measure: {query_id: value}}}``) against ``baseline``.

    For each measure, the routes other than the baseline form one family per test, and their
    p-values are Holm-adjusted together (``p_holm`` next to ``p``). ``verdict`` comes from the
    adjusted p-value of ``test`` (``"t"`` or ``"wilcoxon"``): ``worse``/``better`` below
    ``alpha`` (by the sign of the mean difference), else ``n.s.``; ``not_worse`` is
    ``verdict != "worse"``.

    Returns:
        ``{route: {"baseline", "test", "alpha", "correction": "holm", "family", "measures":
        {measure: compare_paired(...) + p_holm, verdict, not_worse}}}`` for every route but the
        baseline.

    Raises:
        ValueError: unknown ``test``, ``alpha`` outside (0, 1), the baseline or a measure missing,
            or routes evaluated on different queries.

    Example:
        >>> pq = {"all": {"m": {"a": 1.0, "b": 1.0}}, "x@1": {"m": {"a": 1.0, "b": 1.0}}}
        >>> compare_routes(pq, "all", ["m"])["x@1"]["measures"]["m"]["verdict"]
        'n.s.'
    """
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; one of {', '.join(TESTS)}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if baseline not in per_query:
        raise ValueError(f"baseline route {baseline!r} is not among the routes ({', '.join(per_query)})")
    routes = [r for r in per_query if r != baseline]
    out: dict[str, dict[str, Any]] = {r: {"baseline": baseline, "test": test, "alpha": alpha, "correction": "holm",
                                          "family": len(routes), "measures": {}} for r in routes}
    for measure in measures:
        if measure not in per_query[baseline]:
            raise ValueError(f"baseline route {baseline!r} has no per-query {measure}")
        found = {r: compare_paired(per_query[r][measure], per_query[baseline][measure], tie_tolerance=tie_tolerance)
                 for r in routes if measure in per_query[r]}
        names = list(found)
        for name in TESTS:
            adjusted = holm([found[r][name]["p"] for r in names]) if names else np.zeros(0)
            for r, p in zip(names, adjusted.tolist(), strict=True):
                found[r][name]["p_holm"] = p
        for r, c in found.items():
            significant = c[test]["p_holm"] < alpha
            c["verdict"] = ("better" if c["mean_diff"] > 0 else "worse") if significant and c["mean_diff"] else "n.s."
            c["not_worse"] = c["verdict"] != "worse"
            out[r]["measures"][measure] = c
    return out


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def bootstrap_ci(values: Sequence[float] | np.ndarray, *, confidence: float = 0.95, n_resamples: int = 1000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval over queries of the mean of ``values`` (``scipy.stats.bootstrap``).

    A single value, or identical values, give the degenerate interval ``(mean, mean)``.

    Example:
        >>> bootstrap_ci([0.5, 0.5, 0.5])
        (0.5, 0.5)
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("no values to bootstrap")
    if len(x) < 2 or np.ptp(x) == 0.0:
        return float(x.mean()), float(x.mean())
    res = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", vectorized=True, random_state=_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def ratio_ci(values: Sequence[float] | np.ndarray, baseline: Sequence[float] | np.ndarray, *,
             confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``mean(values) / mean(baseline)``, queries resampled in pairs.

    ``None`` when the baseline mean is 0 (no ratio). Identical pairs give ``(ratio, ratio)``.

    Example:
        >>> ratio_ci([0.4, 0.4], [0.8, 0.8])
        (0.5, 0.5)
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    y = np.asarray(baseline, dtype=np.float64)
    if x.shape != y.shape or len(x) == 0:
        raise ValueError(f"paired values need equal, non-zero lengths, got {x.shape} and {y.shape}")
    if y.mean() == 0.0:
        return None
    ratio = float(x.mean() / y.mean())
    if len(x) < 2 or (np.ptp(x) == 0.0 and np.ptp(y) == 0.0) or np.array_equal(x, y):
        return ratio, ratio  # every resample has this ratio

    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        den = b.mean(axis=axis)
        # a resample whose baseline mean is 0 has no ratio; it cannot occur unless most values are 0
        return np.where(den > 0, a.mean(axis=axis) / np.where(den > 0, den, 1.0), np.nan)

    with warnings.catch_warnings():  # x a constant multiple of y: every resample has one ratio, which is the answer
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap((x, y), statistic, paired=True, confidence_level=confidence,
                              n_resamples=n_resamples, method="percentile", vectorized=True, random_state=_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if np.isnan(low) or np.isnan(high):
        return None
    return low, high
