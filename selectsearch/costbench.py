"""Query cost benchmark: what a query costs, stage by stage, exhaustive vs selective search.

Run by ``selectsearch bench DEF.toml`` when the definition says ``kind = "cost"``. Side by side,
on the same queries: exhaustive BM25 over all shards, exhaustive BM25 on an unsharded index
(an index built with ``shards = 1``: one Anserini Lucene index, what pyserini's
``LuceneSearcher`` searches), and selective search for every route and budget of the
definition. Per configuration:

* **CPU per query by stage** — routing, search, merge (and rerank when configured). Routing is
  timed on its own with ``time.thread_time`` (the thread's CPU, JNI calls included: Lucene runs
  on the calling thread). Search and merge run in one call; their thread CPU is measured
  together and split by their wall-clock shares. **Total** CPU is the whole process's CPU time
  (``time.process_time``) over the measured queries — it adds the JVM's own threads (garbage
  collection, JIT compilation) that no stage owns.
* **Wall latency** p50/p95/p99 at 1 client and at N concurrent clients (N separate processes,
  each with its own JVM over the same memory-mapped index, starting together at a barrier),
  and queries per second.
* **Documents scored** (documents in the searched shards, the selective-search cost measure)
  and **peak memory** (the process's peak resident set during the measured queries — JVM heap
  plus the index pages touched; reset with ``/proc/self/clear_refs`` before measuring).
* **Quality** (nDCG@10, R@100 with ir-measures), so the cheapest budget reaching a share of
  exhaustive quality can be read off.

Every configuration runs in a fresh process, one after the other (one heavy job at a time),
after ``warmup`` queries (JIT, page cache). A **cost model** is fitted to the measurements and
extrapolates total CPU per query to 10M and 100M documents (assumptions in
:func:`fit_cost_model` and in the report).

Example:
    >>> from selectsearch.bench import run_benchmark  # doctest: +SKIP
    >>> run_benchmark("eval/serve/cost-sfwiki32.toml", data_root=Path("../shared/data"),  # doctest: +SKIP
    ...               indexes_root=Path("indexes"), out=Path("eval/results/cost"))
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.errors import SelectSearchError

__all__ = ["fit_cost_model", "measure_interleaved", "query_postings", "run_cost_benchmark"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- worker processes
def _limit_threads() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TOKENIZERS_PARALLELISM"):
        os.environ.setdefault(var, "1" if var != "TOKENIZERS_PARALLELISM" else "false")


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size in MiB, from /proc (0 where unavailable)."""
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


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):  # resets VmHWM (Linux); elsewhere the peak covers the whole process
        Path("/proc/self/clear_refs").write_text("5")


def _open(index_path: str, route: str, router_options: Mapping[str, Any] | None, rerank: str | None) -> Any:
    from selectsearch.search import SelectiveSearcher

    reranker = None
    if rerank:
        from selectsearch.rerank import load_reranker

        reranker = load_reranker(rerank)
    return SelectiveSearcher.open(index_path, route=route, router_options=dict(router_options or {}),
                                  reranker=reranker)


def _one_query(searcher: Any, query: Any, k: int) -> tuple[Any, dict[str, float]]:
    """Route and search one query; per-stage wall ms and thread-CPU ms."""
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
           "shards": float(len(result.trace.shards))}
    for s, v in stages.items():
        row[f"{s}_wall_ms"] = v
        row[f"{s}_cpu_ms"] = rest_cpu * v / share
    return result, row


def measure_interleaved(configs: Sequence[tuple[str, str, str | None]], queries: Sequence[tuple[str, str]], *,
                        k: int, warmup_passes: int = 1, passes: int = 2, seed: int = 0) -> dict[str, Any]:
    """Measure every configuration ``(index path, route, rerank model)`` in this process, interleaved.

    For each query, every configuration runs once, in a seeded random order, so slow periods of
    a shared machine hit all configurations alike and their differences are paired. After
    ``warmup_passes`` unrecorded passes over all queries (JIT, page cache), ``passes`` recorded
    ones; per (configuration, query) the pass with the least thread CPU is kept (timing noise is
    one-sided). Searchers of one index share its Lucene readers, as in a server.

    Returns per configuration the per-query rows of the kept pass, the first recorded pass's wall
    latencies, the run and the selected shards; and for the process the CPU of the JVM's own
    threads relative to the query thread's, and the peak resident set.
    """
    import random

    from selectsearch.evaluation import results_to_run
    from selectsearch.search import SelectiveSearcher
    from selectsearch.types import Query, SearchResult

    _limit_threads()
    t0 = time.perf_counter()
    bases: dict[str, Any] = {}
    searchers = []
    for path, route, rerank in configs:
        if rerank:
            searchers.append(_open(path, route, None, rerank))
            continue
        if path not in bases:
            bases[path] = SelectiveSearcher.open(path)
            bases[path].lucene  # noqa: B018  (opens the JVM and the readers)
        searchers.append(bases[path].with_route(route))
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
    for p in range(warmup_passes + passes):
        record = p >= warmup_passes
        if p == warmup_passes:
            _reset_peak_rss()
        p0, c0 = time.process_time(), time.thread_time()
        for qi, q in enumerate(qs):
            rng.shuffle(order)
            for ci in order:
                result, row = _one_query(searchers[ci], q, k)
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
    _, peak = _rss_mb()
    return {"configs": [{"rows": kept[ci], "wall_ms": first_wall[ci], "run": results_to_run(runs[ci]),
                         "shards": shards[ci]}
                        for ci in range(len(configs))],
            "jvm_share": max(0.0, process_total - thread_total) / max(thread_total, 1e-9),
            "setup_ms": setup_ms, "peak_rss_mb": peak, "passes": passes, "warmup_passes": warmup_passes}


def _client(index_path: str, route: str, queries: Sequence[tuple[str, str]], k: int, warmup: int, offset: int,
            barrier: Any, router_options: Mapping[str, Any] | None, rerank: str | None) -> dict[str, Any]:
    from selectsearch.types import Query

    _limit_threads()
    searcher = _open(index_path, route, router_options, rerank)
    searcher.lucene  # noqa: B018
    qs = [Query(q, t) for q, t in queries]
    qs = qs[offset:] + qs[:offset]
    for q in qs[:warmup]:
        _one_query(searcher, q, k)
    barrier.wait()
    start = time.time()
    p0 = time.process_time()
    latencies = []
    for q in qs:
        w = time.perf_counter()
        _one_query(searcher, q, k)
        latencies.append((time.perf_counter() - w) * 1000.0)
    return {"start": start, "end": time.time(), "latencies_ms": latencies,
            "process_cpu_ms": (time.process_time() - p0) * 1000.0, "peak_rss_mb": _rss_mb()[1]}


def _in_process(fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run ``fn`` in one fresh spawned process and return its result."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(fn, args, kwargs)
        return result


def _concurrent(n: int, index_path: str, route: str, queries: Sequence[tuple[str, str]], *, k: int, warmup: int,
                router_options: Mapping[str, Any] | None, rerank: str | None) -> dict[str, Any]:
    """``n`` client processes searching at once (closed loop); latency percentiles and throughput."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    barrier = manager.Barrier(n)
    step = max(1, len(queries) // n)
    with ctx.Pool(n) as pool:
        handles = [pool.apply_async(_client, (index_path, route, queries, k, warmup, i * step, barrier,
                                              router_options, rerank)) for i in range(n)]
        parts = [h.get() for h in handles]
    manager.shutdown()
    lat = np.concatenate([p["latencies_ms"] for p in parts])
    span = max(p["end"] for p in parts) - min(p["start"] for p in parts)
    return {"clients": n, "queries": len(lat), **_percentiles(lat), "qps": float(len(lat) / span) if span else 0.0,
            "process_cpu_ms_per_query": float(sum(p["process_cpu_ms"] for p in parts) / len(lat)),
            "peak_rss_mb": float(max(p["peak_rss_mb"] for p in parts))}


def _percentiles(values: np.ndarray | Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95)),
            "p99_ms": float(np.percentile(v, 99)), "mean_ms": float(v.mean())}


# ---------------------------------------------------------------------------- summary and model
def summarise(measured: Mapping[str, Any], jvm_share: float, n_docs: int) -> dict[str, Any]:
    """Mean per-query cost of one configuration of :func:`measure_interleaved`."""
    rows = measured["rows"]
    n = len(rows)

    def mean(key: str) -> float:
        return float(np.mean([r.get(key, 0.0) for r in rows])) if rows else 0.0

    staged = [s for s in ("search", "merge", "rerank") if any(f"{s}_cpu_ms" in r for r in rows)]
    cpu = {"route": mean("route_cpu_ms"), **{s: mean(f"{s}_cpu_ms") for s in staged}}
    wall = {"route": mean("route_wall_ms"), **{s: mean(f"{s}_wall_ms") for s in staged}}
    thread = mean("cpu_ms")
    return {"queries": n, "cpu_ms": cpu, "thread_cpu_ms": thread, "jvm_other_cpu_ms": thread * jvm_share,
            "total_cpu_ms": thread * (1.0 + jvm_share), "wall_ms": wall,
            "latency_interleaved": _percentiles(measured["wall_ms"]),
            "docs_scored": mean("docs_scored"), "fraction_scored": mean("docs_scored") / n_docs if n_docs else 0.0,
            "shards": mean("shards")}


def query_postings(index: Any, queries: Sequence[tuple[str, str]], shard_lists: Sequence[Sequence[int]]
                   ) -> np.ndarray:
    """Postings of each query's (distinct, analysed) terms in its searched shards.

    This is the work a term-at-a-time BM25 evaluation would do (Lucene's dynamic pruning skips
    part of it), taken from the per-shard term statistics of the index (built once if missing).
    """
    from selectsearch.index.termstats import Analyzer, ensure_term_stats

    stats = ensure_term_stats(index)
    analyzer = Analyzer(stats.analyzer_class)
    out = np.zeros(len(queries), dtype=np.float64)
    for i, ((_, text), shards) in enumerate(zip(queries, shard_lists, strict=True)):
        ids = np.unique(stats.term_ids(analyzer(text)))
        if len(ids) and len(shards):
            out[i] = float(stats.df[:, ids][list(shards)].sum())
    return out


def fit_cost_model(results: Sequence[Mapping[str, Any]], n_docs: int, sizes: Sequence[int] = (10_000_000, 100_000_000)
                   ) -> dict[str, Any]:
    """Fit per-query search CPU to the postings it touches and extrapolate to larger collections.

    Model (CPU ms per query; ``P`` = postings of the query's terms in the searched shards, see
    :func:`query_postings`; ``N`` = documents in the collection):

    * search + merge thread CPU of one query = ``a + c_p * P``, least squares over every
      (query, configuration) pair on the sharded index. ``a`` is the fixed cost of a query at
      the measured shard count (parsing, term-statistics lookups in every shard, collecting and
      mapping ``k`` hits across JNI, Python); ``c_p`` the cost per posting.
    * at size ``N`` every configuration's ``P`` grows like ``N`` (same fraction of the collection
      scored, same term distribution), so its CPU is
      ``(route(N) + a + c_p * P * N / N0) * (1 + jvm)``, ``jvm`` being that configuration's
      measured share of CPU in the JVM's own threads (garbage collection, JIT).
    * ``route(N)`` stays constant for routers whose cost depends on the number of shards and the
      vocabulary (centroid, CORI, Taily; the shard count is kept) and grows like ``N`` for those
      that search a sample of the collection (ReDDE, Rank-S: the sample is a fixed share).
    * the unsharded index gets its own fixed cost ``a1`` (measured CPU minus ``c_p * P``).

    Assumptions: same document and query distributions at every size; Lucene's dynamic pruning
    no better at scale (conservative for both sides); shard count as measured; the fraction
    selective search needs for the quality target as measured (studies of larger collections
    found it shrinks, e.g. Kulkarni & Callan 2015).
    """
    sharded = [r for r in results if r.get("kind") == "sharded" and not r.get("rerank") and r.get("postings")]
    if not sharded:
        raise SelectSearchError("the cost model needs measured configurations on a sharded index")
    x = np.concatenate([np.asarray(r["postings"], dtype=np.float64) for r in sharded])
    y = np.concatenate([np.asarray(r["search_merge_cpu"], dtype=np.float64) for r in sharded])
    design = np.stack([np.ones_like(x), x], axis=1)
    (a, c_p), *_ = np.linalg.lstsq(design, y, rcond=None)
    a, c_p = float(a), max(float(c_p), 0.0)
    r2 = 1.0 - float(((y - (a + c_p * x)) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12))

    def row(r: Mapping[str, Any], label: str, fixed: float) -> dict[str, Any]:
        s = r["summary"]
        jvm = s["jvm_other_cpu_ms"] / max(s["thread_cpu_ms"], 1e-9)
        p = float(np.mean(r["postings"]))
        sample_based = r["router"] in ("redde", "ranks")
        out = {"config": label, "fraction": s["fraction_scored"], "postings": p, "route_cpu_ms": s["cpu_ms"]["route"],
               "fixed_ms": fixed, "jvm_share": jvm, "measured_total_cpu_ms": s["total_cpu_ms"],
               "model_total_cpu_ms": (s["cpu_ms"]["route"] + fixed + c_p * p) * (1.0 + jvm)}
        for n in sizes:
            scale = n / n_docs
            route = s["cpu_ms"]["route"] * (scale if sample_based else 1.0)
            out[f"cpu_ms_{n}"] = (route + fixed + c_p * p * scale) * (1.0 + jvm)
        return out

    rows = []
    for r in results:
        if r.get("rerank") or not r.get("postings"):
            continue
        if r["kind"] == "unsharded":
            s = r["summary"]
            fixed = s["cpu_ms"]["search"] + s["cpu_ms"].get("merge", 0.0) - c_p * float(np.mean(r["postings"]))
            rows.append(row(r, "exhaustive, unsharded index", fixed))
        elif r["router"] == "all":
            rows.insert(0, row(r, f"exhaustive, {r['n_shards']} shards", a))
        elif r.get("target_budget"):
            rows.append(row(r, r["route"], a))
    return {"a_ms": a, "c_p_ns_per_posting": c_p * 1e6, "r2": r2, "points": len(x), "n_docs_measured": n_docs,
            "sizes": list(sizes), "rows": rows}


# ---------------------------------------------------------------------------- the benchmark
def run_cost_benchmark(spec: Mapping[str, Any], *, definition: str, indexes: Mapping[str, Path], out: Path,
                       queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], command: str,
                       progress: bool = False, report_only: bool = False) -> list[Path]:
    """Measure every configuration of a ``kind = "cost"`` definition; write JSON, Markdown, plots.

    ``indexes`` maps each ``[[index]]`` name to its built folder. The definition's keys:
    ``k`` (hits per query, default 100), ``warmup`` (queries, default 30), ``max_queries``
    (first n queries, default all), ``concurrency`` (client counts, default ``[1, 2]``),
    ``latency_routes`` (``"INDEX:ROUTE"`` configurations measured under concurrency), ``target``
    (share of exhaustive nDCG@10, default 0.97), ``rerank`` (a model for
    ``selectsearch.rerank.load_reranker``, measured on the ``latency_routes``) and per index ``role``
    (``"unsharded"`` for the single-index baseline).
    """
    from tqdm import tqdm

    from selectsearch.evaluation import parse_measures
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import parse_route

    json_file = out / f"{spec['name']}.json"
    if report_only:
        result = json.loads(json_file.read_text())
        result["notes"] = list(spec.get("notes", result.get("notes", [])))  # notes may be edited afterwards
        return _write_report(result, out)
    k = int(spec.get("k", 100))
    warmup = int(spec.get("warmup", 30))
    passes = int(spec.get("passes", 2))
    target = float(spec.get("target", 0.97))
    items = list(queries.items())[: int(spec["max_queries"])] if spec.get("max_queries") else list(queries.items())
    measures = parse_measures(["nDCG@10", "R@100"])
    import ir_measures

    evaluator = ir_measures.evaluator(measures, qrels)
    rerank = spec.get("rerank")
    configs: list[tuple[str, str, str, str | None]] = []  # (index name, kind, route, rerank)
    for idx in spec["index"]:
        kind = "unsharded" if idx.get("role") == "unsharded" or int(idx["shards"]) == 1 else "sharded"
        n_shards = int(idx["shards"])
        for r in idx["routes"]:
            for s in parse_route(r).expand(n_shards):
                configs.append((idx["name"], kind, str(s), None))
    if rerank:
        configs += [(name, kind, route, rerank) for name, kind, route, _ in list(configs)
                    if f"{name}:{route}" in spec.get("latency_routes", [])]
    t_start = time.time()
    log.info("measuring %d configurations interleaved (%d queries, 1 warm-up + %d passes)", len(configs), len(items),
             passes)
    measured = _in_process(measure_interleaved, [(str(indexes[n]), r, rr) for n, _, r, rr in configs], items, k=k,
                           warmup_passes=1 if warmup else 0, passes=passes)
    results: list[dict[str, Any]] = []
    for (name, kind, route, rr), one in zip(configs, measured["configs"], strict=True):
        index = ShardedIndex.open(indexes[name])
        aggregate = evaluator.calc_aggregate(one["run"])
        metrics = {str(m): float(aggregate.get(m, 0.0)) for m in measures}
        results.append({"index": name, "kind": kind, "route": route, "router": parse_route(route).name,
                        "budget": parse_route(route).budget, "rerank": rr, "n_docs": index.n_docs,
                        "n_shards": index.n_shards, "metrics": metrics,
                        "summary": summarise(one, measured["jvm_share"], index.n_docs), "shards": one["shards"],
                        "search_merge_cpu": [round(q.get("search_cpu_ms", 0.0) + q.get("merge_cpu_ms", 0.0), 4)
                                             for q in one["rows"]]})
    # latency, throughput and memory: each configuration alone, 1..N client processes
    latency: list[dict[str, Any]] = []
    runs = [(item, int(n)) for item in spec.get("latency_routes", []) for n in spec.get("concurrency", [1, 2])]
    for item, n in tqdm(runs, desc="latency runs", unit="run", disable=not progress):
        name, _, route = item.partition(":")
        part = _concurrent(n, str(indexes[name]), route, items, k=k, warmup=min(warmup, 100),
                           router_options=None, rerank=None)
        latency.append({"index": name, "route": route, **part})
    _mark_targets(results, target)
    _add_postings(results, indexes, items)
    sharded = [r for r in results if r["kind"] == "sharded" and not r["rerank"]]
    model = fit_cost_model(results, sharded[0]["n_docs"]) if sharded else {}
    result = {"benchmark": spec["name"], "command": command, "definition": definition,
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": time.time() - t_start, "k": k,
              "warmup": warmup, "passes": passes, "queries": len(items), "target": target,
              "cpu_count": os.cpu_count(), "jvm_share": measured["jvm_share"],
              "interleaved_peak_rss_mb": measured["peak_rss_mb"],
              "load_average_at_end": list(os.getloadavg()), "rerank": rerank or None,
              "rerank_note": None if rerank else "no reranker: the definition names none",
              "notes": list(spec.get("notes", [])), "results": results, "latency": latency, "model": model}
    out.mkdir(parents=True, exist_ok=True)
    json_file.write_text(json.dumps(result, indent=2))
    return [json_file, *_write_report(result, out)]


def _add_postings(results: list[dict[str, Any]], indexes: Mapping[str, Path], items: Sequence[tuple[str, str]]
                  ) -> None:
    """Per query postings touched (``r["postings"]``) from the first sharded index's term statistics;
    the unsharded index holds the same documents, so its queries touch exhaustive search's postings."""
    from selectsearch.index.sharded import ShardedIndex

    sharded = next((r for r in results if r["kind"] == "sharded"), None)
    if sharded is None:
        return
    index = ShardedIndex.open(indexes[sharded["index"]])
    everything = query_postings(index, items, [list(range(index.n_shards))] * len(items))
    for r in results:
        if r["kind"] == "unsharded":
            r["postings"] = everything.tolist()
        elif r["index"] == sharded["index"]:
            r["postings"] = query_postings(index, items, r["shards"]).tolist()
        r["summary"]["postings"] = float(np.mean(r["postings"])) if r.get("postings") else 0.0


def _mark_targets(results: list[dict[str, Any]], target: float) -> None:
    """Flag, per router on the sharded index, the smallest budget reaching ``target`` x exhaustive nDCG@10."""
    exhaustive = next((r for r in results if r["kind"] == "sharded" and r["router"] == "all" and not r["rerank"]),
                      None)
    if exhaustive is None:
        return
    goal = target * exhaustive["metrics"]["nDCG@10"]
    by_router: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if r["kind"] == "sharded" and r["router"] not in ("all",) and not r["rerank"]:
            by_router.setdefault(r["router"], []).append(r)
    for family in by_router.values():
        family.sort(key=lambda r: r["summary"]["fraction_scored"])
        for r in family:
            if r["metrics"]["nDCG@10"] >= goal:
                r["target_budget"] = True
                break


# ---------------------------------------------------------------------------- report
def _write_report(result: Mapping[str, Any], out: Path) -> list[Path]:
    rows = result["results"]
    name = result["benchmark"]
    plots = _plots(result, out)
    exhaustive = next((r for r in rows if r["kind"] == "sharded" and r["router"] == "all" and not r["rerank"]), None)
    single = next((r for r in rows if r["kind"] == "unsharded"), None)
    lines = [f"# Query cost: {name}", "",
             f"Command: `{result['command']}` ({result['date']}, {result['seconds']:.0f} s). Definition: "
             f"`{result['definition']}`.", "",
             f"{result['queries']} queries, k={result['k']} hits per query. All configurations are measured in "
             "ONE process (searchers of an index share its Lucene readers, as in a server), interleaved: for "
             "each query every configuration runs once, in a seeded random order, so the slow periods of this "
             f"shared {result['cpu_count']}-core machine (load average at the end: "
             f"{', '.join(f'{x:.1f}' for x in result['load_average_at_end'])}) hit all of them alike. One "
             f"warm-up pass over all queries, then {result['passes']} recorded passes; per (configuration, query) "
             "the pass with the least CPU is kept. Compare rows of one run, not absolute numbers across runs.", "",
             "CPU columns are milliseconds of CPU per query: `route`, `search`, `merge` are the query thread's "
             "CPU (`time.thread_time`, JNI included: Lucene searches on the calling thread; search and merge "
             "split by their wall-clock shares); `total` adds the JVM's own threads (garbage collection, JIT), "
             f"measured over the whole run as {result['jvm_share']:.0%} of the query thread's CPU and charged "
             "in proportion. `docs` = documents in the searched shards; `frac` = their share of the collection; "
             "`P` = postings of the query's terms in the searched shards; wall p50/p95 from the interleaved run "
             "(latency, throughput and memory of single configurations are in the next section).", ""]
    if result.get("rerank_note"):
        lines += [f"Reranking: {result['rerank_note']}.", ""]
    elif result.get("rerank"):
        lines += [f"Reranking (`+rerank` rows): `{result['rerank']}` over the top {result['k']} hits, measured on the "
                  "latency routes; its CPU is the `rerank` column.", ""]
    for note in result.get("notes", []):
        lines += [f"Note: {note}", ""]
    if exhaustive is not None:
        goal = result["target"] * exhaustive["metrics"]["nDCG@10"]
        lines += ["## Acceptance", "",
                  f"Target: {result['target']:.0%} of exhaustive nDCG@10 ({exhaustive['metrics']['nDCG@10']:.4f}) = "
                  f"{goal:.4f}. Per router, the smallest measured budget reaching it:", "",
                  "| router | budget | nDCG@10 | frac scored | ≤ 15%? | total CPU ms (route) | exhaustive, "
                  f"{exhaustive['n_shards']} shards | exhaustive, unsharded | below both? |",
                  "|---|---|---|---|---|---|---|---|---|"]
        ex_cpu = exhaustive["summary"]["total_cpu_ms"]
        single_cpu = single["summary"]["total_cpu_ms"] if single is not None else float("inf")
        for r in rows:
            if r.get("target_budget"):
                s = r["summary"]
                below = s["total_cpu_ms"] < min(ex_cpu, single_cpu)
                lines.append(f"| {r['router']} | {r['budget']} | {r['metrics']['nDCG@10']:.4f} | "
                             f"{s['fraction_scored']:.3f} | {'yes' if s['fraction_scored'] <= 0.15 else 'no'} | "
                             f"{s['total_cpu_ms']:.2f} ({s['cpu_ms']['route']:.2f}) | {ex_cpu:.2f} | "
                             f"{single_cpu:.2f} | {'yes' if below else 'no'} |")
        reached = {r["router"] for r in rows if r.get("target_budget")}
        missed = sorted({r["router"] for r in rows if r["kind"] == "sharded" and r["router"] != "all"} - reached)
        if missed:
            lines += ["", f"Never reaching the target within the measured budgets: {', '.join(missed)}."]
        lines.append("")
    lines += ["## Cost per query", "", f"![cpu by stage]({name}-cpu.png)", "",
              "| index | route | nDCG@10 | R@100 | shards | docs | frac | P | route | search | merge | rerank | "
              "total CPU | wall p50 ms | wall p95 ms |", "|" + "---|" * 15]
    for r in rows:
        s = r["summary"]
        c, lat = s["cpu_ms"], s["latency_interleaved"]
        route = r["route"] + (" +rerank" if r["rerank"] else "") + (" (unsharded)" if r["kind"] == "unsharded" else "")
        lines.append(f"| {r['index']} | {route} | {r['metrics']['nDCG@10']:.4f} | {r['metrics']['R@100']:.4f} | "
                     f"{s['shards']:.1f} | {s['docs_scored']:.0f} | {s['fraction_scored']:.3f} | "
                     f"{s.get('postings', 0):,.0f} | {c['route']:.2f} | "
                     f"{c.get('search', 0):.2f} | {c.get('merge', 0):.2f} | {c.get('rerank', 0):.2f} | "
                     f"{s['total_cpu_ms']:.2f} | {lat['p50_ms']:.1f} | {lat['p95_ms']:.1f} |")
    if single is not None and exhaustive is not None:
        lines += ["", f"Sharding overhead of exhaustive search: {exhaustive['summary']['total_cpu_ms']:.2f} ms CPU "
                      f"over {exhaustive['n_shards']} shards vs {single['summary']['total_cpu_ms']:.2f} ms on the "
                      "unsharded index (same documents, same scores)."]
    if result["latency"]:
        lines += ["", "## Latency, throughput and memory", "", f"![latency]({name}-latency.png)", "",
                  "Each configuration alone: N client processes, each with its own JVM over the same memory-mapped "
                  "index, each running all queries in a closed loop (rotated start) after a warm-up, started "
                  "together. CPU ms/query = the client processes' CPU (all threads) per query; peak MB = the largest "
                  "client's peak resident set (JVM heap + index pages touched + router state).", "",
                  "| index | route | clients | p50 ms | p95 ms | p99 ms | q/s | CPU ms/query | peak MB |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for x in result["latency"]:
            lines.append(f"| {x['index']} | {x['route']} | {x['clients']} | {x['p50_ms']:.1f} | {x['p95_ms']:.1f} | "
                         f"{x['p99_ms']:.1f} | {x['qps']:.0f} | {x['process_cpu_ms_per_query']:.2f} | "
                         f"{x.get('peak_rss_mb', 0):.0f} |")
    model = result.get("model")
    if model:
        sizes = model["sizes"]
        lines += ["", "## Cost model and extrapolation", "", f"![model]({name}-model.png)", "",
                  f"Fitted on the sharded index ({model['n_docs_measured']:,} documents) over {model['points']:,} "
                  "(query, configuration) pairs: search + merge CPU of a query = a + c_p·P, P = postings of the "
                  "query's terms in the searched shards (from the index's per-shard term statistics). "
                  f"a = {model['a_ms']:.2f} ms (fixed per query), c_p = {model['c_p_ns_per_posting']:.2f} ns per "
                  f"posting, R² = {model['r2']:.3f} (per-query timings on a shared machine are noisy; the means "
                  "below are what matters). At N documents: (route(N) + a + c_p·P·N/N0)·(1 + JVM-thread share); "
                  "route(N) constant for centroid/CORI/Taily, linear in N for ReDDE/Rank-S (central sample = "
                  "fixed share of the collection).", "",
                  "| configuration | frac scored | postings P | route CPU ms | fixed ms | JVM share | measured CPU ms "
                  "| model CPU ms | " + " | ".join(f"CPU ms at {n / 1e6:.0f}M docs" for n in sizes) + " |",
                  "|---|---|---|---|---|---|---|---|" + "---|" * len(sizes)]
        for m in model["rows"]:
            lines.append(f"| {m['config']} | {m['fraction']:.3f} | {m['postings']:,.0f} | {m['route_cpu_ms']:.2f} | "
                         f"{m['fixed_ms']:.2f} | {m['jvm_share']:.0%} | {m['measured_total_cpu_ms']:.2f} | "
                         f"{m['model_total_cpu_ms']:.2f} | " + " | ".join(f"{m[f'cpu_ms_{n}']:.0f}" for n in sizes)
                         + " |")
        crossing = _crossover(model)
        if crossing:
            lines += ["", "Where selective search's total CPU drops below exhaustive search's (model): "
                      + "; ".join(f"{cfg}: {_size(n, model['n_docs_measured'])}" for cfg, n in crossing) + "."]
        lines += ["", "Assumptions: the same document and query distributions at every size (postings per "
                      "document constant, so postings scanned grow linearly with the documents searched); Lucene's "
                      "dynamic pruning no better at scale (conservative for both); the shard count stays as "
                      "measured, shards grow; the fraction selective search needs for the target stays as measured "
                      "(larger collections have been found to need smaller fractions); one process per query, so "
                      "no network or fan-out cost (a distributed deployment adds per-shard-group RPC time, see "
                      "eval/results/serve/)."]
    md = out / "README.md"
    md.write_text("\n".join(lines) + "\n")
    return [md, *plots]


def _size(n: float, n0: int) -> str:
    if not np.isfinite(n):
        return "never (it grows at least as fast)"
    return "already at the measured size" if n <= n0 else f"about {n:,.0f} documents"


def _crossover(model: Mapping[str, Any]) -> list[tuple[str, float]]:
    """Collection size at which each selective configuration becomes cheaper than the cheapest
    exhaustive one, from the fitted model (both linear in N)."""
    sizes = model["sizes"]
    n0 = model["n_docs_measured"]

    def line(m: Mapping[str, Any]) -> tuple[float, float]:  # cpu(N) = u + v*N, from two model points
        y1, y2 = m[f"cpu_ms_{sizes[0]}"], m[f"cpu_ms_{sizes[1]}"]
        v = (y2 - y1) / (sizes[1] - sizes[0])
        return y1 - v * sizes[0], v

    exhaustive = [line(m) for m in model["rows"] if m["config"].startswith("exhaustive")]
    out = []
    for m in model["rows"]:
        if m["config"].startswith("exhaustive") or not exhaustive:
            continue
        u, v = line(m)
        best = None
        for eu, ev in exhaustive:  # N where u + vN = eu + ev N
            n = (u - eu) / (ev - v) if ev > v else float("inf")
            best = max(best or 0.0, max(n, float(n0)))
        out.append((m["config"], best if best is not None else float("inf")))
    return out


def _save(fig: Any, path: Path) -> Path:
    """Lay out, write (110 dpi) and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plots(result: Mapping[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = result["benchmark"]
    rows = result["results"]
    written = []
    # CPU by stage (stacked), with the JVM's other threads on top
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(rows)), 4.5))
    labels = [r["route"] + (" +rr" if r["rerank"] else "") + (" (1 idx)" if r["kind"] == "unsharded" else "")
              for r in rows]
    bottom = np.zeros(len(rows))
    for stage in ("route", "search", "merge", "rerank"):
        vals = np.array([r["summary"]["cpu_ms"].get(stage, 0.0) for r in rows])
        if vals.any():
            ax.bar(labels, vals, bottom=bottom, label=stage)
            bottom += vals
    other = np.array([r["summary"]["jvm_other_cpu_ms"] for r in rows])
    ax.bar(labels, other, bottom=bottom, label="JVM threads (GC, JIT)", color="lightgrey")
    ax.set_ylabel("CPU ms per query")
    ax.tick_params(axis="x", rotation=70, labelsize=8)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    written.append(_save(fig, out / f"{name}-cpu.png"))
    # quality against CPU
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for router in sorted({r["router"] for r in rows}):
        pts = sorted((r["summary"]["total_cpu_ms"], r["metrics"]["nDCG@10"]) for r in rows
                     if r["router"] == router and r["kind"] == "sharded" and not r["rerank"])
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, label=router if router != "all" else "exhaustive (32 shards)")
    for r in rows:
        if r["kind"] == "unsharded":
            ax.plot([r["summary"]["total_cpu_ms"]], [r["metrics"]["nDCG@10"]], marker="*", markersize=11,
                    linestyle="none", color="black", label="exhaustive (unsharded)")
    ax.set_xlabel("total CPU ms per query")
    ax.set_ylabel("nDCG@10")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    written.append(_save(fig, out / f"{name}-quality-cpu.png"))
    if result["latency"]:
        fig, ax = plt.subplots(figsize=(6, 4.2))
        keys = sorted({(x["index"], x["route"]) for x in result["latency"]})
        for index, route in keys:
            pts = sorted((x["clients"], x["p95_ms"]) for x in result["latency"] if (x["index"], x["route"]) == (index,
                                                                                                            route))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{index}:{route}")
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("p95 latency ms")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        written.append(_save(fig, out / f"{name}-latency.png"))
    model = result.get("model")
    if model:
        fig, ax = plt.subplots(figsize=(6, 4.2))
        mx = [model["n_docs_measured"], *model["sizes"]]
        for m in model["rows"]:
            my = [m["measured_total_cpu_ms"], *(m[f"cpu_ms_{n}"] for n in model["sizes"])]
            ax.plot(mx, my, marker="o", label=m["config"])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("documents in the collection")
        ax.set_ylabel("CPU ms per query (first point measured)")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=7)
        written.append(_save(fig, out / f"{name}-model.png"))
    return written
