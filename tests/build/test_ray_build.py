"""Distributed builds on a local multi-node Ray cluster (issue 21, item 1): SciFact into 16 shards
built by Ray tasks gives the single-machine build's index — byte-identical ``--route all`` run,
same manifest, same shard files — whether the shards are gathered through Ray or written to a
shared path; a worker node killed mid-build is survived by retrying its shards, or (retries off)
fails the build leaving nothing that opens as an index, and a rerun succeeds.

Runs only in a loopback-only network namespace (see conftest.py); ``make test`` does that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from selectsearch.data import open_corpus
from selectsearch.errors import SelectSearchError
from selectsearch.index.build import BuildConfig, build_index
from selectsearch.index.distributed import RayExecutor
from selectsearch.index.integrity import verify_index
from selectsearch.index.sharded import ShardedIndex

from .conftest import SHARDS, all_run

pytest.importorskip("ray", reason="Ray is not installed: pip install 'selectsearch[ray]'")

#: manifest keys that record when and how fast (or by which command line) a build ran
_VOLATILE = ("created", "command", "build_seconds")


def _manifest(index: Path) -> dict[str, Any]:
    body = json.loads((index / "manifest.json").read_text())
    for key in _VOLATILE:
        body.pop(key)
    body["partition"].pop("fit_seconds")
    return body


def _files(index: Path) -> dict[str, int]:
    # the manifest's size varies with its times and command line: compared above, without them
    return {p.relative_to(index).as_posix(): p.stat().st_size for p in sorted(index.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def assert_same_index(got: Path, reference: Path) -> None:
    """Same manifest (but times), same files and sizes, same bytes except Lucene's own files
    (each Lucene segment carries a random id, so two builds of one shard never match bytewise)."""
    assert _manifest(got) == _manifest(reference)
    files = _files(got)
    assert files == _files(reference)
    for name in files:
        if "/lucene/" not in name:
            assert (got / name).read_bytes() == (reference / name).read_bytes(), name
    problems, _ = verify_index(got)
    assert problems == []


def _build(scifact: Path, out: Path, executor: RayExecutor) -> Path:
    return build_index(open_corpus(scifact), out, BuildConfig(n_shards=SHARDS, threads=1), executor=executor)


def test_distributed_build_equals_the_single_machine_build(ray_cluster: Any, reference: tuple[Path, bytes],
                                                           scifact_dir: Path, tmp_path: Path) -> None:
    nodes: list[str] = []
    out = _build(scifact_dir, tmp_path / "ray-k16", RayExecutor(on_shard=lambda r: nodes.append(r["node"])))
    assert len(nodes) == SHARDS and len(set(nodes)) >= 2  # really spread over the nodes
    assert_same_index(out, reference[0])
    assert all_run(out, scifact_dir, tmp_path / "all.run") == reference[1]
    assert not out.with_name(out.name + ".partial").exists()


def test_shared_path_build_equals_the_single_machine_build(ray_cluster: Any, reference: tuple[Path, bytes],
                                                           scifact_dir: Path, tmp_path: Path) -> None:
    # every node of this cluster runs on this machine: tmp_path is a path they all share
    out = _build(scifact_dir, tmp_path / "shared-k16", RayExecutor(shared=True, work_dir=str(tmp_path / "work")))
    assert_same_index(out, reference[0])
    assert all_run(out, scifact_dir, tmp_path / "all.run") == reference[1]
    assert list((tmp_path / "work").iterdir()) == []  # scratch folders are removed


class _NodeKiller:
    """Kills ``node`` (SIGKILL, no clean shutdown) as soon as a shard task has started on it,
    which it sees by the task's scratch folder (named after the node) in ``work``."""

    def __init__(self, cluster: Any, node: Any, work: Path) -> None:
        self.cluster, self.node, self.work = cluster, node, work
        self.killed_in: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        tag = f"-{self.node.node_id[:12]}-"
        while not self._stop.is_set():
            started = [p.name for p in self.work.glob("selectsearch-*") if tag in p.name] if self.work.exists() else []
            if started:
                self.cluster.remove_node(self.node, allow_graceful=False)
                self.killed_in = started
                return
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def test_worker_node_killed_mid_build_its_shards_are_retried(ray_cluster: Any, reference: tuple[Path, bytes],
                                                             scifact_dir: Path, tmp_path: Path) -> None:
    victim = ray_cluster.add_node(num_cpus=1)
    ray_cluster.wait_for_nodes()
    work = tmp_path / "work"
    killer = _NodeKiller(ray_cluster, victim, work)
    nodes: list[str] = []
    try:
        out = _build(scifact_dir, tmp_path / "ray-k16",
                     RayExecutor(retries=3, work_dir=str(work), on_shard=lambda r: nodes.append(r["node"])))
    finally:
        killer.stop()
    assert killer.killed_in, "the victim node never started a shard: nothing was tested"
    # the killed task never cleaned up; its shard was built again on another node
    assert all((work / name).exists() for name in killer.killed_in)
    assert len(nodes) == SHARDS and victim.node_id not in nodes[-1:]
    assert_same_index(out, reference[0])
    assert all_run(out, scifact_dir, tmp_path / "all.run") == reference[1]


def test_worker_node_killed_without_retries_publishes_nothing_and_a_rerun_succeeds(
        ray_cluster: Any, reference: tuple[Path, bytes], scifact_dir: Path, tmp_path: Path) -> None:
    victim = ray_cluster.add_node(num_cpus=1)
    ray_cluster.wait_for_nodes()
    work = tmp_path / "work"
    out = tmp_path / "ray-k16"
    killer = _NodeKiller(ray_cluster, victim, work)
    try:
        with pytest.raises(SelectSearchError, match=r"shard \d+ was lost with its Ray worker or node"):
            _build(scifact_dir, out, RayExecutor(retries=0, work_dir=str(work)))
    finally:
        killer.stop()
    assert killer.killed_in
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()
    with pytest.raises(SelectSearchError):
        ShardedIndex.open(out)
    # the same build again, on the nodes that are left
    again = _build(scifact_dir, out, RayExecutor(retries=0, work_dir=str(work)))
    assert_same_index(again, reference[0])
    assert all_run(again, scifact_dir, tmp_path / "all.run") == reference[1]


def test_cli_joins_the_cluster_by_address(ray_cluster: Any, reference: tuple[Path, bytes], scifact_dir: Path,
                                          tmp_path: Path) -> None:
    out = tmp_path / "cli-k16"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    run = subprocess.run([sys.executable, "-m", "selectsearch", "-q", "index", str(scifact_dir), "--out", str(out),
                          "--shards", str(SHARDS), "--threads", "1", "--ray", ray_cluster.address, "--ray-shared"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["documents"] == 5183 and summary["shards"] == SHARDS
    assert_same_index(out, reference[0])
    assert all_run(out, scifact_dir, tmp_path / "all.run") == reference[1]
    # the cluster is still there for others: the command only disconnected from it
    import ray

    assert ray.is_initialized() and len([n for n in ray.nodes() if n["Alive"]]) >= 3
