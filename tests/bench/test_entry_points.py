"""Smoke tests of every benchmark entry point under ``eval/``: each starts and writes its outputs.

Each script runs as a subprocess, the way the commands in ``eval/results/*/README.md`` run it,
on a tiny data root and tiny indexes made in code (see ``conftest.py``) with tiny flags. The
numbers are not checked here (benchmarks hold them); that the script runs to the end and writes
the files its README names is. :data:`SMOKE` lists every script with the test that covers it;
a new script without one fails :func:`test_every_entry_script_has_a_smoke_test`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO, run_script

#: every entry script under eval/ -> the test that runs it (the serving ones in test_ray_entry_points.py,
#: which runs in a loopback-only network namespace; the GLUE/MTL training runs only start)
SMOKE = {
    "core/bench_core.py": "test_bench_core",
    "reliability/query_path.py": "test_query_path",
    "serve/bench_serve.py": "test_bench_serve",  # test_ray_entry_points.py (loopback-only namespace)
    "serve/bench_reliability.py": "test_bench_reliability",
    "serve/bench_ray_serve.py": "test_bench_ray_serve",  # test_ray_entry_points.py
    "serve/bench_build.py": "test_bench_build",  # test_ray_entry_points.py
    "serve/engine_stages.py": "test_engine_stages",
    "serve/tie_cost.py": "test_tie_cost",
    "serve/one_index_ab.py": "test_one_index_ab",
    "serve/cost_summary.py": "test_cost_summary",
    "mico/coverage.py": "test_mico_coverage_and_table",
    "mico/table.py": "test_mico_coverage_and_table",
    "mico/hybrid.py": "test_mico_hybrid",
    "mico/step_timing.py": "test_mico_step_timing",
    "mico/subset_bench.py": "test_mico_subset_bench_and_table",
    "mico/subset_table.py": "test_mico_subset_bench_and_table",
    "rerank/rerank_bench.py": "test_rerank_bench_and_interpolate",
    "rerank/interpolate.py": "test_rerank_bench_and_interpolate",
    "rerank/teacher_queries.py": "test_teacher_queries",
    "rerank/router_bench.py": "test_router_bench",
    "dense/bench_encode.py": "test_dense_bench_encode",
    "dense/bench_scifact.py": "test_dense_bench_scifact",
    "dense/bench_sfwiki.py": "test_dense_bench_sfwiki",
    "dense/make_subset.py": "test_dense_make_subset",
    "dynamar/bench.py": "test_dynamar_bench_probe_report",
    "dynamar/probe.py": "test_dynamar_bench_probe_report",
    "dynamar/report.py": "test_dynamar_bench_probe_report",
    "mtl/bench_mtl.py": "test_mtl_report",
    "reaugkd/glue.py": "test_reaugkd_glue",
    "routing/shift.py": "test_routing_shift",
    "routing/static_encoder.py": "test_routing_static_encoder",  # test_routing_entry_points.py
    "routing/cost.py": "test_routing_cost",  # test_routing_entry_points.py
    "routing/coalesce.py": "test_routing_coalesce",  # test_routing_entry_points.py
    "routing/budget.py": "test_routing_budget",
    "routing/knn_dims.py": "test_routing_knn_dims",  # test_routing_entry_points.py
    "routing/jvm_knn/numpy_dots.py": "test_routing_jvm_knn_dots",  # test_routing_entry_points.py
    "routing/summary.py": "test_routing_shift",
    "routing/seed_spread.py": "test_routing_shift",
    "scale/generate.py": "test_scale_generate",  # test_synth.py
    "scale/model_check.py": "test_scale_model_check",
    "interop/pyterrier_experiment.py": "test_interop_pyterrier_experiment",
}


def test_every_entry_script_has_a_smoke_test() -> None:
    scripts = sorted(str(p.relative_to(REPO / "eval")) for p in (REPO / "eval").rglob("*.py"))
    assert scripts == sorted(SMOKE), "a script under eval/ has no smoke test in SMOKE (or SMOKE names a gone one)"
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    assert all(f"def {name}(" in tests for name in SMOKE.values())


def test_readme_commands_name_existing_scripts_and_loadable_definitions() -> None:
    """Every ``eval/...py|sh`` named in a results README exists; every ``selectsearch bench DEF`` loads."""
    from selectsearch.bench import load_definition

    named, definitions = set(), set()
    for readme in (REPO / "eval" / "results").glob("*/README.md"):
        text = readme.read_text()
        named |= set(re.findall(r"\beval/[\w/.-]+?\.(?:py|sh)\b", text))
        definitions |= set(re.findall(r"selectsearch (?:-q )?bench (eval/[\w/.-]+\.toml)", text))
    assert named and definitions
    missing = sorted(n for n in named if not (REPO / n).is_file())
    assert not missing, f"scripts named in eval/results/*/README.md but absent: {missing}"
    for definition in sorted(definitions):
        load_definition(REPO / definition)


def test_fewshot_definitions_load_with_their_kind() -> None:
    from selectsearch.bench import load_definition
    from selectsearch.errors import SelectSearchError

    files = sorted((REPO / "eval" / "dynamar").glob("*.toml"))
    assert files
    for file in files:
        assert load_definition(file, kind="fewshot")["tasks"]
    with pytest.raises(SelectSearchError, match="fewshot"):
        load_definition(files[0])  # not a quality definition: its keys are refused


def test_shell_scripts_parse_and_call_existing_scripts() -> None:
    for script in sorted((REPO / "eval").rglob("*.sh")):
        subprocess.run(["sh", "-n", str(script)], check=True)
        for called in re.findall(r"\beval/[\w/.-]+?\.py\b", script.read_text()):
            assert (REPO / called).is_file(), f"{script} calls {called}, which does not exist"


# ---------------------------------------------------------------------------- search benchmarks
def test_bench_core(tmp_path: Path, data_root: Path, script_env: dict[str, str]) -> None:
    out = tmp_path / "core"
    out.mkdir()
    shutil.copy(REPO / "eval" / "results" / "core" / "core-speed.json", out)  # the kept measurements
    run_script("core/bench_core.py", ["--data", data_root, "--out", out, "--skip-search", "--skip-indexing",
                                      "--small-build", data_root / "beir", "--small-build-shards", "2",
                                      "--rounds", "1"],
               env=script_env, cwd=tmp_path)
    result = json.loads((out / "core-speed.json").read_text())
    assert result["import"]["import_selectsearch_s"] > 0 and "bench_core.py" in result["command"]
    small = result["small_build"]
    assert len(small["ours_kmeans_s"]) == len(small["pyserini_luceneindexer_s"]) == 1 and small["ratio"] > 0
    md = (out / "core-speed.md").read_text()
    assert "| `import selectsearch`" in md and "| indexing beir, k-means 2 shards" in md


def test_query_path(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    out = tmp_path / "qp"
    run_script("reliability/query_path.py", ["--before", REPO, "--after", REPO, "--index", bench_index, "--data",
                                              data_root / "beir", "--routes", "all", "--k", "10", "--passes", "1",
                                              "--out", out], env=script_env, cwd=tmp_path)
    rows = json.loads((out / "query-path.json").read_text())["rows"]
    assert [(r["route"], r["k"]) for r in rows] == [("all", 10)] and rows[0]["cpu_ms_after"] > 0
    assert "| all | 10 |" in (out / "query-path.md").read_text()


def test_engine_stages(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    out = tmp_path / "stages"
    run_script("serve/engine_stages.py", [bench_index, bench_index, "--data", data_root / "beir", "--route", "random@1",
                                          "--k", "5", "--passes", "1", "--term-cache", "1000", "--out", out],
               env=script_env, cwd=tmp_path)
    rows = json.loads((out / "engine-stages.json").read_text())["ms_per_query"]
    assert set(rows) == {f"{n}{tag}|k=5" for n in ("unsharded:all", "sharded:all", "sharded:random@1")
                         for tag in ("", "+tc1000")}
    assert all(r["java_batch_call"] > 0 for r in rows.values())
    assert "| java_batch_call |" in (out / "engine-stages.md").read_text()


def test_tie_cost(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    out = tmp_path / "ties"
    run_script("serve/tie_cost.py", [bench_index, bench_index, "--data", data_root / "beir", "--route", "random@1",
                                     "--k", "5", "--passes", "1", "--out", out], env=script_env, cwd=tmp_path)
    rows = json.loads((out / "tie-cost.json").read_text())["rows"]
    assert [(r["config"], r["k"]) for r in rows] == [("unsharded all", 5), ("sharded all", 5), ("sharded random@1", 5)]
    assert all(r["docid_ms"] > 0 and r["doc_id_ms"] > 0 for r in rows)
    assert "| sharded random@1 | 5 |" in (out / "tie-cost.md").read_text()


def test_one_index_ab(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    from selectsearch.index.ranges import add_lucene_ranges

    index = tmp_path / "idx"
    shutil.copytree(bench_index, index)
    args = [index, "--data", data_root / "beir", "--routes", "random@1", "all", "--k", "5", "--passes", "1",
            "--warmup", "0", "--out", tmp_path / "ab"]
    refused = subprocess.run([sys.executable, str(REPO / "eval" / "serve" / "one_index_ab.py"), *map(str, args)],
                             env=script_env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "--add-backend lucene-ranges" in refused.stderr  # no merged index yet
    add_lucene_ranges(index)
    run_script("serve/one_index_ab.py", args, env=script_env, cwd=tmp_path)
    rows = json.loads((tmp_path / "ab" / "one-index-ab.json").read_text())["rows"]
    assert [(r["route"], r["k"], r["shards"]) for r in rows] == [("random@1", 5, 1.0), ("all", 5, 4.0)]
    assert all(r["shard indexes x"] == 1.0 and r["merged index ms"] > 0 for r in rows)


def test_mico_coverage_and_table(tmp_path: Path, bench_index: Path, data_root: Path,
                                 script_env: dict[str, str]) -> None:
    from selectsearch.cli import main

    coverage = tmp_path / "coverage.jsonl"
    proc = run_script("mico/coverage.py", [bench_index, "--data", data_root / "beir", "--split", "test", "--route",
                                           "centroid", "--json", coverage], env=script_env, cwd=tmp_path)
    result = json.loads(coverage.read_text())
    assert result["n_shards"] == 4 and proc.stdout.startswith("| centroid |")
    rows = tmp_path / "eval.json"
    assert main(["-q", "eval", str(bench_index), "--data", str(data_root / "beir"), "--route", "all", "--route",
                 "centroid@1:2", "--measures", "nDCG@10", "--k", "10", "--json", str(rows)]) == 0
    proc = run_script("mico/table.py", [f"centroid={rows}", "--budgets", "1", "2"], env=script_env, cwd=tmp_path)
    assert proc.stdout.splitlines()[2].startswith("| centroid |")


def test_mico_hybrid(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    out = tmp_path / "hybrid"
    run_script("mico/hybrid.py", [bench_index, "--data", data_root / "beir", "--logs", "train", "--routers",
                                  "centroid,cori", "--step", "0.5", "--out", out], env=script_env, cwd=tmp_path)
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["routers"] == ["centroid", "cori"] and report["eval_command"].startswith("selectsearch eval")
    assert "| router | AUC |" in out.with_suffix(".md").read_text()


def test_routing_shift(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    out = tmp_path / "shift-tiny"
    run_script("routing/shift.py", [data_root / "beir", "--name", "tiny", "--index", bench_index, "--work",
                                    tmp_path / "work", "--fraction", "0.4", "--tune-seed", "1", "--tune-folds", "2",
                                    "--out", out], env=script_env, cwd=tmp_path)
    report = json.loads(out.with_suffix(".json").read_text())
    assert [s["setting"] for s in report["settings"]] == ["in-distribution", "new-topics", "unlogged-docs"]
    assert report["tune_seed"] == 1 and report["tune_folds"] == 2
    assert all(s["tuning"][v]["splits"]["random"]["seed"] == 1 and s["tuning"][v]["folds"] == 2
               for s in report["settings"] for v in ("random", "topics"))
    for setting in report["settings"]:
        assert {r["route"] for r in setting["rows"]} >= {"all", "cori@4", "knn@2", "hybrid[topics]@1",
                                                          "hybrid[gated]@2", "hybrid[tuned]@2",
                                                          "hybrid[tuned]@auto"}
        assert set(setting["tuning"]["topics"]["auc"]) <= {"random", "topics"}
        assert (tmp_path / "work" / "tiny" / setting["setting"] / "qrels" / "train.tsv").is_file()
    assert "| budget | best classic" in out.with_suffix(".md").read_text()
    # the acceptance summary reads the shift report (as if it were SciFact's) and recomputes nothing
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(out.with_suffix(".json"), results / "shift-scifact.json")
    run_script("routing/summary.py", ["--results", results], env=script_env, cwd=tmp_path)
    rows = json.loads((results / "summary.json").read_text())
    assert {(r["setting"], r["budget"]) for r in rows} == {(s, b) for s in ("in-distribution", "new-topics",
                                                                            "unlogged-docs")
                                                           for b in ("1", "2", "4", "auto")}
    assert all(r["collection"] == "tiny" and r["route"].startswith("hybrid[tuned]") for r in rows)
    assert "Not found (not measured yet): budget-scifact.json" in (results / "summary.md").read_text()
    # the seed spread reads reports of several tuning seeds (here the same one, relabelled seed 0)
    seed0 = tmp_path / "seed0.json"
    seed0.write_text(json.dumps({**report, "tune_seed": None}))
    spread = tmp_path / "spread"
    run_script("routing/seed_spread.py", [seed0, out.with_suffix(".json"), "--out", spread], env=script_env,
               cwd=tmp_path)
    rows = json.loads(spread.with_suffix(".json").read_text())["rows"]
    cells = [r for r in rows if r["budget"] != "test AUC"]
    assert len(cells) == 12 and all(r["seeds"] == [0, 1] and r["margins"][0] == r["margins"][1] for r in cells)
    assert "| setting | budget | seed 0 | seed 1 |" in spread.with_suffix(".md").read_text()


def test_routing_budget(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route.tuning import tune_hybrid, write_routing

    index_dir = Path(shutil.copytree(bench_index, tmp_path / "index"))
    write_routing(index_dir, tune_hybrid(ShardedIndex.open(index_dir), data_root / "beir", "train",
                                         ["centroid", "cori"], step=0.5))
    out = tmp_path / "routing"
    run_script("routing/budget.py", [index_dir, "--data", data_root / "beir", "--collection", "tiny", "--calibrate",
                                     "--targets", "0.5", "0.9", "--max-budget", "2", "--ranks-thresholds", "0.01",
                                     "--taily-nmin", "1", "--out", out], env=script_env, cwd=tmp_path)
    result = json.loads((out / "budget-tiny.json").read_text())
    routes = [r["route"] for r in result["rows"]]
    assert routes[:5] == ["all", "hybrid@1", "hybrid@2", "hybrid@auto:0.5", "hybrid@auto:0.9"]
    assert result["calibration"]["stored"]["fitted"] and "ece" in result["calibration"]["test"]
    assert (out / "budget-tiny.png").is_file() and "## Calibration" in (out / "budget-tiny.md").read_text()


def test_mico_step_timing(tmp_path: Path, data_root: Path, script_env: dict[str, str]) -> None:
    out = tmp_path / "steps.json"
    run_script("mico/step_timing.py", [data_root / "beir", "--steps", "1", "--batch-size", "4", "--json", out],
               env=script_env, cwd=tmp_path)
    result = json.loads(out.read_text())
    assert result["steps"] == 1 and result["cpu_seconds_per_step"] > 0


def test_mico_subset_bench_and_table(tmp_path: Path, data_root: Path, script_env: dict[str, str]) -> None:
    import numpy as np

    from selectsearch.data import open_corpus

    n_docs = sum(1 for _ in open_corpus(data_root / "beir"))
    vectors = np.random.default_rng(0).standard_normal((n_docs, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embeddings = tmp_path / "emb.f32"
    vectors.tofile(embeddings)
    out = tmp_path / "subset.json"
    run_script("mico/subset_bench.py", [data_root / "beir", "--n-docs", str(n_docs - 8), "--shards", "8",
                                        "--embeddings", embeddings, "--epochs", "1", "--json", out],
               env=script_env, cwd=tmp_path)
    result = json.loads(out.read_text())
    assert set(result) >= {"kmeans_centroid", "mico_frozen"} and result["shards"] == 8  # its table reads m <= 8
    proc = run_script("mico/subset_table.py", [out], env=script_env, cwd=tmp_path)
    assert len(proc.stdout.splitlines()) == 4  # header, rule, k-means row, MICO row


def test_rerank_bench_and_interpolate(tmp_path: Path, bench_index: Path, data_root: Path,
                                      script_env: dict[str, str]) -> None:
    beir = data_root / "beir"
    test_out, dev_out = tmp_path / "rr-test", tmp_path / "rr-dev"
    run_script("rerank/rerank_bench.py", [bench_index, "--data", beir, "--queries", "4", "--depth", "10",
                                          "--measures", "nDCG@10", "--work", tmp_path / "w-test", "--out", test_out],
               env=script_env, cwd=tmp_path)
    result = json.loads(test_out.with_suffix(".json").read_text())
    assert result["queries"] == 4 and [r["system"] for r in result["rows"]] == ["bm25"]
    assert "| bm25 |" in test_out.with_suffix(".md").read_text()
    run_script("rerank/rerank_bench.py", [bench_index, "--data", beir, "--split", "train", "--queries", "4",
                                          "--depth", "10", "--measures", "nDCG@10", "--work", tmp_path / "w-dev",
                                          "--out", dev_out], env=script_env, cwd=tmp_path)
    out = tmp_path / "interp"
    run_script("rerank/interpolate.py", ["--data", beir, "--dev", tmp_path / "w-dev" / "results.jsonl",
                                         "--test", tmp_path / "w-test" / "results.jsonl", "--test-queries", "4",
                                         "--out", out], env=script_env, cwd=tmp_path)
    assert json.loads(out.with_suffix(".json").read_text())["test_queries"] == 4
    assert "| bm25 |" in out.with_suffix(".md").read_text()


def test_teacher_queries(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "config.json").write_text(json.dumps({"extra": {"reranker": {
        "data": str(data_root / "beir"), "split": "train", "index": str(bench_index), "pairs": {"depth": 10}}}}))
    out = tmp_path / "qids.txt"
    run_script("rerank/teacher_queries.py", [teacher, "--out", out], env=script_env, cwd=tmp_path)
    assert out.read_text().split() and all(q.startswith("q-") for q in out.read_text().split())


# ---------------------------------------------------------------------------- dense
def test_dense_bench_encode(tmp_path: Path, script_env: dict[str, str]) -> None:
    run_script("dense/bench_encode.py", ["--n", "2", "--out", tmp_path], env=script_env, cwd=tmp_path)
    rows = json.loads((tmp_path / "encode.json").read_text())["rows"]
    assert [r["source"] for r in rows] == ["scifact", "wikipedia"] and rows[0]["docs_per_s_length_sorted"] > 0


def test_dense_bench_scifact(tmp_path: Path, bench_dense_index: Path, script_env: dict[str, str]) -> None:
    run_script("dense/bench_scifact.py", ["--index", bench_dense_index, "--out", tmp_path], env=script_env,
               cwd=tmp_path)
    result = json.loads((tmp_path / "scifact.json").read_text())
    assert len(result["test"]) == 6 and result["chosen"]["rrf"]["method"] == "rrf"
    assert "## Tuning on train" in (tmp_path / "scifact.md").read_text()


def test_dense_bench_sfwiki(tmp_path: Path, bench_dense_index: Path, bench_mico_index: Path, data_root: Path,
                            script_env: dict[str, str]) -> None:
    run_script("dense/bench_sfwiki.py", ["--dense-index", bench_dense_index, "--mico-index", bench_mico_index,
                                         "--sources", data_root / "beir", "--queries", data_root / "beir",
                                         "--budgets", "1,2", "--latency-queries", "2", "--label", "tiny", "--out",
                                         tmp_path], env=script_env, cwd=tmp_path)
    result = json.loads((tmp_path / "tiny.json").read_text())
    assert set(result["curves"]) == {"mico", "centroid", "ivf4", "ivf32"} and result["collection"]["shards"] == 4
    assert "## Single-query latency" in (tmp_path / "tiny.md").read_text()
    assert (tmp_path / "tiny.png").stat().st_size > 0
    run_script("dense/bench_sfwiki.py", ["--dense-index", bench_dense_index, "--mico-index", bench_mico_index,
                                         "--sources", data_root / "beir", "--label", "tiny", "--out", tmp_path,
                                         "--replot"], env=script_env, cwd=tmp_path)


def test_router_bench(tmp_path: Path, bench_mico_index: Path, distilled_dir: Path, data_root: Path,
                      script_env: dict[str, str]) -> None:
    out = tmp_path / "router"
    run_script("rerank/router_bench.py", [bench_mico_index, "--data", data_root / "beir", "--student",
                                          f"student={distilled_dir}", "--budgets", "1,2", "--k", "10",
                                          "--measures", "nDCG@10", "--repeats", "1", "--ablate-retrieval",
                                          "--out", out], env=script_env, cwd=tmp_path)
    result = json.loads(out.with_suffix(".json").read_text())
    assert [e["router"] for e in result["summary"]] == ["mico", "student", "student (no retrieval)"]
    assert "| mico |" in out.with_suffix(".md").read_text()


def test_dense_make_subset(tmp_path: Path, data_root: Path, script_env: dict[str, str]) -> None:
    from selectsearch.data import open_corpus
    from selectsearch.encode import TextEncoder

    texts = [d.contents for d in open_corpus([data_root / "scifact", data_root / "wikipedia"])]
    rows = len(texts) - 16
    partial = tmp_path / "embeddings.f32.partial"
    TextEncoder(max_length=256, threads=1).encode(texts[:rows]).astype("float32").tofile(partial)
    proc = run_script("dense/make_subset.py", ["--partial", partial, "--rows", str(rows), "--out-dir",
                                               tmp_path / "data"], env=script_env, cwd=tmp_path)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["n_docs"] == rows and Path(summary["cache"], "embeddings.f32").is_file()
    assert list((tmp_path / "data").glob("wikipedia-first*.jsonl.gz"))


# ---------------------------------------------------------------------------- models
FEWSHOT = """
encoder = "{encoder}"
tasks = ["mr"]
seeds = [13]
methods = ["finetune", "dynamar"]
pool_size = 2
k = 2
k_regression = 2
steps = 1
batch_size = 2
learning_rate = 1e-4
head_learning_rate = 1e-2
pooling = "mean"
max_length = 16
max_length_pair = 16
max_test = 4
test_seed = 0
"""


def test_dynamar_bench_probe_report(tmp_path: Path, tiny_encoder_dir: Path, script_env: dict[str, str]) -> None:
    defs, results = tmp_path / "defs", tmp_path / "results"
    defs.mkdir()
    results.mkdir()
    (defs / "fewshot.toml").write_text(FEWSHOT.format(encoder=tiny_encoder_dir))
    shutil.copy(REPO / "eval" / "dynamar" / "commands.json", defs)
    runs = results / "fewshot.part0.jsonl"
    run_script("dynamar/bench.py", [defs / "fewshot.toml", "--out", runs], env=script_env, cwd=tmp_path)
    records = [json.loads(line) for line in runs.read_text().splitlines()]
    assert [r["method"] for r in records] == ["finetune", "dynamar"] and records[0]["n_test"] == 4
    run_script("dynamar/probe.py", [defs / "fewshot.toml", "--out", results / "probe"], env=script_env, cwd=tmp_path)
    assert "mr" in json.loads((results / "probe.json").read_text())["tasks"]
    run_script("dynamar/report.py", ["--results", results, "--defs", defs], env=script_env, cwd=tmp_path)
    assert json.loads((results / "fewshot.json").read_text())["runs_finished"] == 2
    assert (results / "README.md").read_text()


def test_mtl_report(tmp_path: Path, script_env: dict[str, str]) -> None:
    shutil.copytree(REPO / "eval" / "results" / "mtl" / "setup_b" / "runs", tmp_path / "setup_b" / "runs")
    run_script("mtl/bench_mtl.py", ["report", "--setup", "b", "--results", tmp_path], env=script_env, cwd=tmp_path)
    kept = json.loads((REPO / "eval" / "results" / "mtl" / "setup_b.json").read_text())
    assert json.loads((tmp_path / "setup_b.json").read_text()).keys() == kept.keys()
    assert (tmp_path / "setup_b.md").read_text() and (tmp_path / "setup_b_curves.png").stat().st_size > 0


def test_reaugkd_glue(tmp_path: Path, script_env: dict[str, str]) -> None:
    out = tmp_path / "out"
    run_script("reaugkd/glue.py", ["--smoke", "--tasks", "sst2", "--max-seeds", "1", "--out", out, "--work",
                                   tmp_path / "work"], env=script_env, cwd=tmp_path)
    cells = [json.loads(line) for line in (out / "glue_cells.jsonl").read_text().splitlines()]
    assert [c["variant"] for c in cells] == ["alone", "kd", "reaugkd"]
    assert (out / "glue.json").is_file() and "SST-2" in (out / "glue.md").read_text()


def test_mtl_run_starts(tmp_path: Path, script_env: dict[str, str]) -> None:
    """``bench_mtl.py run`` trains on the fixed GLUE / toys / TREC setups (minutes): here it starts and
    prints its usage (``report`` runs in :func:`test_mtl_report`)."""
    proc = run_script("mtl/bench_mtl.py", ["run", "--help"], env=script_env, cwd=tmp_path)
    assert "usage:" in proc.stdout


@pytest.mark.parametrize("script", ["serve/bench_serve.py", "serve/bench_reliability.py", "serve/bench_ray_serve.py"])
def test_ray_entry_points_start(script: str, tmp_path: Path, script_env: dict[str, str]) -> None:
    """The serving benchmarks run in test_ray_entry_points.py (a loopback-only network namespace);
    here, anywhere, they start and print their usage."""
    proc = run_script(script, ["--help"], env=script_env, cwd=tmp_path)
    assert "usage:" in proc.stdout


def test_interop_pyterrier_experiment(tmp_path: Path, bench_index: Path, data_root: Path,
                                      script_env: dict[str, str]) -> None:
    pytest.importorskip("pyterrier")
    out = tmp_path / "figures"
    proc = run_script("interop/pyterrier_experiment.py",
                      [bench_index, "--data", data_root / "beir", "--split", "test", "--route", "all",
                       "--route", "cori@2", "--route", "random@1", "--measures", "nDCG@10", "R@10", "--k", "10",
                       "--name", "pt", "--out", out], env=script_env, cwd=tmp_path)
    report = json.loads((out / "pt.json").read_text())
    assert [row["name"] for row in report["table"]] == ["all", "cori@2", "random@1"]
    assert report["max_abs_difference_vs_selectsearch_eval"] == 0.0
    assert "nDCG@10 p-value corrected" in (out / "pt.txt").read_text() and "largest" in proc.stdout


def test_cost_summary(tmp_path: Path, script_env: dict[str, str]) -> None:
    def result(index: str, kind: str, route: str, frac: float, cpu: float) -> dict[str, object]:
        return {"index": index, "kind": kind, "route": route, "n_docs": 205183, "metrics": {"nDCG@10": 0.6},
                "summary": {"fraction_scored": frac, "total_cpu_ms": cpu}}

    report = {"benchmark": "cost-x", "command": "selectsearch bench x.toml", "k": 1000, "load_average_at_end": [0.1],
              "results": [result("sfwiki-kmeans32", "sharded", "all", 1.0, 3.0),
                          result("sfwiki-kmeans32", "sharded", "cori@2", 0.06, 0.8),
                          result("sfwiki-single", "unsharded", "all", 1.0, 2.0)],
              "latency": [{"index": "sfwiki-single", "route": "all", "clients": 1, "process_cpu_ms_per_query": 5.0},
                          {"index": "sfwiki-kmeans32", "route": "cori@2", "clients": 1,
                           "process_cpu_ms_per_query": 2.5},
                          {"index": "sfwiki-kmeans32", "route": "cori@2", "clients": 4,
                           "process_cpu_ms_per_query": 9.0}]}
    (tmp_path / "cost-x.json").write_text(json.dumps(report))
    (tmp_path / "notes.json").write_text("[]")  # not a cost report: skipped
    run_script("serve/cost_summary.py", [tmp_path], env=script_env, cwd=tmp_path)
    rows = {r["config"]: r for r in json.loads((tmp_path / "summary.json").read_text())}
    assert rows["sfwiki-kmeans32:cori@2"]["ratio_to_unsharded"] == pytest.approx(0.4)
    assert rows["sfwiki-kmeans32:cori@2"]["ratio_process_to_unsharded"] == pytest.approx(0.5)
    assert rows["sfwiki-kmeans32:all"]["ratio_to_unsharded"] == pytest.approx(1.5)
    md = (tmp_path / "summary.md").read_text()
    assert "| sfwiki-kmeans32:cori@2 | 1000 | 0.40x in-process | <= 0.40x | met |" in md
    assert "| sfwiki-kmeans32:cori@2 | 1000 | 0.50x per client process | <= 0.40x | **missed** |" in md
    assert "| sfwiki-kmeans32:all | 10 | - | <= 1.30x | not measured |" in md
    empty = tmp_path / "empty"
    empty.mkdir()
    run = subprocess.run([sys.executable, str(REPO / "eval" / "serve" / "cost_summary.py"),
                          str(empty)], env=script_env, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.count("\n") == 1


def test_bench_build_keeps_a_non_empty_work_folder(tmp_path: Path, script_env: dict[str, str]) -> None:
    pytest.importorskip("ray")
    work = tmp_path / "mine"
    work.mkdir()
    (work / "thesis.tex").write_text("years of work")
    run = subprocess.run([sys.executable, str(REPO / "eval" / "serve" / "bench_build.py"), "--work", str(work),
                          "--out", str(tmp_path / "out")], env=script_env, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 2 and "not an empty folder" in run.stderr and run.stderr.count("\n") == 1
    assert (work / "thesis.tex").read_text() == "years of work"


def test_scale_model_check(tmp_path: Path, script_env: dict[str, str]) -> None:
    """Reports made from a known model (sharded search + merge = 0.5 ms + 100 ns/posting + 0.05 ms
    per shard searched + 0.1 ms x ln N; CORI's routing 0.2 ms, ReDDE's growing with N): the model
    fitted on two sizes predicts the third exactly. (A fit without the shard or ln N term misses.)"""
    rng = np.random.default_rng(0)

    def report(n_docs: int, name: str) -> Path:
        results = []
        for index, kind, route, router, frac, budget in (("k", "sharded", "all", "all", 1.0, 8),
                                                         ("k", "sharded", "cori@2", "cori", 0.06, 2),
                                                         ("k", "sharded", "random@4", "random", 0.5, 4),
                                                         ("k", "sharded", "redde@3", "redde", 0.1, 3),
                                                         ("one", "unsharded", "all", "all", 1.0, 1)):
            postings = (rng.uniform(0.5, 1.5, 20) * n_docs * frac / 10).tolist()
            shards = [list(range(int(budget) - (i % 2 if budget > 1 else 0))) for i in range(20)]
            route_ms = {"cori": 0.2, "redde": 0.1 + 0.2 * n_docs / 1e6}.get(router, 0.0)
            if kind == "sharded":
                cpu = [0.5 + 1e-4 * p + 0.05 * len(s) + 0.1 * np.log(n_docs)
                       for p, s in zip(postings, shards, strict=True)]
            else:
                cpu = [0.3 + 1e-4 * p + 0.2 * np.log(n_docs) for p in postings]
            total = route_ms + float(np.mean(cpu))
            results.append({"index": index, "kind": kind, "route": route, "router": router, "rerank": None,
                            "n_docs": n_docs, "metrics": {"nDCG@10": 0.6}, "postings": postings,
                            "search_merge_cpu": cpu, "shards": shards,
                            "summary": {"fraction_scored": frac, "total_cpu_ms": total, "thread_cpu_ms": total,
                                        "jvm_other_cpu_ms": 0.0, "cpu_ms": {"route": route_ms}}})
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"k": 1000, "results": results}))
        return path

    small, medium, large = report(200_000, "s"), report(1_000_000, "m"), report(5_000_000, "l")
    out = tmp_path / "model"
    run_script("scale/model_check.py", ["--fit", small, medium, "--check", large, "--out", out],
               env=script_env, cwd=tmp_path)
    result = json.loads(out.with_suffix(".json").read_text())
    assert len(result["rows"]) == 5 and all(abs(r["error"]) < 1e-6 for r in result["rows"])
    sharded = result["models"]["sharded"]
    assert sharded["fixed_ms"] == pytest.approx(0.5) and sharded["per_shard_ms"] == pytest.approx(0.05)
    assert sharded["per_log_docs_ms"] == pytest.approx(0.1) and sharded["per_posting_ns"] == pytest.approx(100.0)
    assert result["models"]["unsharded"]["fitted"] == ["fixed", "per_posting", "per_log_docs"]
    far = {r["config"]: r for r in result["extrapolation"]}
    assert far["one:all"]["ratio_to_unsharded"] == 1.0 and far["k:cori@2"]["ratio_to_unsharded"] < 0.1
    assert far["k:redde@3"]["route_cpu_ms"] == pytest.approx(0.1 + 0.2 * 100)
    assert "5 of 5 configurations within 20%" in out.with_suffix(".md").read_text()
