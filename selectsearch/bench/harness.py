"""Process harness of the query cost benchmark: searchers measured in fresh processes.

Three ways to run queries and measure them (:mod:`selectsearch.bench.measure` does the
measuring):

* :func:`measure_interleaved` — every configuration in ONE process, interleaved per query in a
  seeded random order (slow periods of a shared machine hit all configurations alike);
* :func:`measure_batched` — the same, but each configuration routes and searches the whole query
  set as one batch (what ``evaluate`` and ``batch_search`` do), configurations interleaved per pass;
* :func:`concurrent_clients` — N client processes searching at once (closed loop), each with its
  own JVM over the same memory-mapped index, started together at a barrier;
* :func:`in_fresh_process` — any function in one fresh spawned process (a JVM of its own).

A configuration is ``(index path, route, rerank model or None)``; router options reach the
router as :func:`selectsearch.route.make_router` takes them (:class:`RouterSetup`: the run's
options and the names of the routers in the run, as ``evaluate()`` passes them).

Example:
    >>> from selectsearch.bench.harness import in_fresh_process, measure_interleaved  # doctest: +SKIP
    >>> out = in_fresh_process(measure_interleaved, [("indexes/scifact-k16", "cori@2", None)],  # doctest: +SKIP
    ...                        [("q1", "vitamin d")], k=10)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NamedTuple

from selectsearch.bench.measure import limit_threads, percentiles, reset_peak_rss, rss_mb

__all__ = ["RouterSetup", "concurrent_clients", "in_fresh_process", "measure_batched", "measure_interleaved",
           "one_query"]


class RouterSetup(NamedTuple):
    """Router options of one run (``KEY`` or ``NAME.KEY``) and the routers of that run."""

    options: Mapping[str, Any]
    run: Collection[str]


def _apply_router_options(searcher: Any, route: str, setup: RouterSetup | None) -> Any:
    """``searcher`` with its router rebuilt with ``setup``'s options (unchanged without options)."""
    if setup is None or not setup.options:
        return searcher
    from selectsearch.route import make_router

    searcher.router = make_router(route, searcher.index, run=tuple(setup.run), **dict(setup.options))
    return searcher


def _open(index_path: str, route: str, setup: RouterSetup | None, rerank: str | None) -> Any:
    from selectsearch.search import SelectiveSearcher

    reranker = None
    if rerank:
        from selectsearch.rerank import load_reranker

        reranker = load_reranker(rerank)
    return _apply_router_options(SelectiveSearcher.open(index_path, route=route, reranker=reranker), route, setup)


class _SharedIndexes:
    """Searchers of one index share its Lucene readers, as in a server: each index is opened once
    (JVM and readers too, before anything is timed) and every route derives from it."""

    def __init__(self) -> None:
        self._bases: dict[str, Any] = {}

    def searcher(self, path: str, route: str) -> Any:
        from selectsearch.search import SelectiveSearcher

        if path not in self._bases:
            self._bases[path] = SelectiveSearcher.open(path)
            self._bases[path].lucene  # noqa: B018  (opens the JVM and the readers)
        return self._bases[path].with_route(route)


def one_query(searcher: Any, query: Any, k: int, *, in_engine: bool = True) -> tuple[Any, dict[str, float]]:
    """Route and search one query; per-stage wall ms and thread-CPU ms.

    Routing is timed on its own; search, merge (and rerank) run in one call whose thread CPU is
    split by the stages' wall-clock shares from the trace. A searcher that routes inside its
    engine (:attr:`~selectsearch.search.SelectiveSearcher.routes_in_engine`: cori@M with the
    compiled engine) is measured as users call it, one ``batch_search`` call: its routing is part
    of ``search`` and ``route`` is 0 (the row says ``routed_in_engine``); ``in_engine=False``
    routes it in Python instead, to time routing on its own.
    """
    if in_engine and searcher.routes_in_engine:
        route_wall = route_cpu = 0.0
        w, c = time.perf_counter(), time.thread_time()
        result = searcher.batch_search([query], k=k)[query.query_id]
    else:
        w, c = time.perf_counter(), time.thread_time()
        selected = searcher.router.select([query], searcher.budget)
        route_wall, route_cpu = (time.perf_counter() - w) * 1000.0, (time.thread_time() - c) * 1000.0
        w, c = time.perf_counter(), time.thread_time()
        result = searcher.search_selected([query], selected, k=k, route_ms=route_wall)[query.query_id]
    rest_wall, rest_cpu = (time.perf_counter() - w) * 1000.0, (time.thread_time() - c) * 1000.0
    t = result.trace.timings_ms
    stages = {s: float(t.get(s, 0.0)) for s in ("search", "merge", "rerank") if s in t}
    share = sum(stages.values()) or 1.0
    row = {"route_wall_ms": route_wall, "route_cpu_ms": route_cpu, "wall_ms": route_wall + rest_wall,
           "cpu_ms": route_cpu + rest_cpu, "docs_scored": float(result.trace.docs_scored),
           "shards": float(len(result.trace.shards)),
           "routed_in_engine": float(bool(result.trace.extra.get("routed_in_engine")))}
    for s, v in stages.items():
        row[f"{s}_wall_ms"] = v
        row[f"{s}_cpu_ms"] = rest_cpu * v / share
    return result, row


def measure_interleaved(configs: Sequence[tuple[str, str, str | None]], queries: Sequence[tuple[str, str]], *,
                        k: int, warmup_passes: int = 1, passes: int = 2, seed: int = 0,
                        router_setups: Sequence[RouterSetup | None] | None = None,
                        route_in_engine: bool = True) -> dict[str, Any]:
    """Measure every configuration ``(index path, route, rerank model)`` in this process, interleaved.

    For each query, every configuration runs once, in a seeded random order, so slow periods of
    a shared machine hit all configurations alike and their differences are paired. After
    ``warmup_passes`` unrecorded passes over all queries (JIT, page cache), and then on until the
    JVM's compiler has settled (:func:`warm_until_settled`, at most
    :data:`INTERLEAVED_WARMUP_SECONDS`: with many configurations interleaved, C2 kept recompiling
    the engine's large methods for as much CPU as the queries for the first 10,000 of them, a
    start-up cost charged to every query otherwise), ``passes`` recorded ones; per
    (configuration, query) the pass with the least thread CPU is kept (timing noise is one-sided).
    Searchers of one index share its Lucene readers, as in a server.
    ``router_setups`` (aligned with ``configs``) gives each configuration's router options;
    ``route_in_engine`` lets a searcher that can route inside its engine do so (see
    :func:`one_query`; ``False`` times every router on its own).

    Returns per configuration the per-query rows of the kept pass, the first recorded pass's wall
    latencies, the run and the selected shards; and for the process the CPU of the JVM's own
    threads relative to the query thread's (after settling), the seconds spent settling, and the
    peak resident set.
    """
    import random

    from selectsearch.evaluation import results_to_run
    from selectsearch.types import Query, SearchResult

    limit_threads()
    setups = list(router_setups) if router_setups is not None else [None] * len(configs)
    t0 = time.perf_counter()
    shared = _SharedIndexes()
    searchers = []
    for (path, route, rerank), setup in zip(configs, setups, strict=True):
        if rerank:
            searchers.append(_open(path, route, setup, rerank))
            continue
        searchers.append(_apply_router_options(shared.searcher(path, route), route, setup))
    qs = [Query(q, t) for q, t in queries]
    for searcher in searchers:
        searcher.router.select(qs[:1], searcher.budget)  # lazy router state (CSI, term stats, centroids)
    setup_ms = (time.perf_counter() - t0) * 1000.0
    rng = random.Random(seed)
    order = list(range(len(configs)))
    kept: list[list[dict[str, float] | None]] = [[None] * len(qs) for _ in configs]
    first_wall: list[list[float]] = [[0.0] * len(qs) for _ in configs]
    runs: list[dict[str, SearchResult]] = [{} for _ in configs]
    shards: list[list[list[int]]] = [[[] for _ in qs] for _ in configs]
    thread_total = process_total = 0.0
    settle_s = 0.0
    for p in range(warmup_passes + passes):
        record = p >= warmup_passes
        if p == warmup_passes:
            if warmup_passes:  # then on until the JIT has settled: steady-state cost, not start-up
                w = time.perf_counter()
                warm_until_settled(lambda i: [one_query(searchers[ci], qs[i % len(qs)], k, in_engine=route_in_engine)
                                              for ci in order],
                                   at_least=0, max_seconds=INTERLEAVED_WARMUP_SECONDS)
                settle_s = time.perf_counter() - w
            reset_peak_rss()
        p0, c0 = time.process_time(), time.thread_time()
        for qi, q in enumerate(qs):
            rng.shuffle(order)
            for ci in order:
                result, row = one_query(searchers[ci], q, k, in_engine=route_in_engine)
                if not record:
                    continue
                best = kept[ci][qi]
                if best is None or row["cpu_ms"] < best["cpu_ms"]:
                    kept[ci][qi] = row
                if p == warmup_passes:
                    first_wall[ci][qi] = row["wall_ms"]
                    runs[ci][q.query_id] = result  # made a run after the timing
                    shards[ci][qi] = list(result.trace.shards)
        if record:
            process_total += time.process_time() - p0
            thread_total += time.thread_time() - c0
    _, peak = rss_mb()
    return {"configs": [{"rows": kept[ci], "wall_ms": first_wall[ci], "run": results_to_run(runs[ci]),
                         "shards": shards[ci]}
                        for ci in range(len(configs))],
            "jvm_share": max(0.0, process_total - thread_total) / max(thread_total, 1e-9),
            "setup_ms": setup_ms, "peak_rss_mb": peak, "passes": passes, "warmup_passes": warmup_passes,
            "settle_s": settle_s}


def measure_batched(configs: Sequence[tuple[str, str]], queries: Sequence[tuple[str, str]], *, k: int,
                    warmup_passes: int = 1, passes: int = 3, seed: int = 0) -> dict[str, Any]:
    """Routing and search CPU of every configuration ``(index path, route)`` over the whole query
    set as ONE batch, in this process.

    A batch is routed by one ``router.select`` call and searched by one ``search_selected`` call,
    as :meth:`~selectsearch.search.SelectiveSearcher.batch_search` (and so ``evaluate``) does: the
    per-query overheads of routing (numpy calls, the analyzer's and the encoder's set-up) and of
    the search (crossing into Java) are paid once per batch. Each pass runs every configuration
    once, in a seeded random order, on the queries in a new seeded order (a router that remembers
    its last batch must not answer from memory); per configuration the pass with the least
    thread CPU of each stage is kept.

    Returns per configuration ``route_cpu_ms`` and ``search_cpu_ms`` per query (thread CPU of the
    batch divided by the number of queries), ``route_process_cpu_ms`` (the routing's CPU on every
    thread of the process: a check that no router works on threads of its own, which the thread
    clock misses; it also counts whatever the JVM's compiler and collector threads do meanwhile,
    so it is an upper bound) and the selected shards of the last pass.
    """
    import random

    from selectsearch.types import Query

    limit_threads()
    shared = _SharedIndexes()
    searchers = [shared.searcher(path, route) for path, route in configs]
    qs = [Query(q, t) for q, t in queries]
    rng = random.Random(seed)
    order = list(range(len(configs)))
    best = [[float("inf"), float("inf"), float("inf")] for _ in configs]
    shards: list[list[list[int]]] = [[] for _ in configs]
    for p in range(warmup_passes + passes):
        rng.shuffle(order)
        # a new query order per pass: routers that remember their last batch (CORI, Taily) would
        # otherwise answer a repeated batch from memory and their cost would vanish
        batch = rng.sample(qs, len(qs))
        for ci in order:
            searcher = searchers[ci]
            c, pc = time.thread_time(), time.process_time()
            selected = searcher.router.select(batch, searcher.budget)
            route_cpu, route_process_cpu = time.thread_time() - c, time.process_time() - pc
            c = time.thread_time()
            searcher.search_selected(batch, selected, k=k)
            search_cpu = time.thread_time() - c
            if p >= warmup_passes:
                best[ci] = [min(best[ci][0], route_cpu), min(best[ci][1], search_cpu),
                            min(best[ci][2], route_process_cpu)]
                position = {q.query_id: i for i, q in enumerate(batch)}
                shards[ci] = [list(selected[position[q.query_id]]) for q in qs]
    n = max(len(qs), 1)
    return {"configs": [{"route_cpu_ms": r * 1000.0 / n, "search_cpu_ms": s * 1000.0 / n,
                         "route_process_cpu_ms": rp * 1000.0 / n, "shards": shards[ci]}
                        for ci, (r, s, rp) in enumerate(best)],
            "passes": passes, "warmup_passes": warmup_passes, "queries": len(qs)}


#: at most this long a latency client warms up waiting for the JIT to settle (see :func:`warm_until_settled`)
CLIENT_WARMUP_SECONDS = 30.0
#: at most this long :func:`measure_interleaved` warms up, after its warm-up passes, for the JIT to settle
INTERLEAVED_WARMUP_SECONDS = 120.0


def warm_until_settled(run_one: Callable[[int], object], *, at_least: int, max_seconds: float = CLIENT_WARMUP_SECONDS,
                       idle_share: float = 0.1) -> int:
    """Call ``run_one(i)`` for ``i = 0, 1, ...`` until the process's other threads are quiet.

    A fresh JVM's C2 compiler keeps a core busy for several seconds of searching (measured per
    thread: as much CPU as the queries themselves after 900 of them, still 15% after 3,000), a
    start-up cost the per-query CPU of a running server does not have. So warm-up runs in rounds
    of at least a second and stops after the first round in which threads other than this one
    (JIT compiler, garbage collector) used at most ``idle_share`` of this thread's CPU, once
    ``at_least`` calls are done, or after ``max_seconds``. Returns the number of calls.
    """
    done, started = 0, time.perf_counter()
    while True:
        p0, c0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
        while done < at_least or time.perf_counter() - w0 < 1.0:
            run_one(done)
            done += 1
        mine = time.thread_time() - c0
        others = time.process_time() - p0 - mine
        if others <= idle_share * mine or time.perf_counter() - started >= max_seconds:
            return done


def _client(index_path: str, route: str, queries: Sequence[tuple[str, str]], k: int, warmup: int, offset: int,
            barrier: Any, setup: RouterSetup | None, rerank: str | None) -> dict[str, Any]:
    from selectsearch.types import Query

    limit_threads()
    searcher = _open(index_path, route, setup, rerank)
    searcher.lucene  # noqa: B018
    qs = [Query(q, t) for q, t in queries]
    qs = qs[offset:] + qs[:offset]
    if qs:
        warm_until_settled(lambda i: one_query(searcher, qs[i % len(qs)], k), at_least=warmup)
    barrier.wait()
    start = time.time()
    p0 = time.process_time()
    latencies = []
    for q in qs:
        w = time.perf_counter()
        one_query(searcher, q, k)
        latencies.append((time.perf_counter() - w) * 1000.0)
    return {"start": start, "end": time.time(), "latencies_ms": latencies,
            "process_cpu_ms": (time.process_time() - p0) * 1000.0, "peak_rss_mb": rss_mb()[1]}


def in_fresh_process(fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run ``fn`` in one fresh spawned process and return its result."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(fn, args, kwargs)
        return result


def concurrent_clients(n: int, index_path: str, route: str, queries: Sequence[tuple[str, str]], *, k: int,
                       warmup: int, router_setup: RouterSetup | None = None, rerank: str | None = None
                       ) -> dict[str, Any]:
    """``n`` client processes searching at once (closed loop); latency percentiles and throughput.

    Each client warms up with at least ``warmup`` queries and until its JVM's JIT has settled
    (:func:`warm_until_settled`), then runs every query once.
    """
    import multiprocessing as mp

    import numpy as np

    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    barrier = manager.Barrier(n)
    step = max(1, len(queries) // n)
    with ctx.Pool(n) as pool:
        handles = [pool.apply_async(_client, (index_path, route, queries, k, warmup, i * step, barrier,
                                              router_setup, rerank)) for i in range(n)]
        parts = [h.get() for h in handles]
    manager.shutdown()
    lat = np.concatenate([p["latencies_ms"] for p in parts])
    span = max(p["end"] for p in parts) - min(p["start"] for p in parts)
    return {"clients": n, "queries": len(lat), **percentiles(lat), "qps": float(len(lat) / span) if span else 0.0,
            "process_cpu_ms_per_query": float(sum(p["process_cpu_ms"] for p in parts) / len(lat)),
            "peak_rss_mb": float(max(p["peak_rss_mb"] for p in parts))}
