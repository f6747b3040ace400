"""The benchmark package's parts: measurement, the definition schema, the cost configurations,
the cost model and the report writer."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from selectsearch.bench.definition import load_definition
from selectsearch.bench.measure import Stopwatch, median, percentiles, time_each, timed
from selectsearch.errors import SelectSearchError

HEAVY = ["torch", "transformers", "faiss", "jnius", "sklearn", "pyserini", "ir_measures", "scipy", "matplotlib"]


def test_importing_the_package_loads_no_heavy_module() -> None:
    code = ("import sys, selectsearch.bench, selectsearch.bench.measure, selectsearch.bench.harness, "
            "selectsearch.bench.script, selectsearch.bench.report, selectsearch.bench.report.curves\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- measure
def test_percentiles_are_numpy_percentiles_in_a_fixed_order() -> None:
    values = [5.0, 1.0, 3.0, 9.0, 7.0, 2.0]
    p = percentiles(values)
    assert list(p) == ["p50_ms", "p95_ms", "p99_ms", "mean_ms"]
    for q in (50, 95, 99):
        assert p[f"p{q}_ms"] == float(np.percentile(values, q))
    assert p["mean_ms"] == float(np.mean(values))
    assert list(percentiles(np.array(values), (50, 99), mean=False)) == ["p50_ms", "p99_ms"]
    assert median([1.0, 4.0, 2.0, 3.0]) == 2.5


def test_timers_measure_wall_and_cpu() -> None:
    with Stopwatch("process") as sw:
        sum(i * i for i in range(20_000))
    assert sw.wall_s > 0 and sw.cpu_s >= 0 and sw.wall_ms == sw.wall_s * 1000.0
    result, ms = timed(sorted, [3, 1, 2])
    assert result == [1, 2, 3] and ms >= 0
    assert len(time_each(lambda x: x, range(4))) == 4


# ---------------------------------------------------------------------------- definition schema
QUALITY = '''name = "b"
corpus = ["beir"]
queries = "beir"
measures = ["nDCG@10"]
k = 10
[[index]]
name = "i"
shards = 2
routes = ["all", "redde@1:4"]
'''


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "def.toml"
    path.write_text(text)
    return path


def test_kind_quality_is_the_default_and_may_be_written(tmp_path: Path) -> None:
    assert "kind" not in load_definition(_write(tmp_path, QUALITY))
    assert load_definition(_write(tmp_path, 'kind = "quality"\n' + QUALITY))["kind"] == "quality"


def test_an_unknown_kind_names_the_kinds(tmp_path: Path) -> None:
    with pytest.raises(SelectSearchError, match="quality, cost, fewshot"):
        load_definition(_write(tmp_path, 'kind = "speed"\n' + QUALITY))


def test_a_definition_of_another_kind_is_refused_by_a_runner(tmp_path: Path) -> None:
    with pytest.raises(SelectSearchError, match="'cost' benchmark definition"):
        load_definition(_write(tmp_path, 'kind = "cost"\n' + QUALITY), kind="quality")


def test_cost_keys_only_in_cost_definitions(tmp_path: Path) -> None:
    with pytest.raises(SelectSearchError, match="unknown key warmup"):
        load_definition(_write(tmp_path, "warmup = 3\n" + QUALITY))
    assert load_definition(_write(tmp_path, 'kind = "cost"\nwarmup = 3\n' + QUALITY))["warmup"] == 3


def test_fewshot_definitions_refuse_unknown_and_missing_keys(tmp_path: Path) -> None:
    good = (REPO_EVAL / "dynamar" / "fewshot.toml").read_text()
    assert load_definition(_write(tmp_path, good), kind="fewshot")["k"] == 16
    with pytest.raises(SelectSearchError, match="unknown key stpes"):
        load_definition(_write(tmp_path, good + "stpes = 3\n"), kind="fewshot")
    with pytest.raises(SelectSearchError, match="missing key 'steps'"):
        load_definition(_write(tmp_path, good.replace("steps = 40", "")), kind="fewshot")


def test_bench_cli_refuses_a_fewshot_definition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from selectsearch.cli import main

    definition = _write(tmp_path, 'kind = "fewshot"\n' + (REPO_EVAL / "dynamar" / "fewshot.toml").read_text())
    (tmp_path / "data").mkdir()
    assert main(["-q", "bench", str(definition), "--out", str(tmp_path / "o"), "--data", str(tmp_path / "data")]) == 2
    assert "eval/dynamar/bench.py" in capsys.readouterr().err


REPO_EVAL = Path(__file__).resolve().parents[2] / "eval"


# ---------------------------------------------------------------------------- cost configurations
COST = '''name = "c"
kind = "cost"
corpus = ["beir"]
queries = "beir"
latency_routes = ["i:cori@1"]
[[index]]
name = "i"
shards = 4
routes = ["all", "cori@1,2,8", "redde@2"]
router_options = {cori_belief = 0.3, depth = 7}
[[index]]
name = "one"
role = "unsharded"
shards = 1
routes = ["all"]
'''


def test_cost_configurations_expand_like_evaluate_and_keep_router_options(
        caplog: pytest.LogCaptureFixture) -> None:
    import tomllib

    from selectsearch.bench.cost import cost_configurations

    with caplog.at_level(logging.WARNING):
        configs, setups = cost_configurations(tomllib.loads(COST))
    assert configs == [("i", "sharded", "all", None), ("i", "sharded", "cori@1", None),
                       ("i", "sharded", "cori@2", None), ("i", "sharded", "redde@2", None),
                       ("one", "unsharded", "all", None)]
    assert "left out" in caplog.text  # cori@8 on 4 shards: dropped with a warning, not silently
    setup = setups[("i", "cori@1")]
    assert dict(setup.options) == {"cori_belief": 0.3, "depth": 7} and set(setup.run) == {"all", "cori", "redde"}
    assert not setups[("one", "all")].options


def test_cost_configurations_refuse_what_no_route_takes() -> None:
    import tomllib

    from selectsearch.bench.cost import cost_configurations

    with pytest.raises(SelectSearchError, match="taily_v"):
        cost_configurations(tomllib.loads(COST.replace("depth = 7", "taily_v = 2")))
    with pytest.raises(SelectSearchError, match="4 shards"):
        cost_configurations(tomllib.loads(COST.replace('"redde@2"', '"redde@6"')))


def test_router_options_reach_the_measured_router(tmp_path: Path) -> None:
    """The options a cost definition gives reach each configuration's router (they were dropped before)."""
    from selectsearch.bench.harness import RouterSetup, _apply_router_options
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index
    from selectsearch.search import SelectiveSearcher

    from .conftest import write_collection

    beir = write_collection(tmp_path / "beir", docs_per_topic=4, queries_per_topic=2)
    index = build_index(open_corpus(beir), tmp_path / "idx", BuildConfig(n_shards=2, partitioner="random", threads=1))
    base = SelectiveSearcher.open(index)
    searcher = _apply_router_options(base.with_route("cori@1"), "cori@1",
                                     RouterSetup({"cori_belief": 0.25, "depth": 7}, {"cori", "redde"}))
    assert searcher.router.belief == 0.25
    untouched = _apply_router_options(base.with_route("cori@1"), "cori@1", RouterSetup({}, {"cori"}))
    assert untouched.router.belief == 0.4


# ---------------------------------------------------------------------------- cost model and reports
def test_crossover_of_two_linear_models() -> None:
    from selectsearch.bench.costmodel import crossover, describe_size

    model = {"sizes": [10, 100], "n_docs_measured": 5, "rows": [
        {"config": "exhaustive, 2 shards", "cpu_ms_10": 10.0, "cpu_ms_100": 100.0},
        {"config": "cori@1", "cpu_ms_10": 6.0, "cpu_ms_100": 51.0},
        {"config": "redde@1", "cpu_ms_10": 20.0, "cpu_ms_100": 200.0}]}
    assert crossover(model) == [("cori@1", 5.0), ("redde@1", float("inf"))]
    assert describe_size(5.0, 5) == "already at the measured size"
    assert describe_size(float("inf"), 5).startswith("never")


def test_fit_cost_model_recovers_a_linear_cost() -> None:
    from selectsearch.bench.costmodel import fit_cost_model

    postings = [100.0, 200.0, 400.0]
    summary = {"jvm_other_cpu_ms": 0.0, "thread_cpu_ms": 1.0, "fraction_scored": 1.0, "total_cpu_ms": 5.0,
               "cpu_ms": {"route": 0.0, "search": 4.0, "merge": 1.0}}
    results = [{"kind": "sharded", "router": "all", "route": "all", "rerank": None, "n_shards": 2,
                "postings": postings, "search_merge_cpu": [1.0 + 0.01 * p for p in postings], "summary": summary}]
    model = fit_cost_model(results, 1000, sizes=(10_000, 100_000))
    assert model["a_ms"] == pytest.approx(1.0) and model["c_p_ns_per_posting"] == pytest.approx(1e4)
    assert model["rows"][0]["config"] == "exhaustive, 2 shards"


def test_search_cpu_model_fits_shards_and_collection_size_and_drops_constant_terms() -> None:
    from selectsearch.bench.costmodel import fit_search_cpu

    rng = np.random.default_rng(1)

    def measured(n_docs: int, n: int = 30) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
        p, s = rng.uniform(1e3, 1e5, n), rng.integers(1, 9, n).astype(float)
        return p, s, n_docs, 0.2 + 2e-5 * p + 0.04 * s + 0.15 * np.log(n_docs)

    model = fit_search_cpu([measured(10_000), measured(100_000)])
    assert model.fitted == ("fixed", "per_posting", "per_shard", "per_log_docs") and model.points == 60
    assert [model.coef[t] for t in model.fitted] == pytest.approx([0.2, 2e-5, 0.04, 0.15])
    assert model.predict(1e4, 3, 1e6) == pytest.approx(0.2 + 0.2 + 0.12 + 0.15 * np.log(1e6))
    one_size = fit_search_cpu([measured(10_000)])  # ln N is constant: folded into the fixed cost
    assert one_size.fitted == ("fixed", "per_posting", "per_shard") and one_size.coef["per_log_docs"] == 0.0
    assert one_size.coef["fixed"] == pytest.approx(0.2 + 0.15 * np.log(10_000))


def test_report_writer_round_trips(tmp_path: Path) -> None:
    from selectsearch.bench.report import format_table, pyplot, save_figure, write_json, write_markdown

    data = {"a": [1, 2], "b": {"c": 0.5}}
    assert json.loads(write_json(tmp_path / "x" / "r.json", data, end="\n").read_text()) == data
    assert write_markdown(tmp_path / "r.md", ["# t", "", format_table(["a"], [[1]])]).read_text() == \
        "# t\n\n| a |\n|---|\n| 1 |\n"
    fig, ax = pyplot().subplots()
    ax.plot([0, 1], [0, 1])
    assert save_figure(fig, tmp_path / "f.png").stat().st_size > 0


def test_curve_helpers() -> None:
    from selectsearch.bench.report.curves import crossing, first_reaching, interpolate_at

    pts = [(0.3, 0.7), (0.1, 0.5), (0.6, 0.9)]
    assert interpolate_at(pts, 0.2) == pytest.approx(0.6)
    assert first_reaching(pts, 0.6) == 0.3 and first_reaching(pts, 0.95) is None
    assert crossing(pts, 0.6) == pytest.approx(0.2) and crossing(pts, 0.4) == 0.1


def test_script_helpers() -> None:
    from selectsearch.bench.script import REPO, command_line, judged_queries, seeded_subset

    ids = [f"q{i}" for i in range(10)]
    sub = seeded_subset(ids, 4, seed=3)
    assert len(sub) == 4 and sub == sorted(sub, key=ids.index) and seeded_subset(ids, 0) == ids
    assert command_line(str(REPO / "eval/x.py"), ["--a", "b c"], prefix="py ") == "py eval/x.py --a 'b c'"
    assert command_line(str(REPO / "eval/x.py"), ["--a", "b c"], quote=False) == "eval/x.py --a b c"
    assert judged_queries({"a": "x", "b": "y"}, {"a": {"d": 0}}) == {"a": "x"}
    assert judged_queries({"a": "x", "b": "y"}, {"a": {"d": 0}}, relevant=True) == {}
