"""Serving benchmark: an index served from Ray actors over HTTP, on a local 3-node Ray cluster.

Measures, on the real queries: (1) that answers through Ray equal in-process search for every
route (all queries, k=100); (2) HTTP latency p50/p95/p99 and throughput at 1 and N concurrent
clients (client processes, one keep-alive connection each), with the coordinator's per-stage
times; (3) a fault drill: a shard actor killed under load — every request answered (full or
flagged partial), time until the actor serves again.

Ray sends its traffic to the machine's non-loopback address, so run it inside a loopback-only
network namespace (as root):

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python eval/serve/bench_serve.py \\
        --index indexes/sfwiki-kmeans32 --data ../shared/data/scifact --out eval/results/serve'
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.bench.measure import percentiles
from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import add_collection_arguments, command_line, script_parser


def _client(url: str, items: list[tuple[str, str]], route: str, k: int, barrier: Any) -> dict[str, Any]:
    from selectsearch.serve.client import ServeClient

    out: dict[str, Any] = {"latencies": [], "status": [], "partial": 0, "stages": []}
    with ServeClient(url, timeout_s=60) as client:
        client.request("POST", "/search", {"query": items[0][1], "k": k, "route": route})  # connect + warm
        barrier.wait()
        out["start"] = time.time()
        for _, text in items:
            t = time.perf_counter()
            try:
                status, payload = client.request("POST", "/search", {"query": text, "k": k, "route": route})
            except Exception:
                status, payload = -1, None
            out["latencies"].append((time.perf_counter() - t) * 1000.0)
            out["status"].append(status)
            if status == 200 and payload is not None:
                out["partial"] += int(payload["partial"])
                out["stages"].append({**payload["trace"]["timings_ms"],
                                      "actor_cpu": payload["trace"]["extra"]["actor_cpu_ms"]})
        out["end"] = time.time()
    return out


def run_clients(url: str, queries: list[tuple[str, str]], route: str, k: int, n_clients: int, per_client: int,
                during: Any = None) -> dict[str, Any]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    barrier = manager.Barrier(n_clients + 1)
    with ctx.Pool(n_clients) as pool:
        handles = []
        for c in range(n_clients):
            items = [queries[(c * 37 + i) % len(queries)] for i in range(per_client)]
            handles.append(pool.apply_async(_client, (url, items, route, k, barrier)))
        barrier.wait()
        if during is not None:
            during()
        parts = [h.get(timeout=900) for h in handles]
    manager.shutdown()
    lat = np.concatenate([p["latencies"] for p in parts])
    status = [s for p in parts for s in p["status"]]
    span = max(p["end"] for p in parts) - min(p["start"] for p in parts)
    stages = [s for p in parts for s in p["stages"]]
    mean_stage = {key: float(np.mean([s.get(key, 0.0) for s in stages])) for key in
                  ("queue", "route", "search", "merge", "actor_cpu")} if stages else {}
    return {"route": route, "clients": n_clients, "requests": len(lat), "ok": status.count(200),
            "errors": len(status) - status.count(200), "partial": sum(p["partial"] for p in parts),
            **percentiles(lat, mean=False), "qps": float(len(lat) / span), "mean_stage_ms": mean_stage}


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    add_collection_arguments(parser, index_option=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--routes", nargs="+", default=["all", "cori@2", "centroid@3", "redde@6"])
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--requests", type=int, default=320, help="requests per (route, clients) run")
    parser.add_argument("--shards-per-group", type=int, default=8)
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args(argv)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray
    from ray.cluster_utils import Cluster

    from selectsearch.data import load_queries
    from selectsearch.search import SelectiveSearcher
    from selectsearch.serve.app import BackgroundServer, create_app
    from selectsearch.serve.config import ServeConfig
    from selectsearch.serve.coordinator import Coordinator
    from selectsearch.types import Query

    queries = list(load_queries(args.data, split=args.split).items())
    t0 = time.time()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster_s = time.time() - t0
    config = ServeConfig(route="cori@2", shards_per_group=args.shards_per_group, actor_num_cpus=0.25,
                         actor_java_heap="1g", deadline_ms=10_000, max_inflight=16, max_queue=64)
    t = time.time()
    coordinator = Coordinator(args.index, config)
    pings = coordinator.wait_ready(300)
    actors_s = time.time() - t
    result: dict[str, Any] = {
        "command": command_line(__file__, argv, prefix="unshare -n sh -c 'ip link set lo up && exec .venv/bin/python ",
                                quote=False) + "'",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "index": args.index, "queries": len(queries), "k": args.k,
        "cluster": "ray.cluster_utils.Cluster: head + 2 worker nodes (1 CPU each) on 127.0.0.1, one 2-core machine",
        "config": config.to_json(), "groups": [list(g) for g in coordinator.groups],
        "cluster_start_s": cluster_s, "actors_start_s": actors_s,
        "actor_open_ms": [p["open_ms"] for row in pings for p in row], "cpu_count": os.cpu_count()}
    # 1. identity with in-process search
    local = SelectiveSearcher.open(args.index)
    qs = [Query(q, t) for q, t in queries]
    identity = {}
    for route in args.routes:
        expected = local.with_route(route).batch_search(qs, k=args.k)
        got = {}
        for i in range(0, len(qs), config.max_batch):  # requests are bounded to max_batch queries
            got.update(coordinator.batch_search(qs[i:i + config.max_batch], k=args.k, route=route))
        same = sum(got[q.query_id].hits == expected[q.query_id].hits for q in qs)
        identity[route] = {"identical": same, "queries": len(qs),
                           "groups_per_query": float(np.mean([len(r.trace.extra["groups"]) for r in got.values()]))}
        print(route, identity[route], flush=True)
    result["identity"] = identity
    # 2. latency and throughput over HTTP
    runs = []
    with BackgroundServer(create_app(coordinator)) as server:
        for route in args.routes:
            for n in args.clients:
                run = run_clients(server.url, queries, route, args.k, n, max(1, args.requests // n))
                runs.append(run)
                print(json.dumps(run), flush=True)
        result["latency"] = runs
        # 3. fault drill: kill group 1's actor under load
        victim = 1
        old_pid = ray.get(coordinator.replicas[victim][0].handle.ping.remote())["pid"]
        killed_at: list[float] = []

        def kill() -> None:
            time.sleep(1.0)
            killed_at.append(time.time())
            coordinator.inject_fault(victim, 0, crash=True)

        drill = run_clients(server.url, queries, "all", args.k, 16, 40, during=kill)
        t = time.time()
        while True:
            try:
                ping = ray.get(coordinator.replicas[victim][0].handle.ping.remote(), timeout=30)
                break
            except Exception:
                time.sleep(0.2)
        drill.update({"victim_group": victim, "victim_shards": list(coordinator.groups[victim]),
                      "old_pid": old_pid, "new_pid": ping["pid"], "back_after_s": time.time() - killed_at[0],
                      "waited_after_load_s": time.time() - t})
        result["fault_drill"] = drill
        print(json.dumps(drill), flush=True)
    coordinator.close()
    ray.shutdown()
    cluster.shutdown()
    out = Path(args.out)
    write_json(out / "serve-sfwiki32.json", result)
    write_report(result, out)
    return 0


def write_report(result: dict[str, Any], out: Path) -> None:
    lines = ["# Serving from Ray actors: SciFact + 200k Wikipedia, 32 shards", "",
             f"Command: `{result['command']}` ({result['date']}).", "",
             f"Cluster: {result['cluster']}. Placement: {len(result['groups'])} shard groups of "
             f"{result['config']['shards_per_group']} shards (balanced by documents), 1 replica each, each actor "
             f"with its own JVM (-Xmx{result['config']['actor_java_heap']}). Ray cluster up in "
             f"{result['cluster_start_s']:.0f} s, actors ready {result['actors_start_s']:.0f} s later. "
             f"{result['queries']} SciFact test queries, k={result['k']}. Coordinator, HTTP server and the Ray "
             "nodes share the machine's 2 cores with the clients (and with other work): latencies include all "
             "of that contention; compare rows, not absolute numbers.", "",
             "## Identical to in-process search", "", "| route | identical queries | groups asked per query |",
             "|---|---|---|"]
    for route, v in result["identity"].items():
        lines.append(f"| {route} | {v['identical']}/{v['queries']} | {v['groups_per_query']:.2f} of "
                     f"{len(result['groups'])} |")
    lines += ["", "## Latency and throughput over HTTP", "",
              "Client processes with one keep-alive connection each, closed loop. Stage times are the "
              "coordinator's means (queue = admission wait, search = fan-out until the last group answered); "
              "actor CPU = shard-group CPU per query.", "",
              "| route | clients | requests | errors | partial | p50 ms | p95 ms | p99 ms | q/s | queue | route | "
              "search | merge | actor CPU |", "|" + "---|" * 14]
    for r in result["latency"]:
        s = r["mean_stage_ms"]
        lines.append(f"| {r['route']} | {r['clients']} | {r['requests']} | {r['errors']} | {r['partial']} | "
                     f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['qps']:.1f} | "
                     f"{s.get('queue', 0):.1f} | {s.get('route', 0):.2f} | {s.get('search', 0):.1f} | "
                     f"{s.get('merge', 0):.2f} | {s.get('actor_cpu', 0):.1f} |")
    one = {r["route"]: r for r in result["latency"] if r["clients"] == 1}
    most = {r["route"]: r for r in result["latency"] if r["clients"] == max(x["clients"] for x in result["latency"])}
    if "all" in one:
        base = one["all"]["mean_stage_ms"]
        lines += ["", "Cluster CPU per query (shard-group CPU + the coordinator's routing CPU-bound time) against "
                      "exhaustive search, which asks every group (each group pays the per-query fixed costs: term "
                      "lookups, collecting and transferring its top k):", ""]
        for route, r in one.items():
            st = r["mean_stage_ms"]
            cost = st.get("actor_cpu", 0) + st.get("route", 0)
            ratio = (base.get("actor_cpu", 0) + base.get("route", 0)) / max(cost, 1e-9)
            qps = most.get(route, r)["qps"] / max(most.get("all", one["all"])["qps"], 1e-9)
            lines.append(f"- {route}: {cost:.1f} ms ({ratio:.1f}x less than exhaustive), throughput at "
                         f"{most.get(route, r)['clients']} clients {qps:.1f}x exhaustive's")
    d = result["fault_drill"]
    lines += ["", "## Fault drill", "",
              f"16 clients x 40 requests (route all, deadline {result['config']['deadline_ms']:.0f} ms); the actor "
              f"of group {d['victim_group']} (shards {d['victim_shards']}) exits 1 s into the load. "
              f"Requests: {d['requests']}, answered 200: {d['ok']}, errors: {d['errors']}, flagged partial "
              f"(naming the group's shards as missing): {d['partial']}. Ray restarted the actor (pid "
              f"{d['old_pid']} -> {d['new_pid']}); it was serving again when the load ended "
              f"({d['back_after_s']:.1f} s after the kill; restarting means a new process, JVM and readers).", ""]
    write_markdown(out / "README-actors.md", lines, end="")


if __name__ == "__main__":
    sys.exit(main())
