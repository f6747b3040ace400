"""`selectsearch index --ray local` starts Ray with every port on 127.0.0.1 and no dashboard, and
nothing of Ray outlives the command — when it finishes, and when it is SIGKILLed mid-build, which
also leaves nothing that opens as an index (issue 21, item 3).

The command runs in a network namespace of its own (``unshare -n``, root) that also has a
non-loopback address and a default route through it — the situation of a machine on a network,
where Ray binds its servers to every interface or to that address unless told otherwise.
Traffic never leaves the namespace.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from selectsearch.errors import SelectSearchError
from selectsearch.index.sharded import ShardedIndex

pytest.importorskip("ray")

#: an address that exists only inside the test's own namespace
FAKE_ADDRESS = "10.254.254.1"


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def _probe(source: Path, out: Path, mode: str) -> dict[str, Any]:
    probe = Path(__file__).with_name("_ray_auto_probe.py")
    setup = (f"ip link set lo up && ip addr add {FAKE_ADDRESS}/32 dev lo && "
             f"ip route add default dev lo src {FAKE_ADDRESS}")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    cmd = f'{setup} && exec "{sys.executable}" "{probe}" "{source}" "{out}" {mode}'
    run = subprocess.run(["unshare", "-n", "sh", "-c", cmd], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return report


def _assert_loopback_only(report: dict[str, Any]) -> None:
    sockets = report["sockets"]
    assert any(s["process"].startswith(("gcs_server", "raylet")) for s in sockets), sockets  # Ray's own
    exposed = [s for s in sockets if not ipaddress.ip_address(s["address"]).is_loopback]
    assert exposed == [], exposed
    assert not any("dashboard" in name.lower() and "agent" not in name.lower() for name in report["tree"]), report


@pytest.mark.slow
@pytest.mark.skipif(not _can_unshare(), reason="needs root for 'unshare -n' (a private network namespace)")
def test_ray_auto_build_listens_on_loopback_only_and_leaves_nothing(scifact_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sf-k4"
    report = _probe(scifact_dir, out, "finish")
    assert report["returncode"] == 0, report
    assert json.loads(report["stdout"].strip().splitlines()[-1])["shards"] == 4
    _assert_loopback_only(report)
    assert report["left"] == {}, report
    assert ShardedIndex.open(out).n_shards == 4


@pytest.mark.slow
@pytest.mark.skipif(not _can_unshare(), reason="needs root for 'unshare -n' (a private network namespace)")
def test_ray_auto_build_killed_leaves_no_ray_and_no_index(scifact_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sf-k4"
    report = _probe(scifact_dir, out, "kill")
    assert report["returncode"] == -9, report  # killed mid-build, not finished before the kill
    _assert_loopback_only(report)
    assert report["left"] == {}, report
    assert not out.exists()
    with pytest.raises(SelectSearchError):
        ShardedIndex.open(out)
