"""Paired tests against a baseline, Holm's correction and bootstrap intervals (selectsearch.significance)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from selectsearch.significance import bootstrap_ci, compare_paired, compare_routes, holm, ratio_ci

# a fixed example: nDCG@10 of 12 queries for a baseline and a route (values as ir-measures gives them)
BASE = [0.61, 0.0, 1.0, 0.43, 0.77, 0.5, 0.25, 0.9, 0.33, 0.68, 0.12, 0.8]
ROUTE = [0.55, 0.0, 1.0, 0.20, 0.77, 0.31, 0.25, 0.6, 0.40, 0.50, 0.0, 0.8]


def _q(values: list[float]) -> dict[str, float]:
    return {f"q{i}": v for i, v in enumerate(values)}


def test_holm_matches_the_textbook_example() -> None:
    # sorted p: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> kept non-decreasing: 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]).tolist() == []
    with pytest.raises(ValueError, match="p-values"):
        holm([0.1, float("nan")])


def _holm_by_definition(p: list[float]) -> list[float]:
    """Adjusted p_i = max over j with p_j <= p_i (in sorted order up to i) of min(1, (m - rank_j) p_j)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: (p[i], i))
    out = [0.0] * m
    for pos, i in enumerate(order):
        out[i] = max(min(1.0, (m - r) * p[order[r]]) for r in range(pos + 1))
    return out


@given(st.lists(st.floats(0.0, 1.0), max_size=12))
def test_holm_equals_its_definition(p: list[float]) -> None:
    assert holm(p).tolist() == pytest.approx(_holm_by_definition(p))


def test_holm_rejects_what_step_down_rejects() -> None:
    # Holm at alpha: reject the k smallest while p_(k) <= alpha / (m - k + 1); stop at the first failure
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = rng.uniform(0, 0.1, size=rng.integers(1, 8))
        adjusted = holm(p)
        rejected = set()
        for k, i in enumerate(np.argsort(p, kind="stable")):
            if p[i] > 0.05 / (len(p) - k):
                break
            rejected.add(int(i))
        assert {i for i, a in enumerate(adjusted) if a <= 0.05} == rejected


def test_paired_tests_agree_with_scipy_on_a_fixed_example() -> None:
    from scipy import stats

    c = compare_paired(_q(ROUTE), _q(BASE))
    t = stats.ttest_rel(ROUTE, BASE)
    w = stats.wilcoxon(ROUTE, BASE)
    assert c["t"] == {"statistic": pytest.approx(t.statistic), "p": pytest.approx(t.pvalue)}
    assert c["wilcoxon"] == {"statistic": pytest.approx(w.statistic), "p": pytest.approx(w.pvalue)}
    # and the numbers worked out by hand, so that a change of test (one-sided, another zero method) shows:
    # t = mean(d) / (sd(d) / sqrt(12)) = -2.5027 on 11 df; Wilcoxon drops the 5 zero differences and
    # W = 2 (rank sum of the one positive difference) over 7 has the exact two-sided p = 6/128
    assert c["t"]["statistic"] == pytest.approx(-2.5027, abs=1e-4) and c["t"]["p"] == pytest.approx(0.0294, abs=1e-4)
    assert c["wilcoxon"]["statistic"] == 2.0 and c["wilcoxon"]["p"] == pytest.approx(6 / 128)
    assert (c["wins"], c["ties"], c["losses"]) == (1, 5, 6)
    assert c["mean_diff"] == pytest.approx(np.mean(ROUTE) - np.mean(BASE))


def test_paired_order_does_not_depend_on_the_mapping_order() -> None:
    a = compare_paired(_q(ROUTE), _q(BASE))
    b = compare_paired(dict(reversed(list(_q(ROUTE).items()))), _q(BASE))
    assert a == b


def test_degenerate_comparisons_are_defined() -> None:
    same = compare_paired(_q(BASE), _q(BASE))
    assert same["t"]["p"] == 1.0 and same["wilcoxon"]["p"] == 1.0 and same["ties"] == len(BASE)
    shifted = compare_paired(_q([v - 0.1 for v in BASE]), _q(BASE))
    assert shifted["t"]["p"] < 1e-10 and shifted["losses"] == len(BASE)
    exact = compare_paired(_q([0.5, 0.25, 0.75]), _q([0.75, 0.5, 1.0]))  # differences exactly -0.25
    assert exact["t"] == {"statistic": float("-inf"), "p": 0.0}
    one = compare_paired({"a": 0.1}, {"a": 0.9})
    assert one["t"]["p"] == 1.0  # one query: nothing can be concluded
    with pytest.raises(ValueError, match="same queries"):
        compare_paired({"a": 0.1}, {"b": 0.1})
    assert compare_paired(_q([0.5, 0.5]), _q([0.5, 0.49]), tie_tolerance=0.02)["ties"] == 2


def test_compare_routes_corrects_over_the_family_and_marks_the_verdict() -> None:
    from scipy import stats

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 60)
    per_query = {"all": {"m": _q(list(base))},
                 "good@8": {"m": _q(list(base))},                                  # identical: n.s.
                 "bad@1": {"m": _q(list(np.clip(base - 0.3, 0, 1)))},              # clearly worse
                 "noisy@4": {"m": _q(list(np.clip(base + rng.normal(0, 0.05, 60), 0, 1)))}}
    out = compare_routes(per_query, "all", ["m"])
    assert set(out) == {"good@8", "bad@1", "noisy@4"}
    assert out["bad@1"]["measures"]["m"]["verdict"] == "worse" and not out["bad@1"]["measures"]["m"]["not_worse"]
    assert out["good@8"]["measures"]["m"]["verdict"] == "n.s."
    raw = [stats.ttest_rel(np.asarray(list(per_query[r]["m"].values())), base).pvalue if r != "good@8" else 1.0
           for r in ("good@8", "bad@1", "noisy@4")]
    expected = holm(raw)
    got = [out[r]["measures"]["m"]["t"]["p_holm"] for r in ("good@8", "bad@1", "noisy@4")]
    assert got == pytest.approx(expected.tolist())
    assert all(out[r]["family"] == 3 and out[r]["baseline"] == "all" for r in out)
    with pytest.raises(ValueError, match="baseline"):
        compare_routes(per_query, "none", ["m"])
    with pytest.raises(ValueError, match="unknown test"):
        compare_routes(per_query, "all", ["m"], test="sign")


def test_verdict_follows_the_chosen_test() -> None:
    # a few large losses and many tiny wins: the mean (t-test) says worse, the ranks (Wilcoxon) do not
    base = [0.5] * 30
    route = [0.51] * 27 + [0.0, 0.0, 0.0]
    per_query = {"all": {"m": _q(base)}, "r@1": {"m": _q(route)}}
    t = compare_routes(per_query, "all", ["m"], test="t")["r@1"]["measures"]["m"]
    w = compare_routes(per_query, "all", ["m"], test="wilcoxon")["r@1"]["measures"]["m"]
    assert t["t"]["p"] == w["t"]["p"] and t["wilcoxon"]["p"] == w["wilcoxon"]["p"]
    assert (t["verdict"], w["verdict"]) != ("n.s.", "n.s.") and t["verdict"] != w["verdict"]


def test_bootstrap_intervals_cover_the_mean_and_are_seeded() -> None:
    values = np.random.default_rng(1).uniform(0, 1, 200)
    low, high = bootstrap_ci(values, seed=4)
    assert low < values.mean() < high and high - low < 0.2
    assert bootstrap_ci(values, seed=4) == (low, high)
    r = ratio_ci(values * 0.9, values, seed=4)
    assert r is not None and r[0] == pytest.approx(0.9) and r[1] == pytest.approx(0.9)  # an exact scaling
    noisy = ratio_ci(np.clip(values + np.random.default_rng(2).normal(0, 0.1, 200), 0, 1), values)
    assert noisy is not None and noisy[0] < 1.0 < noisy[1]
    assert ratio_ci([0.1, 0.2], [0.0, 0.0]) is None


def test_every_pair_of_small_samples_gets_finite_p() -> None:
    for a, b in itertools.product([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.2, 0.4, 0.6]], repeat=2):
        c = compare_paired(_q(a), _q(b))
        assert 0.0 <= c["t"]["p"] <= 1.0 and 0.0 <= c["wilcoxon"]["p"] <= 1.0
