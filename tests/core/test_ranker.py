"""The shard ranker of ``hybrid@m``: learns where in the routers' rankings the evidence lies."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from selectsearch.errors import RouteSpecError
from selectsearch.index.sharded import ShardedIndex
from selectsearch.ranking import rank_by_scores
from selectsearch.route import make_router, parse_route
from selectsearch.route.budget import _same_fusion
from selectsearch.route.calibrate import calibrate_index
from selectsearch.route.hybrid import HybridRouter, standardise
from selectsearch.route.ranker import (
    RANKER_TRAINING,
    RankerConfig,
    ShardRanker,
    auc_difference_se,
    fit_ranker,
    shard_features,
)
from selectsearch.route.tuning import tune_hybrid, write_routing
from selectsearch.search import SelectiveSearcher
from selectsearch.selective_metrics import coverage_curve
from selectsearch.types import Query

from .test_gating import TableRouter, _click_log


def _epochs(n: int) -> RankerConfig:
    """The default ranker training, for ``n`` epochs (tests train briefly)."""
    return RankerConfig(training=replace(RANKER_TRAINING, epochs=n))


def _second_best(n: int, k: int = 8, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Queries whose relevant shard is router A's *second* best (router B is noise): no weighted
    sum of the routers' scores ranks it first, a reader of rank positions can."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, k))
    order = np.argsort(-a, axis=1)
    target = order[:, 1]
    b = rng.normal(size=(n, k))
    fam = rng.uniform(0.2, 0.9, size=n)
    return [standardise(a), standardise(b)], fam, np.arange(n), target


def _oracle(pair_query: np.ndarray, pair_shard: np.ndarray, k: int = 8) -> np.ndarray:
    """Scores that rank each query's relevant shard first."""
    out = np.zeros((int(pair_query.max()) + 1, k))
    out[pair_query, pair_shard] = 1.0
    return out


def _auc(scores: np.ndarray, pair_query: np.ndarray, pair_shard: np.ndarray, k: int = 8) -> float:
    return float(coverage_curve(rank_by_scores(scores), pair_query, pair_shard, np.ones(k)).auc)


def test_shard_features_read_scores_rank_positions_size_and_familiarity() -> None:
    z = np.array([[0.5, 2.0, -1.0], [1.0, 1.0, 1.0]])
    x = shard_features([z], np.array([0.3, 0.9]), np.log([1.0, 2.0, 4.0]))
    assert x.shape == (2, 3, 4)
    assert x[0, :, 0].tolist() == z[0].tolist()
    assert x[0, :, 1].tolist() == pytest.approx(np.log1p([1.0, 0.0, 2.0]).tolist())  # 0 for the best shard
    assert x[1, :, 1].tolist() == pytest.approx(np.log1p([0.0, 1.0, 2.0]).tolist())  # ties in stable order
    assert x[:, :, 2].tolist() == [np.log([1.0, 2.0, 4.0]).tolist()] * 2
    assert x[:, 0, 3].tolist() == [0.3, 0.9]
    assert shard_features([z], None, np.zeros(3)).shape == (2, 3, 3)  # no familiarity column


def test_the_ranker_learns_a_rank_position_rule_no_weighted_sum_can() -> None:
    parts, fam, pq, ps = _second_best(600)
    best = max(np.linspace(0, 1, 11), key=lambda w: _auc(w * parts[0] + (1 - w) * parts[1], pq, ps))
    fused = best * parts[0] + (1 - best) * parts[1]
    linear = _auc(fused, pq, ps)
    ranker, report = fit_ranker(["a", "b"], parts, fam, pq, ps, np.ones(8), [f"q{i}" for i in range(600)],
                                baseline=fused, config=_epochs(60))
    assert ranker is not None and report["kept"], report
    assert report["baseline_auc"] == pytest.approx(linear) and report["cv_auc"] > linear + 10
    assert 0 < report["se"] < 5
    # on new queries it searches router A's second shard first
    new, fam2, pq2, ps2 = _second_best(200, seed=1)
    top = rank_by_scores(ranker.scores(new, fam2))[:, 0]
    assert np.mean(top == ps2) > 0.8
    assert _auc(ranker.scores(new, fam2), pq2, ps2) > linear + 10


def test_a_ranker_that_does_not_beat_the_fusion_is_not_kept() -> None:
    parts, fam, pq, ps = _second_best(100)
    oracle = np.zeros((100, 8))
    oracle[pq, ps] = 1.0
    ranker, report = fit_ranker(["a", "b"], parts, fam, pq, ps, np.ones(8), [f"q{i}" for i in range(100)],
                                baseline=oracle, config=_epochs(2))
    assert ranker is None and not report["kept"] and "not above its standard error" in report["why"]
    few, report = fit_ranker(["a", "b"], [p[:3] for p in parts], fam[:3], np.arange(3), ps[:3], np.ones(8),
                             ["x", "x", "y"], baseline=oracle[:3], config=_epochs(1))
    assert few is None and "too few" in report["why"]


def test_the_auc_gain_has_a_bootstrap_standard_error() -> None:
    parts, _, pq, ps = _second_best(300)
    same = auc_difference_se(parts[0], parts[0], pq, ps, np.ones(8), np.arange(300))
    assert same == 0.0  # no gain can be told from no gain
    oracle = _oracle(pq, ps)
    se = auc_difference_se(oracle, parts[1], pq, ps, np.ones(8), np.arange(300))
    gain = _auc(oracle, pq, ps) - _auc(parts[1], pq, ps)
    assert 0 < se < gain / 10
    # rows of one group move together: duplicated rows in one group give the same spread as one row each
    doubled = auc_difference_se(np.vstack([oracle, oracle]), np.vstack([parts[1], parts[1]]),
                                np.concatenate([pq, pq + 300]), np.concatenate([ps, ps]), np.ones(8),
                                np.concatenate([np.arange(300), np.arange(300)]))
    assert doubled == pytest.approx(se, rel=0.2)


def test_the_ranker_round_trips_and_refuses_what_does_not_fit() -> None:
    parts, fam, pq, ps = _second_best(200)
    ranker, _ = fit_ranker(["a", "b"], parts, fam, pq, ps, np.ones(8), [f"q{i}" for i in range(200)],
                           baseline=-_oracle(pq, ps), config=_epochs(3))
    assert ranker is not None
    again = ShardRanker.from_dict(ranker.to_dict())
    assert np.array_equal(again.scores(parts, fam), ranker.scores(parts, fam)) and again.digest == ranker.digest
    with pytest.raises(RouteSpecError, match="familiarity"):
        ranker.scores(parts, None)
    with pytest.raises(RouteSpecError, match="fitted for 8 shards"):
        ranker.scores([p[:, :4] for p in parts], fam)
    with pytest.raises(RouteSpecError, match="reads 2 routers"):
        ranker.scores(parts[:1], fam)
    with pytest.raises(RouteSpecError, match="malformed"):
        ShardRanker.from_dict({"routers": ["a"]})
    broken = ranker.to_dict()
    broken["routers"] = ["a", "b", "c"]
    with pytest.raises(RouteSpecError, match="do not fit"):
        ShardRanker.from_dict(broken)
    with pytest.raises(RouteSpecError, match="fitted for routers"):
        HybridRouter([TableRouter("a", parts[0]), TableRouter("c", parts[1], fam)], [0.5, 0.5], ranker=ranker)
    with pytest.raises(RouteSpecError, match="familiarity"):
        HybridRouter([TableRouter("a", parts[0]), TableRouter("b", parts[1])], [0.5, 0.5], ranker=ranker)


def test_hybrid_ranks_with_its_ranker_and_says_so_in_the_route_details() -> None:
    parts, fam, pq, ps = _second_best(200)
    ranker, _ = fit_ranker(["a", "b"], parts, fam, pq, ps, np.ones(8), [f"q{i}" for i in range(200)],
                           baseline=-_oracle(pq, ps), config=_epochs(3))
    assert ranker is not None
    router = HybridRouter([TableRouter("a", parts[0][:5]), TableRouter("b", parts[1][:5], fam[:5])], [1.0, 0.0],
                          ranker=ranker)
    assert router.needed() == [True, True]  # weight 0 or not, the ranker reads every router
    queries = [Query(f"q{i}", "x") for i in range(5)]
    assert np.allclose(router.scores(queries), ranker.scores([p[:5] for p in parts], fam[:5]))
    details = router.route_details()
    assert details is not None and details[0] == {"ranker": True, "familiarity": round(float(fam[0]), 4)}


@pytest.fixture()
def own_index(tiny_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path / "cache"))
    return Path(shutil.copytree(tiny_index, tmp_path / "index"))


def test_tune_route_reports_the_ranker_and_search_applies_a_stored_one(own_index: Path, tmp_path: Path) -> None:
    index = ShardedIndex.open(own_index)
    log = _click_log(index, tmp_path)
    skipped = tune_hybrid(index, ".", str(log), ["centroid", "cori", "knn"], step=0.25, n_topics=4, ranker=False)
    assert "ranker" not in skipped and skipped["ranker_fit"]["kept"] is False
    tuned = tune_hybrid(index, ".", str(log), ["centroid", "cori", "knn"], step=0.25, n_topics=4)
    fit = tuned["ranker_fit"]
    assert fit["kept"] == ("ranker" in tuned) and ("cv_auc" in fit or "why" in fit)
    # whether or not this tiny log earned one, a stored ranker is what hybrid@m ranks with
    n_shards = index.n_shards
    ranker = ShardRanker(["centroid", "cori", "knn"], np.zeros(n_shards),
                         [(np.eye(8)[:, :1] * -1.0, np.zeros(1))], uses_familiarity=True,
                         fit={"splits": ["random", "topics"]})
    tuned["ranker"] = ranker.to_dict()
    write_routing(own_index, tuned)
    tuned["calibration"] = calibrate_index(index)
    assert tuned["calibration"]["hybrid"]["ranker"] == ranker.digest
    write_routing(own_index, tuned, overwrite=True)
    router = make_router(parse_route("hybrid@1"), index)
    assert isinstance(router, HybridRouter) and router.ranker == ranker
    off = make_router(parse_route("hybrid@1"), index, ranker="off")
    assert isinstance(off, HybridRouter) and off.ranker is None
    # the calibration of the ranker's scores is not given to the fusion without it
    assert _same_fusion(router, tuned["calibration"]["hybrid"])
    assert not _same_fusion(off, tuned["calibration"]["hybrid"])
    with pytest.raises(RouteSpecError, match="ranker must be on or off"):
        make_router(parse_route("hybrid@1"), index, ranker="maybe")
    # a ranker fitted for another number of shards is refused when the route is built, not mid-search
    wrong = dict(tuned, ranker=ShardRanker(["centroid", "cori", "knn"], np.zeros(n_shards + 1), ranker.layers,
                                           uses_familiarity=True).to_dict())
    write_routing(own_index, wrong, overwrite=True)
    with pytest.raises(RouteSpecError, match=f"fitted for {n_shards + 1} shards, not this index's {n_shards}"):
        make_router(parse_route("hybrid@1"), index)
    write_routing(own_index, tuned, overwrite=True)
    queries = [Query("a", "alpha beta"), Query("b", "zzz unknown words")]
    result = SelectiveSearcher(index, router, 1).batch_search(queries, k=3)
    # this ranker scores a shard minus its centroid z-score: the centroid router's last shard first
    expected = rank_by_scores(-standardise(router.routers[0].scores(queries)))[:, 0]
    assert [result[q.query_id].trace.shards for q in queries] == [[int(s)] for s in expected]
    assert result["a"].trace.extra["route"]["ranker"] is True
