"""Measurement primitives every benchmark uses: timers, percentiles, CPU time, memory, machine load.

One place for them so that every benchmark measures the same way (a p95 is the same
``np.percentile`` everywhere, a "CPU ms" is always a ``time.thread_time`` or
``time.process_time`` difference) and so that a benchmark script only says WHAT it measures.

Example:
    >>> from selectsearch.bench.measure import percentiles, time_each
    >>> sorted(percentiles([1.0, 2.0, 3.0]))
    ['mean_ms', 'p50_ms', 'p95_ms', 'p99_ms']
    >>> len(time_each(lambda x: x * 2, [1, 2, 3]))
    3
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Stopwatch", "TreeRss", "cpu_ms", "limit_threads", "load_average", "machine", "median",
           "percentiles", "reset_peak_rss", "rss_mb", "time_each", "timed", "wall_s"]

T = TypeVar("T")


# ---------------------------------------------------------------------------- statistics
def percentiles(values: Iterable[float], qs: Sequence[int] = (50, 95, 99), *, mean: bool = True
                ) -> dict[str, float]:
    """``{"p50_ms": ..., "p95_ms": ..., "p99_ms": ..., "mean_ms": ...}`` of millisecond values.

    ``np.percentile`` with its default (linear) interpolation, the definition every committed
    result used. ``qs`` chooses the percentiles, ``mean=False`` leaves the mean out.
    """
    import numpy as np

    v = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    out = {f"p{q}_ms": float(np.percentile(v, q)) for q in qs}
    if mean:
        out["mean_ms"] = float(v.mean())
    return out


def median(values: Iterable[float]) -> float:
    """The median (``statistics.median``: the middle value, or the mean of the two middle ones)."""
    return float(statistics.median(values))


# ---------------------------------------------------------------------------- timers
@dataclass
class Stopwatch:
    """Wall clock and CPU time of a block: ``with Stopwatch() as sw: ...; sw.wall_ms, sw.cpu_ms``.

    ``clock`` picks the CPU clock: ``"thread"`` (``time.thread_time``: the calling thread only,
    JNI included — Lucene searches on the calling thread) or ``"process"``
    (``time.process_time``: every thread of the process, e.g. the JVM's garbage collector).
    Seconds are kept as measured (``wall_s``, ``cpu_s``); the ``_ms`` properties scale them.
    """

    clock: str = "thread"
    wall_s: float = 0.0
    cpu_s: float = 0.0
    _w: float = field(default=0.0, repr=False)
    _c: float = field(default=0.0, repr=False)

    def _cpu(self) -> float:
        return time.thread_time() if self.clock == "thread" else time.process_time()

    def __enter__(self) -> Stopwatch:
        self._c = self._cpu()
        self._w = time.perf_counter()  # last: the wall window holds no clock read but its own
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._w
        self.cpu_s = self._cpu() - self._c

    @property
    def wall_ms(self) -> float:
        return self.wall_s * 1000.0

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000.0


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    """``fn(*args, **kwargs)`` and its wall time in milliseconds (``time.perf_counter``)."""
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - t) * 1000.0


def time_each(fn: Callable[[Any], object], items: Iterable[Any]) -> list[float]:
    """Wall milliseconds of ``fn(item)`` for each item, one call at a time (a batch of one)."""
    times = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - t) * 1000.0)
    return times


def wall_s(fn: Callable[[], object]) -> float:
    """Wall seconds of ``fn()``."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def cpu_ms(*, clock: str = "process") -> float:
    """The current CPU clock in milliseconds (``process`` or ``thread``); subtract two readings."""
    return (time.thread_time() if clock == "thread" else time.process_time()) * 1000.0


# ---------------------------------------------------------------------------- the process and the machine
def limit_threads() -> None:
    """One thread for the numeric libraries of a worker process (unless the caller set them)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TOKENIZERS_PARALLELISM"):
        os.environ.setdefault(var, "1" if var != "TOKENIZERS_PARALLELISM" else "false")


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB, from /proc (0 where unavailable)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0, 0.0
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = float(rest.split()[0]) / 1024.0
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def reset_peak_rss() -> None:
    """Start a new peak of :func:`rss_mb` (Linux ``clear_refs``; elsewhere the peak covers the whole process)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: how busy the shared machine was (say it next to timings)."""
    return list(os.getloadavg())


def machine() -> str:
    """Platform string of this machine, as the reports print it."""
    return platform.platform()


class TreeRss:
    """Samples the resident memory of a process and all its descendants (from /proc); ``peak`` in bytes.

    Example:
        >>> import subprocess, sys  # doctest: +SKIP
        >>> proc = subprocess.Popen([sys.executable, "-c", "pass"])  # doctest: +SKIP
        >>> with TreeRss(proc.pid) as rss:  # doctest: +SKIP
        ...     proc.wait()
        >>> rss.peak  # doctest: +SKIP
    """

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid, self.every, self.peak, self._stop = pid, every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _children(self) -> dict[int, list[int]]:
        kids: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                kids.setdefault(ppid, []).append(int(entry))
        return kids

    def _rss(self, pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            kids = self._children()
            stack, total = [self.pid], 0
            while stack:
                p = stack.pop()
                total += self._rss(p)
                stack.extend(kids.get(p, []))
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
