"""`selectsearch serve` with a local Ray instance listens on loopback only, and nothing of it
outlives a SIGKILL (issue 17, item 19).

The serve process runs in a network namespace of its own (``unshare -n``, root) that also has a
non-loopback address and a default route through it — the situation of a machine on a network,
where Ray used to bind its GCS, raylet, workers and metrics to every interface and its agents to
that address. Traffic never leaves the namespace. Ray's temp dir holds a stale cluster address,
which a local instance must ignore (it once made `serve` fail: ``address=None`` tries to join it).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("ray")

#: a documentation-range address that exists only inside the test's own namespace
FAKE_ADDRESS = "10.254.254.1"


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_unshare(), reason="needs root for 'unshare -n' (a private network namespace)")
def test_serve_listens_on_loopback_only_and_leaves_nothing_after_sigkill(serve_index: Path) -> None:
    probe = Path(__file__).with_name("_loopback_probe.py")
    setup = (f"ip link set lo up && ip addr add {FAKE_ADDRESS}/32 dev lo && "
             f"ip route add default dev lo src {FAKE_ADDRESS}")
    root = str(Path(__file__).resolve().parents[2])
    # Ray's temp dir holds a stale "last cluster" file, as a killed run leaves it: a local instance
    # must start anyway, not try to join it (short path: Ray's sockets live under it)
    ray_tmp = Path(tempfile.mkdtemp(prefix="ssray"))
    (ray_tmp / "ray_current_cluster").write_text("127.0.0.1:1\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "RAY_TMPDIR": str(ray_tmp)}
    cmd = f'{setup} && exec "{sys.executable}" "{probe}" "{serve_index}" 18555'
    try:
        run = subprocess.run(["unshare", "-n", "sh", "-c", cmd], capture_output=True, text=True, timeout=240, env=env)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    sockets = report["sockets"]
    assert any(s["port"] == 18555 for s in sockets), sockets  # the HTTP server
    assert any(s["process"].startswith(("gcs_server", "raylet")) for s in sockets), sockets  # Ray's own
    exposed = [s for s in sockets if not ipaddress.ip_address(s["address"]).is_loopback]
    assert exposed == [], exposed
    assert report["left_after_kill"] == {}, report
