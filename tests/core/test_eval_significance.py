"""`eval` per query and against a baseline: per-query values average to the table, significance,
bootstrap intervals, CPU and postings cost, the run's setup in every row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selectsearch.cli import main


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


@pytest.fixture(scope="module")
def evaluated(tiny_index: Path, tiny_beir: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[list[dict], list[list[str]], str]:
    out = tmp_path_factory.mktemp("eval")
    results, per_query = out / "r.json", out / "pq.tsv"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["-q", "eval", str(tiny_index), "--data", str(tiny_beir), "--route", "all", "--route",
                     "random@1:2", "--route", "centroid@1", "--measures", "nDCG@10", "R@100", "--k", "100",
                     "--per-query", str(per_query), "--postings", "--json", str(results)]) == 0
    lines = [line.split("\t") for line in per_query.read_text().splitlines()]
    return json.loads(results.read_text()), lines, buffer.getvalue()


def test_per_query_rows_average_to_the_table(evaluated: tuple[list[dict], list[list[str]], str]) -> None:
    rows, lines, _ = evaluated
    assert lines[0] == ["route", "query_id", "measure", "value"]
    by: dict[tuple[str, str], list[float]] = {}
    for route, _, measure, value in lines[1:]:
        by.setdefault((route, measure), []).append(float(value))
    assert {r for r, _ in by} == {"all", "random@1", "random@2", "centroid@1"}
    for row in rows:
        for measure in ("nDCG@10", "R@100"):
            values = by[(row["route"], measure)]
            assert len(values) == 4  # one line per judged query
            assert np.mean(values) == pytest.approx(row["metrics"][measure], abs=1e-12)
            low, high = row["ci"][measure]
            assert low - 1e-12 <= row["metrics"][measure] <= high + 1e-12
        assert "per_query" not in row  # the values went to the file, not into the JSON


def test_significance_against_exhaustive(evaluated: tuple[list[dict], list[list[str]], str]) -> None:
    from selectsearch.significance import compare_routes

    rows, lines, table = evaluated
    assert "significance" not in rows[0]  # the baseline itself
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    for route, qid, measure, value in lines[1:]:
        per_query.setdefault(route, {}).setdefault(measure, {})[qid] = float(value)
    expected = compare_routes(per_query, "all", ["nDCG@10", "R@100"])
    for row in rows[1:]:
        sig = row["significance"]
        assert sig["baseline"] == "all" and sig["family"] == 3 and sig["test"] == "t"
        for measure in ("nDCG@10", "R@100"):
            got, want = sig["measures"][measure], expected[row["route"]]["measures"][measure]
            for key in ("wins", "ties", "losses", "verdict", "not_worse"):
                assert got[key] == want[key]
            assert got["t"]["p_holm"] == pytest.approx(want["t"]["p_holm"])
            assert got["wins"] + got["ties"] + got["losses"] == 4
            assert got["ratio"] == pytest.approx(row["metrics"][measure] / rows[0]["metrics"][measure])
    header = table.splitlines()[0]
    assert "vs all nDCG@10" in header and "W/T/L" in header
    assert table.splitlines()[1].split()[-2:] == ["-", "-"]


def test_cost_and_setup(evaluated: tuple[list[dict], list[list[str]], str], tiny_index: Path) -> None:
    rows, _, _ = evaluated
    by = {r["route"]: r for r in rows}
    for row in rows:
        assert row["cost"]["cpu_ms"] == pytest.approx(row["cost"]["route_cpu_ms"] + row["cost"]["search_cpu_ms"])
        assert row["setup"] == {"collection": "beir", "index": tiny_index.name, "n_shards": 4,
                                "partitioner": "kmeans-lexical", "n_docs": 120, "queries": 4, "k": 100,
                                "retriever": "bm25", "split": "test", "queries_source": "beir",
                                "qrels_source": "beir"}
    assert by["all"]["cost"]["fraction_postings"] == pytest.approx(1.0)
    cost = {r: by[r]["cost"]["postings"] for r in by}
    assert cost["random@1"] <= cost["random@2"] <= cost["all"] and 0 < cost["centroid@1"] <= cost["all"]


def test_baseline_choices(tiny_index: Path, tiny_beir: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    base = ["-q", "eval", str(tiny_index), "--data", str(tiny_beir), "--measures", "nDCG@10", "--k", "10"]
    out = tmp_path / "r.json"
    assert main([*base, "--route", "centroid@1:2", "--baseline", "CENTROID@2", "--significance", "wilcoxon",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert "significance" not in rows[1] and rows[0]["significance"]["test"] == "wilcoxon"
    assert "vs centroid@2 nDCG@10" in capsys.readouterr().out
    assert main([*base, "--route", "all", "--route", "centroid@1", "--baseline", "none", "--json", str(out)]) == 0
    assert all("significance" not in r for r in json.loads(out.read_text()))
    assert "W/T/L" not in capsys.readouterr().out
    assert main([*base, "--route", "centroid@1", "--baseline", "all"]) == 2
    assert "baseline 'all' is not among the routes evaluated (centroid@1)" in _err(capsys)
    assert main([*base, "--route", "all", "--significance-level", "1.5"]) == 2
    assert "significance level" in _err(capsys)
