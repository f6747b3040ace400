"""Latency clients warm up until the process's other threads (the JVM's JIT compiler) are quiet."""

from __future__ import annotations

import threading
import time

from selectsearch.bench.harness import warm_until_settled


def _spin(stop: threading.Event, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while not stop.is_set() and time.perf_counter() < end:
        sum(range(1000))  # CPU on another thread, as a compiler thread's


def _work(_: int) -> None:
    sum(range(20_000))


def test_warm_up_outlasts_a_busy_background_thread_then_stops() -> None:
    stop = threading.Event()
    busy = threading.Thread(target=_spin, args=(stop, 1.5), daemon=True)
    busy.start()
    t = time.perf_counter()
    try:
        done = warm_until_settled(_work, at_least=10, max_seconds=20)
    finally:
        stop.set()
    elapsed = time.perf_counter() - t
    assert elapsed >= 1.5 and done >= 10  # not settled while the other thread burned CPU
    assert elapsed < 10  # and stopped soon after it went quiet


def test_warm_up_is_bounded_and_quiet_processes_need_one_round() -> None:
    stop = threading.Event()
    threading.Thread(target=_spin, args=(stop, 60.0), daemon=True).start()
    t = time.perf_counter()
    try:
        warm_until_settled(_work, at_least=1, max_seconds=1.5)
    finally:
        stop.set()
    assert 1.5 <= time.perf_counter() - t < 6
    time.sleep(0.2)
    t = time.perf_counter()
    assert warm_until_settled(_work, at_least=3) >= 3
    assert time.perf_counter() - t < 4  # one round of about a second
