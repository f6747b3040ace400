"""The query cost benchmark end to end on a tiny index (``kind = "cost"`` definitions run by
``selectsearch bench``): every configuration measured, exhaustive sharded equals unsharded
quality, the report, plots and cost model written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selectsearch.cli import main

DEFINITION = """
name = "cost-tiny"
kind = "cost"
corpus = ["beir"]
queries = "beir"
split = "test"
k = 20
warmup = 2
concurrency = [1, 2]
latency_routes = ["tiny-k6:centroid@2"]

[[index]]
name = "tiny-k6"
partitioner = "kmeans"
shards = 6
options = {sample_size = 1000}
routes = ["all", "random@2", "centroid@1,2"]

[[index]]
name = "tiny-single"
role = "unsharded"
partitioner = "random"
shards = 1
routes = ["all"]
"""


@pytest.mark.slow
def test_cost_benchmark_runs_and_reports(serve_beir: Path, serve_index: Path, tmp_path: Path) -> None:
    definition = tmp_path / "cost.toml"
    definition.write_text(DEFINITION)
    indexes = tmp_path / "indexes"
    indexes.mkdir()
    (indexes / "tiny-k6").symlink_to(serve_index)  # reuse the session's index; the single one is built
    out = tmp_path / "out"
    assert main(["-q", "bench", str(definition), "--out", str(out), "--data", str(serve_beir.parent),
                 "--indexes", str(indexes), "--threads", "1"]) == 0
    result = json.loads((out / "cost-tiny.json").read_text())
    routes = [(r["index"], r["route"]) for r in result["results"]]
    assert routes == [("tiny-k6", "all"), ("tiny-k6", "random@2"), ("tiny-k6", "centroid@1"),
                      ("tiny-k6", "centroid@2"), ("tiny-single", "all")]
    by = {key: r for key, r in zip(routes, result["results"], strict=True)}
    sharded, single = by[("tiny-k6", "all")], by[("tiny-single", "all")]
    assert sharded["metrics"] == single["metrics"]  # collection-wide statistics: the same ranking
    for r in result["results"]:
        s = r["summary"]
        assert s["queries"] == result["queries"] >= 8 and s["total_cpu_ms"] >= s["thread_cpu_ms"] > 0
        lat = s["latency_interleaved"]
        assert lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"]
        assert set(s["cpu_ms"]) >= {"route", "search", "merge"}
    assert by[("tiny-k6", "centroid@1")]["summary"]["docs_scored"] < sharded["summary"]["docs_scored"]
    assert sharded["summary"]["fraction_scored"] == pytest.approx(1.0)
    # postings touched: exhaustive on either index touches the same, selective fewer
    assert single["summary"]["postings"] == sharded["summary"]["postings"] > by[("tiny-k6", "centroid@1")]["summary"][
        "postings"] > 0
    assert [x["clients"] for x in result["latency"]] == [1, 2]
    for x in result["latency"]:
        assert x["queries"] == x["clients"] * result["queries"] and x["qps"] > 0 and x["peak_rss_mb"] > 0
    model = result["model"]
    assert model["rows"][0]["config"].startswith("exhaustive")
    assert model["rows"][0]["cpu_ms_100000000"] > model["rows"][0]["cpu_ms_10000000"]
    report = (out / "cost-tiny.md").read_text()
    assert "## Acceptance" in report and "Cost model" in report and "cost-tiny.json" not in report
    for png in ("cpu", "quality-cpu", "latency", "model"):
        assert (out / f"cost-tiny-{png}.png").stat().st_size > 0
    # the report can be rebuilt from the JSON alone
    (out / "cost-tiny.md").unlink()
    assert main(["-q", "bench", str(definition), "--out", str(out), "--data", str(serve_beir.parent),
                 "--indexes", str(indexes), "--report-only"]) == 0
    assert (out / "cost-tiny.md").read_text() == report
