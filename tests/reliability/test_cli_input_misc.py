"""Issue 17, items 11 and 14 off the search path: benchmark definitions with unknown keys, repeated
``--backend``, ``--mico-model`` deciding the shard count, ``irds:`` offline, and ``plot`` on results
that cannot be plotted. Each bad input gets one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from selectsearch.cli import main
from selectsearch.errors import SelectSearchError

from .cli_input_fixtures import last_err

GOOD = '''name = "b"
corpus = ["x"]
queries = "x"
measures = ["nDCG@10"]
k = 10

[[index]]
name = "i"
shards = 2
routes = ["all"]
'''


def _bench(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> str:
    definition = tmp_path / "b.toml"
    definition.write_text(text)
    out = tmp_path / "out"
    code = main(["-q", "bench", str(definition), "--out", str(out), "--data", str(tmp_path),
                 "--indexes", str(tmp_path / "indexes")])
    assert code == 2
    assert not out.exists() and not (tmp_path / "indexes").exists()
    return last_err(capsys)


# ---- item 11: benchmark definitions -------------------------------------------------------------------------

@pytest.mark.parametrize("text,typo,valid", [
    (GOOD.replace("measures =", "mesures ="), "mesures", "measures"),
    (GOOD.replace("shards = 2", "shards = 2\npartioner = \"random\""), "partioner", "partitioner"),
    (GOOD + '[index.options]\nsample_sise = 10\n', "sample_sise", "sample_size"),
    (GOOD.replace('routes = ["all"]', 'routes = ["redde@1"]\nrouter_options = {csi_rat = 0.1}'), "csi_rat",
     "csi_rate"),
])
def test_bench_refuses_unknown_keys_naming_the_valid_ones(tmp_path: Path, text: str, typo: str, valid: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    err = _bench(tmp_path, text, capsys)
    assert typo in err and valid in err


def test_bench_refuses_k_below_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _bench(tmp_path, GOOD.replace("k = 10", "k = 0"), capsys)
    assert "k (hits retrieved per query)" in err


def test_bench_refuses_a_measure_deeper_than_k(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _bench(tmp_path, GOOD.replace('["nDCG@10"]', '["R@100"]'), capsys)
    assert "R@100" in err


def test_committed_benchmark_definitions_still_load() -> None:
    from selectsearch.bench import load_definition

    root = Path(__file__).resolve().parents[2] / "eval"
    files = sorted([*root.glob("benchmarks/*.toml"), *root.glob("serve/cost-*.toml")])
    assert files
    for file in files:
        load_definition(file)


# ---- item 11: index flags -------------------------------------------------------------------------------------

def test_repeated_backend_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "idx"
    assert main(["-q", "index", str(tmp_path), "--out", str(out), "--backend", "lucene", "--backend", "faiss"]) == 2
    err = last_err(capsys)
    assert "--backend lucene,faiss" in err
    assert not out.exists()


def _fake_mico_model(folder: Path, k: int) -> Path:
    from selectsearch.mico.model import FORMAT, VERSION

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"format": FORMAT, "version": VERSION, "n_clusters": k}))
    return folder


def test_mico_model_decides_the_shard_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import selectsearch.data
    import selectsearch.index.build as build

    seen: dict[str, Any] = {}

    class StopError(SelectSearchError):
        pass

    def fake_build(corpus: object, out: object, config: Any, **_: object) -> None:
        seen["shards"] = config.n_shards
        raise StopError("stopped before building")

    monkeypatch.setattr(build, "build_index", fake_build)
    monkeypatch.setattr(selectsearch.data, "open_corpus", lambda sources: None)
    model = _fake_mico_model(tmp_path / "m", 4)
    assert main(["-q", "index", str(tmp_path), "--out", str(tmp_path / "i"), "--partitioner", "mico",
                 "--mico-model", str(model)]) == 2
    assert seen["shards"] == 4
    assert main(["-q", "index", str(tmp_path), "--out", str(tmp_path / "i"), "--partitioner", "mico",
                 "--mico-model", str(model), "--shards", "6"]) == 2
    assert seen["shards"] == 6  # an explicit --shards is kept (and the build refuses the mismatch)
    assert main(["-q", "index", str(tmp_path), "--out", str(tmp_path / "i")]) == 2
    assert seen["shards"] == 16


# ---- item 14: irds offline ------------------------------------------------------------------------------------

def _offline_ir_datasets(monkeypatch: pytest.MonkeyPatch, *, lazy: bool) -> None:
    """A stand-in ir_datasets whose downloads fail as they do offline (a RuntimeError)."""
    def fail() -> Any:
        raise RuntimeError("All download sources failed", ["ConnectionError(... Name or service not known)"])

    def docs_iter() -> Any:
        if not lazy:
            fail()
        yield from ()
        fail()

    dataset = types.SimpleNamespace(has_docs=lambda: True, has_queries=lambda: True, has_qrels=lambda: True,
                                    docs_iter=docs_iter, queries_iter=docs_iter, qrels_iter=docs_iter)
    module = types.ModuleType("ir_datasets")
    module.load = lambda dataset_id: dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ir_datasets", module)


@pytest.mark.parametrize("lazy", [True, False])
def test_index_irds_offline_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lazy: bool,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _offline_ir_datasets(monkeypatch, lazy=lazy)
    out = tmp_path / "vaswani"
    assert main(["-q", "index", "irds:vaswani", "--out", str(out), "--shards", "2"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "irds:vaswani" in lines[0] and "ir_datasets export" in lines[0]
    assert "Traceback" not in captured.err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_irds_queries_and_qrels_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.errors import DataNotFoundError

    _offline_ir_datasets(monkeypatch, lazy=True)
    with pytest.raises(DataNotFoundError, match="could not read"):
        load_queries("irds:vaswani")
    with pytest.raises(DataNotFoundError, match="could not read"):
        load_qrels("irds:vaswani")


# ---- item 14: plot ---------------------------------------------------------------------------------------------

ROWS = [{"route": "all", "router": "all", "budget": None, "metrics": {"nDCG@10": 0.6, "coverage": 1.0},
         "cost": {"fraction_scored": 1.0}},
        {"route": "centroid@1", "router": "centroid", "budget": 1, "metrics": {"nDCG@10": 0.5, "coverage": 0.7},
         "cost": {"fraction_scored": 0.2}}]


@pytest.mark.parametrize("content,expect", [("", "not JSON"), ("[]", "no rows"), ("{}", "no rows"),
                                            ('[{"x": 1}]', "not an evaluation row")])
def test_plot_refuses_empty_or_foreign_results(tmp_path: Path, content: str, expect: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "r.json"
    results.write_text(content)
    assert main(["plot", str(results), "--out", str(tmp_path / "p.png")]) == 2
    assert expect in last_err(capsys)
    assert not (tmp_path / "p.png").exists()


def test_plot_refuses_an_absent_metric_naming_the_available_ones(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "r.json"
    results.write_text(json.dumps(ROWS))
    assert main(["plot", str(results), "--out", str(tmp_path / "p.png"), "--metrics", "P@5"]) == 2
    err = last_err(capsys)
    assert "P@5" in err and "nDCG@10, coverage" in err
    assert not (tmp_path / "p.png").exists()


def test_plot_defaults_to_the_metrics_present(tmp_path: Path) -> None:
    results = tmp_path / "r.json"
    results.write_text(json.dumps(ROWS))  # no R@100: the default plots nDCG@10 and coverage
    assert main(["plot", str(results), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0
