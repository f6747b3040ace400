"""Per-query gating of ``hybrid@m``: familiar queries lean on learned routers, unfamiliar ones on CORI."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selectsearch.errors import RouteSpecError
from selectsearch.index.sharded import ShardedIndex
from selectsearch.route import make_router, parse_route, rank_by_scores
from selectsearch.route.base import Router
from selectsearch.route.budget import _same_fusion
from selectsearch.route.calibrate import calibrate_index
from selectsearch.route.gating import Gating, fit_gating
from selectsearch.route.hybrid import HybridRouter, standardise
from selectsearch.route.knn import familiarity, nearest_logged
from selectsearch.route.tuning import read_routing, tune_hybrid, write_routing
from selectsearch.search import SelectiveSearcher
from selectsearch.selective_metrics import coverage_curve
from selectsearch.types import Query

from .conftest import TOPICS


class TableRouter(Router):
    """Fixed score table (row i for query i); ``familiarity`` when given, as ``knn`` reports it."""

    def __init__(self, name: str, table: np.ndarray, fam: np.ndarray | None = None) -> None:
        self.name = name
        self.table = np.asarray(table, dtype=np.float64)
        self._fam = fam
        if fam is not None:
            self.familiarity = lambda: self._fam  # type: ignore[method-assign]

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        return self.table[: len(queries)]

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        return rank_by_scores(self.scores(queries))


def _two_regimes(n: int = 40, k: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Queries whose relevant shard is found by 'knn' when familiar and by 'cori' when not."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, k, size=n)
    fam = np.where(np.arange(n) < n // 2, rng.uniform(0.8, 0.95, n), rng.uniform(0.2, 0.4, n))
    good = np.zeros((n, k))
    good[np.arange(n), target] = 3.0
    noise = rng.normal(size=(n, k))
    familiar_rows = fam > 0.6
    knn = np.where(familiar_rows[:, None], good + 0.1 * noise, noise)
    cori = np.where(familiar_rows[:, None], rng.normal(size=(n, k)), good + 0.1 * noise)
    return cori, knn, fam, target


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=1, max_size=20),
       st.floats(-0.5, 0.5), st.floats(0.01, 1.0))
def test_gate_is_monotone_and_mixes_the_two_weight_vectors(fam: list[float], centre: float, width: float) -> None:
    gate = Gating(["cori", "knn"], [0.2, 0.8], [0.9, 0.1], centre, width)
    f = np.sort(np.asarray(fam))
    g = gate.gate(f)
    assert np.all((g >= 0) & (g <= 1)) and np.all(np.diff(g) >= -1e-12)
    w = gate.weights(f)
    assert np.allclose(w.sum(axis=1), 1.0)  # both vectors sum to 1, so every mix does
    assert np.allclose(w, g[:, None] * [0.2, 0.8] + (1 - g[:, None]) * [0.9, 0.1])


def test_gating_round_trips_and_refuses_bad_parameters() -> None:
    gate = Gating(["cori", "knn"], [0.2, 0.8], [0.9, 0.1], 0.5, 0.05)
    assert Gating.from_dict({**gate.to_dict(), "fit": {"auc": 90.0}}) == gate
    with pytest.raises(RouteSpecError, match="width"):
        Gating(["cori", "knn"], [0.2, 0.8], [0.9, 0.1], 0.5, 0.0)
    with pytest.raises(RouteSpecError, match="one familiar"):
        Gating(["cori", "knn"], [1.0], [0.9, 0.1], 0.5, 0.1)
    with pytest.raises(RouteSpecError, match="malformed"):
        Gating.from_dict({"routers": ["cori"]})


def test_fit_gating_finds_the_familiarity_threshold_when_regimes_differ() -> None:
    cori, knn, fam, target = _two_regimes()
    parts = [standardise(cori), standardise(knn)]
    pq, ps = np.arange(len(target)), target
    sizes = np.ones(cori.shape[1])
    gate, report = fit_gating(["cori", "knn"], [0.0, 1.0], [1.0, 0.0], parts, fam, pq, ps, sizes)
    assert abs(gate.centre) < 1.0, "a real threshold, not a constant gate"
    assert gate.gate(fam[:20]).min() > 0.5 > gate.gate(fam[20:]).min()
    assert report["auc"] > report["auc_familiar"] + 5 and report["auc"] > report["auc_unfamiliar"] + 5
    # the gated fusion finds every relevant shard first
    assert np.array_equal(rank_by_scores(gate.fuse(parts, fam))[:, 0], target)


def test_fit_gating_keeps_one_weight_vector_when_gating_cannot_help() -> None:
    cori, knn, fam, target = _two_regimes(seed=1)
    parts = [standardise(cori), standardise(knn)]
    gate, report = fit_gating(["cori", "knn"], [0.5, 0.5], [0.5, 0.5], parts, fam, np.arange(len(target)), target,
                              np.ones(cori.shape[1]))
    assert gate.centre < -1e8  # the first candidate: always familiar (ties keep it)
    assert report["auc"] == pytest.approx(report["auc_familiar"])


def test_hybrid_router_gates_per_query_and_reports_the_weights() -> None:
    cori, knn, fam, target = _two_regimes()
    queries = [Query(str(i), "q") for i in range(len(target))]
    gate = Gating(["cori", "knn"], [0.0, 1.0], [1.0, 0.0], 0.6, 0.02)
    router = HybridRouter([TableRouter("cori", cori), TableRouter("knn", knn, fam)], [0.5, 0.5], gating=gate)
    ranking = router.rank(queries)
    assert np.array_equal(ranking[:, 0], target)
    fixed = HybridRouter([TableRouter("cori", cori), TableRouter("knn", knn, fam)], [0.5, 0.5])
    curve = coverage_curve(fixed.rank(queries), np.arange(len(target)), target, np.ones(6))
    assert curve.coverage[0] < 1.0  # one weight vector cannot do what the gate does
    details = router.route_details()
    assert details is not None and len(details) == len(queries)
    assert details[0]["weights"]["knn"] > 0.99 and details[-1]["weights"]["cori"] > 0.99
    assert details[0]["gated"] and details[0]["familiarity"] == pytest.approx(fam[0], abs=1e-4)
    assert fixed.route_details()[0] == {"weights": {"cori": 0.5, "knn": 0.5}}  # type: ignore[index]


class CountingRouter(TableRouter):
    """A :class:`TableRouter` that counts its ``scores`` calls."""

    calls = 0

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        type(self).calls += 1
        return super().scores(queries)


@pytest.mark.parametrize("centre", [-1e9, 1e9])
def test_a_constant_gate_does_not_run_the_routers_it_weighs_zero(centre: float) -> None:
    """The fitted constant gates use one weight vector for every query: the routers weighted only
    in the other are not run (routing cost), and the fused scores are the same to the last bit."""
    cori, knn, fam, _ = _two_regimes()
    queries = [Query(str(i), "q") for i in range(len(fam))]
    familiar, unfamiliar = [0.0, 0.3, 0.7], [0.6, 0.0, 0.4]
    gate = Gating(["cori", "centroid", "knn"], familiar, unfamiliar, centre, 1.0)
    assert gate.constant == (1.0 if centre < 0 else 0.0)
    assert Gating(["cori", "knn"], [0.0, 1.0], [1.0, 0.0], 0.6, 0.02).constant is None
    unused = "cori" if centre < 0 else "centroid"
    CountingRouter.calls = 0
    routers = [CountingRouter("cori", cori) if unused == "cori" else TableRouter("cori", cori),
               CountingRouter("centroid", -cori) if unused == "centroid" else TableRouter("centroid", -cori),
               TableRouter("knn", knn, fam)]
    router = HybridRouter(routers, [0.3, 0.3, 0.4], gating=gate)
    assert router.needed() == [unused != "cori", unused != "centroid", True]
    scores = router.scores(queries)
    assert CountingRouter.calls == 0
    parts = [standardise(cori), standardise(-cori), standardise(knn)]
    assert np.array_equal(scores, gate.fuse(parts, fam))


def test_hybrid_router_refuses_a_gate_it_cannot_apply() -> None:
    cori, knn, fam, _ = _two_regimes()
    gate = Gating(["cori", "knn"], [0.0, 1.0], [1.0, 0.0], 0.6, 0.02)
    with pytest.raises(RouteSpecError, match="fitted for routers"):
        HybridRouter([TableRouter("knn", knn, fam), TableRouter("cori", cori)], [0.5, 0.5], gating=gate)
    with pytest.raises(RouteSpecError, match="familiarity"):
        HybridRouter([TableRouter("cori", cori), TableRouter("knn", knn)], [0.5, 0.5], gating=gate)


def test_a_calibration_fitted_on_gated_scores_is_not_given_to_the_ungated_fusion() -> None:
    cori, knn, fam, _ = _two_regimes()
    gate = Gating(["cori", "knn"], [0.0, 1.0], [1.0, 0.0], 0.6, 0.02)
    subs = [TableRouter("cori", cori), TableRouter("knn", knn, fam)]
    stored = {"routers": ["cori", "knn"], "weights": [0.5, 0.5], "gating": gate.to_dict()}
    assert _same_fusion(HybridRouter(subs, [0.5, 0.5], gating=gate), stored)
    assert not _same_fusion(HybridRouter(subs, [0.5, 0.5]), stored)
    assert _same_fusion(HybridRouter(subs, [0.5, 0.5]), {"routers": ["cori", "knn"], "weights": [0.5, 0.5]})


def test_familiarity_is_high_for_a_logged_paraphrase_and_low_for_a_stranger() -> None:
    kb = np.eye(8, dtype=np.float32)[:6] + 0.05
    kb /= np.linalg.norm(kb, axis=1, keepdims=True)
    queries = np.stack([kb[0], np.eye(8)[7]])  # a logged query, and one orthogonal to every logged one
    _, sims = nearest_logged(queries, kb, 6)
    f = familiarity(sims, n=1)
    assert f[0] == pytest.approx(1.0, abs=1e-5) and f[1] < 0.2
    assert familiarity(sims, n=5)[0] < f[0]  # the mean over more neighbours is lower


@pytest.fixture()
def own_index(tiny_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path / "cache"))
    return Path(shutil.copytree(tiny_index, tmp_path / "index"))


def _click_log(index: ShardedIndex, tmp_path: Path) -> Path:
    """40 logged queries (10 per topic), each clicking three documents of its topic."""
    lines = []
    for topic, words in TOPICS.items():
        docs = sorted(d for d in index.shard_of_doc if d.startswith(topic))
        for i in range(10):
            lines += [f"{words[i]} {words[(i + 3) % 10]}\t{docs[(i + j) % len(docs)]}\t1" for j in range(3)]
    log = tmp_path / "clicks.tsv"
    log.write_text("\n".join(lines) + "\n")
    return log


def test_tune_route_stores_a_gating_that_search_applies_and_traces(own_index: Path, tmp_path: Path) -> None:
    index = ShardedIndex.open(own_index)
    log = _click_log(index, tmp_path)
    tuned = tune_hybrid(index, ".", str(log), ["centroid", "cori", "knn"], step=0.25, n_topics=4)
    gate = Gating.from_dict(tuned["gating"])
    assert gate.routers == ["centroid", "cori", "knn"]
    assert gate.familiar == tuned["fits"]["random"]["weights"] and gate.unfamiliar == tuned["fits"]["topics"]["weights"]
    assert tuned["calibration"]["hybrid"]["gating"] == gate.to_dict()
    # the gated fusion meets familiar and unfamiliar queries: calibrated on both splits stacked; the
    # routers on the split the weights were chosen on
    n_val = {kind: tuned["splits"][kind]["n_val_queries"] for kind in ("random", "topics")}
    assert tuned["calibration"]["hybrid"]["n_queries"] == n_val["random"] + n_val["topics"]
    assert tuned["calibration"]["cori"]["n_queries"] == n_val[tuned["validation"]]
    assert {"hybrid_gated"} <= set(tuned["auc"]["random"]) and {"hybrid_gated"} <= set(tuned["auc"]["topics"])
    write_routing(own_index, tuned)
    assert read_routing(own_index)["gating"]["centre"] == gate.centre  # type: ignore[index]
    router = make_router(parse_route("hybrid@1"), index)
    assert isinstance(router, HybridRouter) and router.gating == gate
    # recalibrating the tuned index refits the same gated calibration on the same split
    again = calibrate_index(index)["hybrid"]
    assert again["gating"] == gate.to_dict()
    assert again["inv_temperature"] == pytest.approx(tuned["calibration"]["hybrid"]["inv_temperature"])
    off = make_router(parse_route("hybrid@1"), index, gating="off")
    assert isinstance(off, HybridRouter) and off.gating is None
    with pytest.raises(RouteSpecError, match="gating must be on or off"):
        make_router(parse_route("hybrid@1"), index, gating="maybe")
    searcher = SelectiveSearcher(index, router, 1)
    result = searcher.batch_search([Query("a", "alpha beta"), Query("b", "zzz unknown words")], k=3)
    for qid in ("a", "b"):
        detail = result[qid].trace.extra["route"]
        assert set(detail["weights"]) == {"centroid", "cori", "knn"} and detail["gated"]
        expected = gate.weights(np.array([detail["familiarity"]]))[0]
        assert list(detail["weights"].values()) == pytest.approx(expected.tolist(), abs=1e-3)


def test_route_auto_is_cori_with_a_budget_untuned_and_the_tuned_fusion_once_tuned(own_index: Path,
                                                                                  tmp_path: Path) -> None:
    index = ShardedIndex.open(own_index)
    queries = [Query("a", "rocket orbit"), Query("b", "flour sugar butter")]
    untuned = make_router("auto", index)
    result = SelectiveSearcher(index, untuned, None).batch_search(queries, k=3)
    assert result["a"].trace.route == "auto"
    assert result["a"].trace.extra["route"] == {"resolved": "cori@auto:0.9/2"}
    assert 1 <= len(result["a"].trace.shards) <= 2  # half of the 4 shards at most
    with pytest.raises(RouteSpecError, match="takes no budget"):
        parse_route("auto@2")
    write_routing(own_index, tune_hybrid(index, ".", str(_click_log(index, tmp_path)), ["centroid", "cori", "knn"],
                                         step=0.25, n_topics=4))
    tuned = make_router("auto", index, target=0.95, max_shards=3)
    result = SelectiveSearcher(index, tuned, None).batch_search(queries, k=3)
    detail = result["b"].trace.extra["route"]
    assert detail["resolved"] == "hybrid@auto:0.95/3" and set(detail["weights"]) == {"centroid", "cori", "knn"}
    # the same shards as hybrid@auto:0.95/3 spelled out
    explicit = make_router("hybrid@auto:0.95/3", index)
    assert [sorted(s) for s in explicit.select(queries, None)] == [result[q.query_id].trace.shards for q in queries]


def test_tuning_on_folds_stacks_every_draw_and_recalibrates_the_same(own_index: Path, tmp_path: Path) -> None:
    """``folds`` > 1: each split is that many draws stacked (every logged query validated once by
    the random folds); the gate and calibration are fitted on them, and recalibrating the tuned
    index draws the same folds again."""
    index = ShardedIndex.open(own_index)
    log = _click_log(index, tmp_path)
    tuned = tune_hybrid(index, ".", str(log), ["centroid", "cori", "knn"], step=0.25, n_topics=4, folds=3)
    assert tuned["folds"] == 3
    random, topics = tuned["splits"]["random"], tuned["splits"]["topics"]
    assert random["folds"] == topics["folds"] == 3 and len(random["fold_val_queries"]) == 3
    logged = len({line.split("\t")[0] for line in log.read_text().splitlines() if line})
    assert random["n_val_queries"] == logged  # the random folds hold out every logged query once
    assert topics["n_val_queries"] == sum(topics["fold_val_queries"])
    gated = tuned["calibration"]["hybrid"]
    assert gated["n_queries"] == random["n_val_queries"] + topics["n_val_queries"]
    write_routing(own_index, tuned)
    again = calibrate_index(index)["hybrid"]
    assert again["n_queries"] == gated["n_queries"]
    assert again["inv_temperature"] == pytest.approx(gated["inv_temperature"])
