"""Per-query budgets (``NAME@auto:T/M``): spec syntax, calibration, nested cut-offs, evaluation rows."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selectsearch.errors import RouteSpecError
from selectsearch.index.sharded import ShardedIndex
from selectsearch.ranking import rank_by_scores
from selectsearch.route import check_budget, expand_for_index, make_router, parse_route
from selectsearch.route.base import ScoringRouter
from selectsearch.route.budget import (
    FALLBACK,
    AutoBudgetRouter,
    Calibration,
    budget_cutoffs,
    coverage_at_targets,
    default_max_shards,
    fit_calibration,
    read_calibration,
    reliability,
    store_calibration,
)
from selectsearch.route.routing_file import write_routing
from selectsearch.types import Query

from .conftest import TOPICS


class FixedScores(ScoringRouter):
    """Scores given in advance, one row per query (by position in the batch)."""

    name = "fixed"

    def __init__(self, scores: np.ndarray) -> None:
        self.table = np.asarray(scores, dtype=np.float64)
        self.n_shards = self.table.shape[1]
        self.calls = 0

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        self.calls += 1
        return self.table[[int(q.query_id) for q in queries]]


def _queries(n: int) -> list[Query]:
    return [Query(str(i), f"query {i}") for i in range(n)]


# ------------------------------------------------------------------------------------------------ spec syntax
@pytest.mark.parametrize("text", ["all", "centroid@2", "random@1:3", "random@1,2,4", "ranks", "taily@4",
                                  "hybrid@auto", "hybrid@auto:0.95", "hybrid@auto:0.95/8", "cori@auto/4",
                                  "knn@auto:1", "hybrid@auto:0.8,0.9,0.95", "ranks@auto:0.5/2"])
def test_spec_str_round_trips(text: str) -> None:
    spec = parse_route(text)
    assert str(spec) == text
    assert parse_route(str(spec)) == spec


@given(st.lists(st.floats(min_value=1e-6, max_value=1.0, allow_nan=False), min_size=1, max_size=4),
       st.one_of(st.none(), st.integers(1, 64)))
@settings(max_examples=60, deadline=None)
def test_any_auto_spec_round_trips(targets: list[float], max_shards: int | None) -> None:
    text = "hybrid@auto:" + ",".join(np.format_float_positional(t, trim="-") for t in targets)
    text += f"/{max_shards}" if max_shards else ""
    spec = parse_route(text)
    assert parse_route(str(spec)) == spec
    assert sorted({s.auto.target for s in spec.expand() if s.auto}) == sorted(set(targets))


def test_auto_spec_fields_and_defaults() -> None:
    spec = parse_route("HYBRID@auto:0.950/8")
    assert (spec.name, spec.budget, spec.auto and spec.auto.target, spec.auto and spec.auto.max_shards) == (
        "hybrid", None, 0.95, 8)
    assert parse_route("hybrid@auto").auto == parse_route("hybrid@auto").auto
    assert parse_route("hybrid@auto").router_key != parse_route("hybrid@auto:0.5").router_key
    assert parse_route("hybrid@2").router_key == parse_route("hybrid@4").router_key == "hybrid"
    assert [str(s) for s in expand_for_index(parse_route("cori@auto:0.9,0.5/4"), 16)] == ["cori@auto:0.5/4",
                                                                                         "cori@auto:0.9/4"]


@pytest.mark.parametrize("text", ["hybrid@auto:0", "hybrid@auto:1.5", "hybrid@auto:", "hybrid@auto/0", "all@auto",
                                  "hybrid@auto:0.9/", "hybrid@auto:x", "hybrid@auto:-0.5", "foo@auto"])
def test_bad_auto_specs_are_refused(text: str) -> None:
    with pytest.raises(RouteSpecError):
        parse_route(text)


def test_budget_checks_against_the_index() -> None:
    with pytest.raises(RouteSpecError, match="at most 32 shards"):
        check_budget(parse_route("cori@auto:0.9/32"), 16)
    with pytest.raises(RouteSpecError, match="sweep"):
        check_budget(parse_route("cori@auto:0.8,0.9"), 16)
    check_budget(parse_route("cori@auto:0.9/16"), 16)


# ------------------------------------------------------------------------------------------------ cut-offs
@given(st.integers(1, 6), st.integers(1, 12), st.floats(0.0, 5.0), st.floats(0.0, 0.9),
       st.sampled_from(["global", "query"]), st.integers(0, 10_000),
       st.lists(st.floats(0.01, 1.0), min_size=2, max_size=6))
@settings(max_examples=80, deadline=None)
def test_cutoffs_are_nested_prefixes_within_bounds(n: int, k: int, a: float, eps: float, scale: str, seed: int,
                                                    targets: list[float]) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n, k)) * rng.uniform(0.01, 5.0, size=(n, 1))
    scores[0] = np.round(scores[0])  # ties: broken by shard id
    cal = Calibration(a, eps, scale, 1.3)
    sizes = rng.integers(1, 100, size=k)
    max_shards = int(rng.integers(1, k + 1))
    previous = np.zeros(n, dtype=np.int64)
    for target in sorted(targets):
        router = AutoBudgetRouter(FixedScores(scores), cal, sizes, target=target, max_shards=max_shards)
        ranking, [selected] = router.selections(_queries(n), [None])
        cut = np.array([len(s) for s in selected])
        assert (cut >= 1).all() and (cut <= max_shards).all()
        assert (cut >= previous).all()  # a higher target never searches fewer shards
        assert all(list(s) == ranking[i, : len(s)].tolist() for i, s in enumerate(selected))  # a prefix
        np.testing.assert_array_equal(ranking, rank_by_scores(scores))  # the router's own ranking
        previous = cut


def test_cutoff_is_the_smallest_prefix_reaching_the_target() -> None:
    probs = np.array([[0.5, 0.3, 0.15, 0.05]])
    ranking = np.array([[0, 1, 2, 3]])
    assert [int(budget_cutoffs(probs, ranking, t, 4)[0]) for t in (0.4, 0.5, 0.6, 0.8, 0.81, 0.95, 1.0)] == [
        1, 1, 2, 2, 3, 3, 4]
    assert int(budget_cutoffs(probs, ranking, 1.0, 2)[0]) == 2  # the maximum wins


def test_flat_query_gets_more_shards_than_a_peaked_one() -> None:
    peaked = [3.0, 0.2, 0.1, 0.0, 0.0, 0.1, 0.0, 0.2]
    flat = [0.30, 0.28, 0.27, 0.25, 0.24, 0.22, 0.21, 0.20]
    scores = np.array([peaked, flat])
    cuts: dict[bool, list[np.ndarray]] = {True: [], False: []}
    for cal in (Calibration(2.0, 0.0, "global", 0.5, True), Calibration(1.5, 0.05, "query", 1.0, True), FALLBACK):
        router = AutoBudgetRouter(FixedScores(scores), cal, np.ones(8), target=0.9, max_shards=8)
        cut = router.cutoffs(_queries(2))
        assert cut is not None
        cuts[cal.fitted].append(cut)
        if cal.fitted:
            assert cut[1] > cut[0], cal
    # the uncalibrated fallback sees only the shape of the scores and errs towards more shards
    assert all(cuts[False][0][0] >= c[0] for c in cuts[True])


def test_ranking_and_cutoff_score_a_batch_once() -> None:
    base = FixedScores(np.random.default_rng(0).normal(size=(5, 6)))
    router = AutoBudgetRouter(base, FALLBACK, np.ones(6))
    router.select(_queries(5), None)
    assert base.calls == 1
    assert router.max_shards == default_max_shards(6) == 3 and router.target == 0.9


# ------------------------------------------------------------------------------------------------ calibration
@pytest.mark.parametrize("scale,true_a", [("global", 2.0), ("global", 0.7), ("query", 1.5)])
def test_fit_recovers_a_known_temperature(scale: str, true_a: float) -> None:
    rng = np.random.default_rng(1)
    n, k = 4000, 16
    scores = rng.normal(size=(n, k)) * 3.0 + 7.0
    truth = Calibration(true_a, 0.0, scale, 3.0)
    probs = truth.probabilities(scores)
    shards = np.array([rng.choice(k, p=row) for row in probs])
    fitted = fit_calibration(scores, np.arange(n), shards, scale=scale)
    assert fitted.fitted and fitted.scale == scale
    assert fitted.temperature == pytest.approx(truth.temperature if scale == "query" else 3.0 / true_a, rel=0.08)
    assert fitted.uniform < 0.03
    assert fitted.info["log_likelihood"] > fitted.info["log_likelihood_prior"]


def test_fit_finds_the_prior_mix_and_picks_the_likelier_scale() -> None:
    rng = np.random.default_rng(2)
    n, k = 4000, 8
    spread = rng.uniform(0.2, 3.0, size=(n, 1))  # query-dependent spread: global units carry information
    scores = rng.normal(size=(n, k)) * spread
    sizes = np.array([8, 1, 1, 1, 1, 1, 1, 2], dtype=np.float64)
    truth = Calibration(1.5, 0.3, "global", 1.0)
    shards = np.array([rng.choice(k, p=row) for row in truth.probabilities(scores, sizes)])
    fitted = fit_calibration(scores, np.arange(n), shards, sizes)
    assert fitted.scale == "global"
    assert fitted.uniform == pytest.approx(0.3, abs=0.06)


def test_reliability_of_a_calibrated_model_is_small() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(3000, 10)) * 2
    cal = Calibration(1.0, 0.0, "global", 1.0)
    probs = cal.probabilities(scores)
    shards = np.array([rng.choice(10, p=row) for row in probs])
    good = reliability(probs, np.arange(3000), shards)
    bad = reliability(Calibration(4.0, 0.0, "global", 1.0).probabilities(scores), np.arange(3000), shards)
    assert good["ece"] < 0.03 < bad["ece"]
    assert sum(b["weight"] for b in good["table"]) == 3000
    rows = coverage_at_targets(probs, rank_by_scores(scores), np.arange(3000), shards, [0.5, 0.9], 10, np.ones(10))
    for row in rows:
        assert row["achieved"] == pytest.approx(row["predicted"], abs=0.04)
    assert rows[0]["shards"] < rows[1]["shards"]


def test_calibration_json_round_trip_and_bad_values() -> None:
    cal = Calibration(1.25, 0.1, "global", 0.3, True, {"n_queries": 5})
    back = Calibration.from_json(cal.to_json())
    assert back == cal and back.info["n_queries"] == 5
    with pytest.raises(RouteSpecError):
        Calibration.from_json({**cal.to_json(), "version": 99})
    with pytest.raises(RouteSpecError):
        Calibration(1.0, 1.0)


# ------------------------------------------------------------------------------------------------ on an index
@pytest.fixture()
def own_index(tiny_index: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_index, tmp_path / "index"))


def test_auto_router_uses_the_stored_calibration_else_warns_once(own_index: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    index = ShardedIndex.open(own_index)
    with caplog.at_level(logging.WARNING, logger="selectsearch.route.budget"):
        router = make_router("cori@auto:0.8/3", index)
        make_router("cori@auto:0.9", index)
    assert isinstance(router, AutoBudgetRouter) and router.calibration == FALLBACK
    assert (router.target, router.max_shards) == (0.8, 3)
    assert sum("fallback" in r.message for r in caplog.records) == 1
    write_routing(own_index, {"router": "hybrid", "routers": ["cori"], "weights": [1.0]})
    stored = Calibration(3.0, 0.05, "query", 1.0, True, {"n_queries": 7})
    store_calibration(own_index, {"cori": stored.to_json(),
                                  "hybrid": {**stored.to_json(), "routers": ["cori"], "weights": [1.0]}})
    assert read_calibration(own_index, "cori") == stored.to_json()
    assert make_router("cori@auto", index).calibration == stored  # type: ignore[attr-defined]
    assert make_router("hybrid@auto", index).calibration == stored  # type: ignore[attr-defined]
    # another fusion than the one calibrated: the fallback, not a calibration of other scores
    other = make_router("hybrid@auto", index, routers="cori,taily", weights="0.5,0.5")
    assert other.calibration == FALLBACK  # type: ignore[attr-defined]


def test_auto_needs_a_scoring_router(own_index: Path) -> None:
    with pytest.raises(RouteSpecError, match="without scoring"):
        make_router("random@auto", ShardedIndex.open(own_index))


def test_evaluate_reports_the_shard_distribution(own_index: Path) -> None:
    from selectsearch.evaluation import evaluate, format_table
    from selectsearch.search import SelectiveSearcher

    index = ShardedIndex.open(own_index)
    queries = {f"q{t}{i}": " ".join(w[i:i + 2]) for t, w in TOPICS.items() for i in range(0, 8, 2)}
    queries["qmix"] = "rocket flour stock gene"  # spread over topics: a flat routing distribution
    qrels = {q: {d: 1 for d in index.shard_of_doc if d.startswith(q[1:-1])} for q in queries if q != "qmix"}
    qrels["qmix"] = {"space-0": 1, "cooking-0": 1}
    searcher = SelectiveSearcher.open(own_index)
    fixed = evaluate(searcher, queries, qrels, ["all", "cori@1:2"], ["nDCG@10"], k=10)
    assert "p10/50/90" not in format_table(fixed)  # fixed budgets: the table as before
    assert fixed[1]["shards_histogram"] == {"1": len(queries)}
    assert fixed[1]["cost"]["shards_searched_p90"] == 1.0
    rows = evaluate(searcher, queries, qrels, ["cori@2", "cori@auto:0.3,0.99/4"], ["nDCG@10"], k=10)
    assert [r["route"] for r in rows] == ["cori@2", "cori@auto:0.3/4", "cori@auto:0.99/4"]
    low, high = rows[1], rows[2]
    assert low["auto"]["target"] == 0.3 and high["auto"]["max_shards"] == 4 and low["budget"] is None
    assert low["cost"]["shards_searched"] <= high["cost"]["shards_searched"] <= 4
    assert sum(high["shards_histogram"].values()) == len(queries)
    assert high["metrics"]["coverage"] >= low["metrics"]["coverage"]
    assert rows[0]["metrics"]["coverage_auc"] == low["metrics"]["coverage_auc"]  # same ranking
    if high["cost"]["shards_searched_min"] != high["cost"]["shards_searched_max"]:
        assert "shards p10/50/90/max" in format_table(rows)


def test_search_with_an_auto_route(own_index: Path) -> None:
    from selectsearch.search import SelectiveSearcher

    searcher = SelectiveSearcher.open(own_index, route="cori@auto:0.99/2")
    out = searcher.batch_search({"a": "rocket orbit", "b": "flour sugar"}, k=5)
    assert all(1 <= len(r.trace.shards) <= 2 for r in out.values())
    assert out["a"].trace.route == "cori@auto:0.99/2"


def test_sweeps_and_report_families() -> None:
    from selectsearch.bench.report.curves import budget_to_reach

    assert parse_route("cori@auto:0.8,0.9").is_sweep and parse_route("cori@1:2").is_sweep
    assert not parse_route("cori@auto:0.8").is_sweep and not parse_route("cori@2").is_sweep

    def row(route: str, budget: int | None, ndcg: float, frac: float, **extra: object) -> dict[str, object]:
        return {"route": route, "router": route.split("@")[0], "budget": budget, "metrics": {"nDCG@10": ndcg},
                "cost": {"fraction_scored": frac}, **extra}

    rows = [row("all", None, 0.5, 1.0), row("cori@1", 1, 0.40, 0.1), row("cori@2", 2, 0.49, 0.2),
            row("cori@auto:0.5", None, 0.45, 0.12, auto={"target": 0.5}),
            row("cori@auto:0.8", None, 0.49, 0.15, auto={"target": 0.8})]
    reached = budget_to_reach(rows, "nDCG@10", 0.95)
    assert reached["cori"] == {"budget": 2, "fraction_scored": 0.2, "value": 0.49}
    assert reached["cori@auto"] == {"budget": "auto:0.8", "fraction_scored": 0.15, "value": 0.49}


def _full_grid_log_likelihood(z: np.ndarray, pq: np.ndarray, ps: np.ndarray, prior_of_pair: np.ndarray,
                              a_grid: np.ndarray, eps_grid: np.ndarray) -> np.ndarray:
    """Every grid point's mean log-likelihood, as the fit computed them before it bisected."""
    out = np.empty((len(a_grid), len(eps_grid)))
    rows = np.unique(pq)
    where = np.searchsorted(rows, pq)
    for i, a in enumerate(a_grid):
        logits = a * z[rows]
        top = logits.max(axis=1)
        lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
        sm = np.exp(a * z[pq, ps] - lse[where])
        probs = (1.0 - eps_grid)[:, None] * sm[None, :] + eps_grid[:, None] * prior_of_pair[None, :]
        out[i] = np.log(np.maximum(probs, 1e-300)).mean(axis=1)
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 12), st.integers(1, 40), st.sampled_from([0.0, 0.5, 3.0]),
       st.booleans())
def test_the_bisected_fit_finds_the_full_grids_maximum(seed: int, n_shards: int, n_queries: int, signal: float,
                                                       sized: bool) -> None:
    """The calibration fit bisects each row of its grid (the likelihood is concave in the prior's
    weight): it must find the maximum that evaluating every grid point finds, up to rounding
    (where a row is flat, e.g. no signal and a uniform prior, rounding alone orders its points),
    and report the value the full grid has at the point it chose."""
    from selectsearch.route.budget import _PairLikelihood

    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_queries, n_shards))
    pq = rng.integers(0, n_queries, size=3 * n_queries)
    # pairs lean to each query's top shards by ``signal``, the rest anywhere
    ps = np.where(rng.random(len(pq)) < signal / (1 + signal), scores[pq].argmax(axis=1),
                  rng.integers(0, n_shards, size=len(pq)))
    sizes = rng.integers(1, 100, size=n_shards).astype(float) if sized else np.ones(n_shards)
    prior_of_pair = (sizes / sizes.sum())[ps]
    z = scores - scores.mean(axis=1, keepdims=True)
    a_grid = np.concatenate([[0.0], np.geomspace(1e-2, 1e2, 31)])
    eps_grid = np.concatenate([[0.0], np.geomspace(1e-4, 0.9, 40)])
    full = _full_grid_log_likelihood(z, pq, ps, prior_of_pair, a_grid, eps_grid)
    i, j, value = _PairLikelihood(z, pq, ps, prior_of_pair).argmax(a_grid, eps_grid)
    assert value == full[i, j]
    assert value >= full.max() - 1e-12 * max(1.0, abs(full.max()))
