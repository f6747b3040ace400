"""``--backend``, ``--add-backend`` and ``--retriever`` through the command line (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selectsearch.cli import main


def test_index_search_eval_with_faiss(beir: Path, tiny_model: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "idx"
    assert main(["-q", "index", str(beir), "--out", str(out), "--shards", "3", "--partitioner", "random",
                 "--threads", "1", "--backend", "lucene,faiss", "--encoder", str(tiny_model),
                 "--max-length", "32"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["backends"] == ["lucene", "faiss"]
    trace_file = tmp_path / "trace.jsonl"
    assert main(["-q", "search", str(out), "--queries", str(beir), "--route", "random@2", "--retriever", "hybrid",
                 "--fusion", "convex", "--alpha", "0.3", "--k", "5", "--output", str(tmp_path / "run.trec"),
                 "--trace", str(trace_file)]) == 0
    traces = [json.loads(line) for line in trace_file.read_text().splitlines()]
    assert len(traces) == 4
    assert traces[0]["extra"]["retriever"] == "hybrid"
    assert traces[0]["extra"]["fusion"] == {"method": "convex", "alpha": 0.3, "norm": "minmax", "depth": 1000}
    assert len((tmp_path / "run.trec").read_text().splitlines()) == 20
    capsys.readouterr()
    assert main(["-q", "eval", str(out), "--data", str(beir), "--route", "all", "--route", "random@1",
                 "--retriever", "dense", "--measures", "nDCG@10", "--k", "20",
                 "--json", str(tmp_path / "rows.json")]) == 0
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [r["retriever"] for r in rows] == ["dense", "dense"]
    assert rows[0]["cost"]["fraction_vectors_scored"] == pytest.approx(1.0)


def test_add_backend_cli_and_clear_errors(beir: Path, tiny_model: Path, tiny_model_16: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lex"
    assert main(["-q", "index", str(beir), "--out", str(out), "--shards", "2", "--partitioner", "random",
                 "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["-q", "search", str(out), "--query", "rocket", "--retriever", "dense"]) == 2
    assert "--add-backend faiss" in capsys.readouterr().err
    assert main(["-q", "index", str(beir), "--out", str(out), "--add-backend", "faiss", "--encoder", str(tiny_model),
                 "--max-length", "32"]) == 0
    assert json.loads(capsys.readouterr().out)["dim"] == 32
    assert main(["-q", "search", str(out), "--query", "rocket", "--retriever", "dense",
                 "--encoder", str(tiny_model_16)]) == 2
    err = capsys.readouterr().err
    assert "16-dimensional" in err and "32-dimensional" in err
    assert main(["-q", "index", str(beir), "--out", str(tmp_path / "x"), "--backend", "solr"]) == 2
    assert "unknown backend solr" in capsys.readouterr().err
