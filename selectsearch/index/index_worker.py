"""Worker process that indexes a queue of shards (parallel builds where the Java helper that indexes on
Java threads, :func:`selectsearch.lucene.indexer.index_shards_in_jvm`, could not be compiled).

Run as ``python -m selectsearch.index.index_worker``: reads ``{"root", "shards", "memory_mb"}``
as JSON on stdin, indexes the shards one after the other in its own JVM, and prints one JSON
line per finished shard (or ``{"error": ...}`` and exits 1).

A worker dies with the process that started it: on Linux the kernel sends it ``SIGKILL`` when
its parent dies (``prctl(PR_SET_PDEATHSIG)``), and a watchdog thread exits when the parent pid
changes (the fallback elsewhere), so a killed build never leaves workers writing into its folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Queue
from typing import Any

from selectsearch import settings
from selectsearch.errors import SelectSearchError
from selectsearch.index.shard_files import index_one_shard

__all__ = ["die_with_parent", "main", "run_workers"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, *, poll_seconds: float = 0.5) -> None:
    """Make this process exit when process ``parent`` (the one that started it) is gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # prctl is in every Linux libc
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watchdog() -> None:
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watchdog, name="parent-watchdog", daemon=True).start()


def run_workers(root: Path, queues: list[list[int]], memory_mb: int) -> Iterator[dict[str, Any]]:
    """Start one worker per queue and yield each shard's result as soon as it is done.

    Raises:
        SelectSearchError: a worker failed (its error message is passed on).
    """
    env = {**os.environ, settings.JAVA_HEAP_ENV: settings.worker_heap(), settings.WORKER_PARENT_ENV: str(os.getpid())}
    procs = []
    for queue in queues:
        proc = subprocess.Popen([sys.executable, "-m", "selectsearch.index.index_worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"root": str(root), "shards": queue, "memory_mb": memory_mb}))
        proc.stdin.close()
        procs.append(proc)
    lines: Queue[tuple[int, str | None]] = Queue()

    def pump(i: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put((i, line))
        lines.put((i, None))

    for i, proc in enumerate(procs):
        threading.Thread(target=pump, args=(i, proc), daemon=True).start()
    try:
        open_workers = len(procs)
        while open_workers:
            i, line = lines.get()
            if line is None:
                open_workers -= 1
                continue
            result = json.loads(line)
            if "error" in result:
                raise SelectSearchError(result["error"])
            yield result
        for proc in procs:
            if proc.wait() != 0:
                err = proc.stderr.read() if proc.stderr else ""
                raise SelectSearchError(f"an indexing worker failed: {err.strip().splitlines()[-1:] or 'no output'}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def main() -> int:
    """Entry point of the worker process."""
    parent = settings.worker_parent()
    if parent is not None:
        die_with_parent(parent)
    from selectsearch.lucene.jvm import start_jvm

    job = json.loads(sys.stdin.read())
    try:
        start_jvm()
        for shard in job["shards"]:
            result = index_one_shard(Path(job["root"]), int(shard), int(job["memory_mb"]))
            print(json.dumps(result), flush=True)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # reported to the parent, which raises it
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
