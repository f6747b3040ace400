"""Issue 17, items 7, 9, 11 and 15 on the evaluation side: ``k`` checked everywhere, any route order
in the table with the JSON written first, cutoffs deeper than ``k`` refused, and metrics averaged
over the queries evaluated with warnings that give the counts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from selectsearch.cli import main
from selectsearch.errors import SelectSearchError

from .cli_input_fixtures import last_err

# ---- item 7: k -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", ["0", "-5"])
def test_eval_refuses_k_below_one(index8: Path, beir8: Path, k: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "all", "--measures", "nDCG@10",
                 "--k", k]) == 2
    err = last_err(capsys)
    assert "--k" in err and k in err


@pytest.mark.parametrize("k", [0, -5])
def test_evaluate_refuses_k_below_one(index8: Path, beir8: Path, k: int) -> None:
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate
    from selectsearch.search import SelectiveSearcher

    searcher = SelectiveSearcher.open(index8)
    with pytest.raises(SelectSearchError, match="at least 1"):
        evaluate(searcher, load_queries(beir8, split="test"), load_qrels(beir8, split="test"), ["all"], ["AP"], k=k)


# ---- item 9: the table takes any route order; JSON first --------------------------------------------------------

def test_eval_centroid_before_all_writes_json_and_table(index8: Path, beir8: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "centroid@1", "--route", "all",
                 "--measures", "nDCG@10", "--k", "10", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["route"] for r in rows] == ["centroid@1", "all"]
    table = capsys.readouterr().out.splitlines()
    assert "coverage_auc" in table[0].split()
    assert table[2].split()[0] == "all" and "-" in table[2].split()


def test_json_is_written_before_the_table_is_printed(index8: Path, beir8: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import selectsearch.evaluation as evaluation

    def broken(rows: object) -> str:
        raise RuntimeError("printing failed")

    monkeypatch.setattr(evaluation, "format_table", broken)
    out = tmp_path / "r.json"
    with pytest.raises(RuntimeError):
        main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "all", "--measures", "nDCG@10",
              "--k", "10", "--json", str(out)])
    assert [r["route"] for r in json.loads(out.read_text())] == ["all"]


def test_format_table_any_order() -> None:
    from selectsearch.evaluation import format_table

    rows = [{"route": "centroid@1", "metrics": {"nDCG@10": 0.5, "coverage_auc": 80.0}, "cost": {}},
            {"route": "all", "metrics": {"nDCG@10": 0.6}, "cost": {}}]
    lines = format_table(rows).splitlines()
    assert lines[0].split()[:3] == ["route", "nDCG@10", "coverage_auc"]
    assert lines[2].split()[:3] == ["all", "0.6000", "-"]


# ---- item 11: measures deeper than k; repeated --measures -------------------------------------------------------

def test_eval_refuses_a_measure_deeper_than_k(index8: Path, beir8: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "all", "--k", "5",
                 "--measures", "R@10", "--json", str(out)]) == 2
    err = last_err(capsys)
    assert "R@10" in err and "--k" in err
    assert not out.exists()


def test_default_measures_follow_k(index8: Path, beir8: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "all", "--k", "100",
                 "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())[0]["metrics"]
    assert "R@100" in metrics and "nDCG@10" in metrics and "R@1000" not in metrics


def test_repeated_measures_add_up(index8: Path, beir8: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["-q", "eval", str(index8), "--data", str(beir8), "--route", "all", "--k", "10",
                 "--measures", "nDCG@10", "--measures", "P@5", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())[0]["metrics"]
    assert "nDCG@10" in metrics and "P@5" in metrics


def test_evaluate_refuses_a_measure_deeper_than_k(index8: Path, beir8: Path) -> None:
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate
    from selectsearch.search import SelectiveSearcher

    with pytest.raises(SelectSearchError, match="R@1000"):
        evaluate(SelectiveSearcher.open(index8), load_queries(beir8, split="test"), load_qrels(beir8, split="test"),
                 ["all"], ["R@1000"], k=100)


# ---- item 15: which queries are averaged -------------------------------------------------------------------------

def test_evaluate_averages_over_the_queries_evaluated(index8: Path, beir8: Path) -> None:
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate
    from selectsearch.search import SelectiveSearcher

    searcher = SelectiveSearcher.open(index8)
    queries, qrels = load_queries(beir8, split="test"), load_qrels(beir8, split="test")
    one = dict(list(queries.items())[:1])
    full = evaluate(searcher, queries, qrels, ["all"], ["P@5"], k=10)[0]
    part = evaluate(searcher, one, qrels, ["all"], ["P@5"], k=10)[0]
    alone = evaluate(searcher, one, {q: qrels[q] for q in one}, ["all"], ["P@5"], k=10)[0]
    assert part["metrics"]["P@5"] == alone["metrics"]["P@5"] > 0
    assert part["cost"]["queries"] == 1.0 and full["cost"]["queries"] == 4.0
    judged = evaluate(searcher, one, qrels, ["all"], ["P@5"], k=10, all_judged=True)[0]
    assert judged["metrics"]["P@5"] == pytest.approx(alone["metrics"]["P@5"] / 4)


def test_queries_qrels_path_warns_with_counts(index8: Path, beir8: Path, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    queries = tmp_path / "q.tsv"
    queries.write_text("q-space\trocket orbit planet\nq-cooking\trecipe oven flour\nq-extra\tunjudged query\n")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text((beir8 / "qrels" / "test.tsv").read_text() + "q-space\tnot-a-doc\t1\nq-space\tghost\t0\n")
    out = tmp_path / "r.json"
    with caplog.at_level(logging.WARNING):
        assert main(["-q", "eval", str(index8), "--queries", str(queries), "--qrels", str(qrels), "--route", "all",
                     "--measures", "P@5", "--k", "10", "--json", str(out)]) == 0
    text = "\n".join(caplog.messages)
    assert "2 of 4 judged queries are not among the queries evaluated" in text
    assert "2 documents that are not in the index (2 judgements, 1 relevant" in text
    assert "1 of 3 queries have no judgements" in text
    row = json.loads(out.read_text())[0]
    assert row["cost"]["queries"] == 2.0 and row["metrics"]["P@5"] == 1.0


def test_data_path_warns_about_unknown_documents(index8: Path, beir8: Path, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    import shutil

    data = tmp_path / "beir"
    shutil.copytree(beir8, data)
    with (data / "qrels" / "test.tsv").open("a") as f:
        f.write("q-space\tnot-a-doc\t1\n")
    with caplog.at_level(logging.WARNING):
        assert main(["-q", "eval", str(index8), "--data", str(data), "--route", "all", "--measures", "P@5",
                     "--k", "10"]) == 0
    assert any("1 documents that are not in the index" in m for m in caplog.messages)


def test_eval_help_says_which_queries_are_averaged(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "Which queries are averaged" in capsys.readouterr().out


def test_markdown_table_takes_columns_from_every_row() -> None:
    from selectsearch.bench.report.curves import markdown_table

    rows = [{"route": "all", "metrics": {"nDCG@10": 0.6}, "cost": {}},
            {"route": "centroid@1", "metrics": {"nDCG@10": 0.5, "coverage_auc": 80.0}, "cost": {}}]
    header = markdown_table(rows).splitlines()[0]
    assert "coverage_auc" in header
