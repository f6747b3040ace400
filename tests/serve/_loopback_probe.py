"""Start `selectsearch serve` (local Ray), list what its process tree listens on, SIGKILL it and
report what of that tree is left. Prints one JSON object. Run it inside a network namespace
(see test_serve_loopback.py): ``python tests/serve/_loopback_probe.py INDEX PORT``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def main(index: str, port: int) -> int:
    from selectsearch.serve.watchdog import _stat, descendants, listening_sockets

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    proc = subprocess.Popen([sys.executable, "-m", "selectsearch", "-q", "serve", index, "--port", str(port),
                             "--num-cpus", "1", "--shards-per-group", "6", "--actor-cpus", "0.25",
                             "--java-heap", "256m"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    out: dict[str, object] = {"serve_pid": proc.pid}
    t = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                if json.loads(r.read()).get("ok"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() - t > 120:
            proc.kill()
            out["error"] = "serve did not come up: " + (proc.stderr.read().decode()[-2000:] if proc.stderr else "")
            print(json.dumps(out))
            return 1
        time.sleep(0.5)
    out["ready_s"] = round(time.monotonic() - t, 1)
    time.sleep(2.0)  # let every agent open its ports
    out["sockets"] = listening_sockets(proc.pid)
    tree = descendants(proc.pid)
    out["tree"] = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid in tree
                   if os.path.exists(f"/proc/{pid}")}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t = time.monotonic()
    left: list[int] = list(tree)
    while left and time.monotonic() - t < 30:
        time.sleep(0.5)
        left = [pid for pid, start in tree.items() if (st := _stat(pid)) is not None and st[1] == start]
    out["left_after_kill"] = {pid: out["tree"].get(pid, "?") for pid in left}  # type: ignore[union-attr]
    out["gone_after_s"] = round(time.monotonic() - t, 1)
    for pid in left:  # never leave anything behind, whatever the outcome
        os.kill(pid, signal.SIGKILL)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
