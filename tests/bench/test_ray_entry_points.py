"""Smoke tests of the serving benchmarks (``eval/serve/``): each starts a Ray cluster, serves a tiny
index, measures a few requests (and its fault drill) and writes its outputs.

Ray sends its traffic to the machine's non-loopback address, so these run only inside a network
namespace that has nothing but loopback (``make test`` runs this file with ``unshare -n``, like
tests/serve/test_ray.py); elsewhere they are skipped. ``SELECTSEARCH_RAY_TESTS=1`` runs them anyway.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from .conftest import run_script

pytest.importorskip("ray", reason="Ray is not installed: pip install 'selectsearch[ray]'")


def _loopback_only() -> bool:
    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _loopback_only() and os.environ.get("SELECTSEARCH_RAY_TESTS") != "1",
                                reason="needs a loopback-only network namespace: unshare -n sh -c 'ip link set lo "
                                       "up && exec python -m pytest tests/bench/test_ray_entry_points.py'")


def test_bench_serve(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    run_script("serve/bench_serve.py", ["--index", bench_index, "--data", data_root / "beir", "--out", tmp_path,
                                        "--routes", "all", "cori@2", "--clients", "1", "--requests", "4",
                                        "--shards-per-group", "2", "--k", "10"], env=script_env, cwd=tmp_path)
    result = json.loads((tmp_path / "serve-sfwiki32.json").read_text())
    assert result["identity"]["all"]["identical"] == result["identity"]["all"]["queries"]
    assert [r["route"] for r in result["latency"]] == ["all", "cori@2"] and "fault_drill" in result
    assert "## Fault drill" in (tmp_path / "README-actors.md").read_text()


def test_bench_reliability(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    run_script("serve/bench_reliability.py", [
        "--index", bench_index, "--data", data_root / "beir", "--out", tmp_path, "--k", "10", "--requests", "20",
        "--clients", "2", "--overload-clients", "4", "--overload-per-client", "2", "--drill-requests", "40",
        "--client-procs", "1", "--port", "8791",
        "--serve-args", "--shards-per-group 2 --actor-cpus 0.25 --java-heap 256m"], env=script_env, cwd=tmp_path)
    result = json.loads((tmp_path / "reliability-serve.json").read_text())
    assert result["bounded"]["requests"] == 20 and result["kill_drill"]["lost"] == 0
    assert "## Serving" in (tmp_path / "README-serve.md").read_text()


def test_bench_ray_serve(tmp_path: Path, bench_index: Path, data_root: Path, script_env: dict[str, str]) -> None:
    run_script("serve/bench_ray_serve.py", [
        "--index", bench_index, "--data", data_root / "beir", "--out", tmp_path, "--k", "10", "--requests", "20",
        "--clients", "2", "--overload-clients", "4", "--overload-per-client", "2", "--drill-requests", "40",
        "--client-procs", "1", "--port", "8792",
        "--serve-args", "--shards-per-group 2 --actor-cpus 0.25 --java-heap 256m"], env=script_env, cwd=tmp_path)
    result = json.loads((tmp_path / "ray-serve.json").read_text())
    assert list(result["engines"]) == ["serve", "starlette"]
    for engine in result["engines"].values():
        assert engine["bounded"]["requests"] == 20 and engine["bounded"]["lost"] == 0
        assert engine["kill_drill"]["lost"] == 0 and engine["left_after_sigterm"] == []
    readme = (tmp_path / "README.md").read_text()
    assert "Ray Serve / Starlette" in readme and "real multi-machine Ray cluster" in readme


def test_bench_build(tmp_path: Path, data_root: Path, script_env: dict[str, str]) -> None:
    work = tmp_path / "work"
    run_script("serve/bench_build.py", [
        "--sources", data_root / "beir", "--queries", data_root / "beir", "--shards", "2", "--nodes", "2",
        "--cpus-per-node", "1", "--threads", "1", "--work", work, "--out", tmp_path / "out",
        "--project-docs", "1000000", "--project-nodes", "1", "2"], env=script_env, cwd=tmp_path)
    result = json.loads((tmp_path / "out" / "build.json").read_text())
    assert result["identical_route_all_run"] and result["ray"]["nodes"] == 2 and len(result["shard_costs"]) == 2
    assert "## " in (tmp_path / "out" / "build.md").read_text()
    assert work.is_dir() and not any(work.iterdir())  # its own scratch removed, the folder kept
