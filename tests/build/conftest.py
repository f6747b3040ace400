"""Fixtures of the distributed-build tests: SciFact, its single-machine reference index and
``--route all`` run, and a local multi-node Ray cluster on loopback.

Ray uses the machine's non-loopback address for its own traffic, so the cluster tests run only
inside a network namespace that has nothing but loopback (``make test`` does this with
``unshare -n``); elsewhere they are skipped with the command to run them. Set
``SELECTSEARCH_RAY_TESTS=1`` to run them anyway.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from selectsearch.data.sources import resolve_data_dir

#: what the reference and every distributed build of SciFact use (only the executor differs)
SHARDS = 16


def loopback_only() -> bool:
    """True inside a network namespace whose only interface is loopback."""
    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


def require_loopback_namespace() -> None:
    if not loopback_only() and os.environ.get("SELECTSEARCH_RAY_TESTS") != "1":
        pytest.skip("Ray cluster tests run in a loopback-only network namespace: "
                    "unshare -n sh -c 'ip link set lo up && exec python -m pytest tests/build' (as root; make test "
                    "does this), or set SELECTSEARCH_RAY_TESTS=1")


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    path = resolve_data_dir() / "scifact"
    if not (path / "corpus.jsonl").exists():
        pytest.skip(f"SciFact not found at {path}")
    return path


def all_run(index: Path, scifact: Path, out: Path) -> bytes:
    """The bytes of the ``selectsearch search --route all`` run of SciFact's test queries on ``index``."""
    from selectsearch.cli import main

    assert main(["-q", "search", str(index), "--queries", str(scifact), "--split", "test", "--route", "all",
                 "--k", "1000", "--output", str(out)]) == 0
    return out.read_bytes()


@pytest.fixture(scope="module")
def reference(scifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The single-machine build of SciFact into 16 k-means shards, and its ``--route all`` run."""
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    root = tmp_path_factory.mktemp("reference")
    index = build_index(open_corpus(scifact_dir), root / "scifact-k16", BuildConfig(n_shards=SHARDS, threads=1))
    return index, all_run(index, scifact_dir, root / "all.run")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A head and two worker nodes (1 CPU each) on 127.0.0.1; the test process is the driver."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'selectsearch[ray]'")
    require_loopback_namespace()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
