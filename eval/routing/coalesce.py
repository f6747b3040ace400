"""Routing CPU per query when requests that wait for the routing thread are routed together.

The serving coordinator routes on one thread and routes every request waiting for it in one
router call (``selectsearch.serve.coalesce.RouteCoalescer``). This measures what that saves, in
one process and without Ray: ``C`` clients (``--concurrency``) each send the ``--split`` queries,
one query per request and one request at a time, in an order of their own, through ONE
coalescer over the index's ``--route`` router. Per ``C``: the routing thread's CPU per query, the
requests per router call, and each request's time from arrival to its shards (wall: waiting
for the thread, then routing). ``C`` = 1 is one query at a time, what ``eval/routing/cost.py``
calls per-query routing. Each ``C`` is run twice: coalesced, and one request per router call
(the routing thread before coalescing). Beside them, the BM25 search CPU of the same queries (one query per
call; per query the least of ``--passes``, as ``cost.py`` keeps it), for the ratio routing / search.

A timing benchmark: run it alone on an idle machine (the report prints the load average).

Example (from the repository root; the index is tuned as ``tune-route`` tunes it, on a linked copy):
  cp -rl indexes/sfwiki-kmeans32 /tmp/sfwiki32-tuned
  .venv/bin/selectsearch tune-route /tmp/sfwiki32-tuned --data ../shared/data/scifact --routers centroid,cori,knn
  OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python eval/routing/coalesce.py /tmp/sfwiki32-tuned \\
      --data ../shared/data/scifact --out eval/results/routing/coalesce-sfwiki32
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selectsearch.bench.measure import load_average, machine, percentiles
from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import add_collection_arguments, command_line, script_parser


def _run(searcher: Any, spec: Any, queries: list[Any], concurrency: int, seed: int, max_queries: int) -> dict[str, Any]:
    """Every client sends every query once; the routing thread's CPU and each request's wall time."""
    from selectsearch.serve.coalesce import RouteCoalescer

    cpu = [0.0]
    router, budget = searcher.router, searcher.budget

    def route(qs: Sequence[Any], spec: Any) -> Any:
        c = time.thread_time()
        selected = router.select(qs, budget)
        cpu[0] += time.thread_time() - c
        return [list(s) for s in selected], 0.0, None

    coalescer = RouteCoalescer(route, max_queries=max_queries)
    waits: list[float] = []

    async def client(order: list[Any]) -> None:
        for q in order:
            t = time.perf_counter()
            await coalescer.route([q], spec)
            waits.append((time.perf_counter() - t) * 1000.0)

    async def clients() -> None:
        rng = random.Random(seed)
        await asyncio.gather(*(client(rng.sample(queries, len(queries))) for _ in range(concurrency)))

    try:
        asyncio.run(clients())
    finally:
        coalescer.close()
    n = concurrency * len(queries)
    return {"concurrency": concurrency, "queries": n, "route_cpu_ms": cpu[0] * 1000.0 / n,
            "calls": coalescer.calls, "requests_per_call": coalescer.requests / max(coalescer.calls, 1),
            "request_ms": percentiles(waits)}


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    add_collection_arguments(parser)
    parser.add_argument("--route", default="hybrid@2", help="route whose router is measured (default hybrid@2)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--k", type=int, default=1000, help="depth of the search measured beside")
    parser.add_argument("--passes", type=int, default=2, help="recorded passes; the least CPU is kept")
    parser.add_argument("--out", type=Path, required=True, help="OUT.json and OUT.md")
    args = parser.parse_args(argv)

    from selectsearch.bench.measure import limit_threads
    from selectsearch.data import load_queries
    from selectsearch.route import parse_route
    from selectsearch.search import SelectiveSearcher
    from selectsearch.serve.coalesce import MAX_COALESCED_QUERIES
    from selectsearch.types import Query

    limit_threads()
    queries = [Query(q, t) for q, t in load_queries(args.data, split=args.split).items()]
    spec = parse_route(args.route)
    searcher = SelectiveSearcher.open(args.index, args.route)
    searcher.router.select(queries[:1], searcher.budget)  # lazy state (tables, JVM) before timing
    selected = searcher.router.select(queries, searcher.budget)
    load_before = load_average()
    least = [float("inf")] * len(queries)  # per query, the least CPU of the recorded passes (as cost.py)
    for p in range(args.passes + 1):  # one unrecorded warm-up pass
        for i, (q, s) in enumerate(zip(queries, selected, strict=True)):
            c = time.thread_time()
            searcher.search_selected([q], [s], k=args.k)
            if p:
                least[i] = min(least[i], time.thread_time() - c)
    search_cpu = sum(least) * 1000.0 / len(queries)
    runs = []
    for concurrency in args.concurrency:
        for mode, cap in (("coalesced", MAX_COALESCED_QUERIES), ("one by one", 1)):  # cap 1: the thread before
            _run(searcher, spec, queries, concurrency, seed=1, max_queries=cap)  # warm-up
            best = min((_run(searcher, spec, queries, concurrency, seed=0, max_queries=cap)
                        for _ in range(args.passes)), key=lambda r: r["route_cpu_ms"])
            runs.append({"mode": mode, **best, "route_over_search": best["route_cpu_ms"] / search_cpu})
            print(f"C={concurrency} {mode}: {best['route_cpu_ms']:.3f} ms/query, {best['requests_per_call']:.1f} "
                  "requests/call", file=sys.stderr, flush=True)
    load_after = load_average()
    result = {"command": command_line(__file__, argv, prefix="OMP_NUM_THREADS=1 PYTHONPATH=. " + sys.executable + " "),
              "machine": machine(), "load_average": {"before": load_before, "after": load_after},
              "index": str(args.index), "route": args.route, "queries": len(queries), "k": args.k,
              "search_cpu_ms": search_cpu, "runs": runs}
    write_json(args.out.with_suffix(".json"), result, indent=1, end="\n")
    lines = [f"# Coalesced routing: `{args.route}` on {Path(args.index).name}", "", "```sh", result["command"], "```",
             "", f"{len(queries)} `{args.split}` queries, one per request, sent by C clients one request at a time "
             f"through one `RouteCoalescer` (the serving coordinator's routing thread); least routing CPU of "
             f"{args.passes} runs per C. BM25 search of the same queries at k={args.k}, one per call: "
             f"{search_cpu:.3f} ms CPU per query. Machine: {result['machine']}; load average before {load_before}, "
             f"after {load_after}.", "",
             "| clients C | routing | CPU ms/query | routing / search | requests per router call | "
             "request wait + routing ms p50 / p95 |", "|---|---|---|---|---|---|"]
    for r in runs:
        ms = r["request_ms"]
        lines.append(f"| {r['concurrency']} | {r['mode']} | {r['route_cpu_ms']:.3f} | {r['route_over_search']:.0%} | "
                     f"{r['requests_per_call']:.1f} | {ms['p50_ms']:.2f} / {ms['p95_ms']:.2f} |")
    lines += ["", "Target (issue 19): routing CPU <= 25% of the search CPU of the same queries. C = 1 is one query "
              "at a time; with C requests in flight the coordinator routes them together (`coalesced`); `one by one` "
              "is the same thread routing one request per call.", ""]
    write_markdown(args.out.with_suffix(".md"), lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
