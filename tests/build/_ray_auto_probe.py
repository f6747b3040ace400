"""Run `selectsearch index --ray local`, list what its process tree listens on while it builds, and
report what of that tree is left once it has finished (mode ``finish``) or been SIGKILLed in the
middle of the build (mode ``kill``). Prints one JSON object. Run it inside a network namespace
(see test_ray_auto_loopback.py): ``python tests/build/_ray_auto_probe.py SOURCE OUT MODE``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(source: str, out: str, mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # files, not pipes: an undrained pipe would block the command once Ray has written enough
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "selectsearch", "-q", "index", source, "--out", out, "--shards",
                                 "4", "--ray", "local"], env=env, stdout=stdout, stderr=stderr)
        report = _watch(proc, mode)
        for key, f in (("stdout", stdout), ("stderr", stderr)):
            f.seek(0)
            report[key] = f.read().decode(errors="replace")[-2000:]
    print(json.dumps(report))
    return 0


def _watch(proc: subprocess.Popen[bytes], mode: str) -> dict[str, object]:
    from selectsearch.serve.watchdog import _stat, descendants, listening_sockets

    sockets: dict[tuple[str, str, int], dict[str, object]] = {}
    tree: dict[int, int] = {}
    names: dict[int, str] = {}
    raylet_seen = None
    deadline = time.monotonic() + 200  # a hung command is killed and reported, never left running
    while proc.poll() is None:
        if time.monotonic() > deadline:
            os.kill(proc.pid, signal.SIGKILL)
            break
        for s in listening_sockets(proc.pid):
            sockets[(str(s["proto"]), str(s["address"]), int(str(s["port"])))] = s
        for pid, start in descendants(proc.pid).items():
            tree.setdefault(pid, start)
            with contextlib.suppress(OSError):  # gone already
                names.setdefault(pid, Path(f"/proc/{pid}/comm").read_text().strip())
        if raylet_seen is None and "raylet" in names.values():
            raylet_seen = time.monotonic()
        if mode == "kill" and raylet_seen is not None and time.monotonic() - raylet_seen > 3.0:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait()
    report: dict[str, object] = {"returncode": proc.returncode, "sockets": list(sockets.values()),
                                 "tree": sorted(set(names.values()))}
    t = time.monotonic()
    left = list(tree)
    while left and time.monotonic() - t < 30:
        left = [pid for pid, start in tree.items() if (st := _stat(pid)) is not None and st[1] == start]
        time.sleep(0.5)
    report["left"] = {pid: names.get(pid, "?") for pid in left}
    report["gone_after_s"] = round(time.monotonic() - t, 1)
    for pid in left:  # never leave anything behind, whatever the outcome
        os.kill(pid, signal.SIGKILL)
    return report


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
