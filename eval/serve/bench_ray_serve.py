"""`selectsearch serve` on Ray Serve against the Starlette coordinator, side by side.

Runs :func:`bench_reliability.measure` (the measurements of ``bench_reliability.py``) on each
engine of ``--engines`` in turn, on the same index, with the same settings, in the same run:

1. **Bounded load**: ``--requests`` (2,000) from ``--clients`` (8) closed-loop clients: answered
   (200) / errors (another HTTP status) / lost (no HTTP answer) / p50 / p99 / requests per second.
2. **Overload**: ``--overload-clients`` (128) clients at once: 200s, 503s (with ``Retry-After``),
   other errors, lost.
3. **Shard-group replica killed mid-load** (SIGKILL, ``--kill-after`` s in): flagged partial
   answers, lost, time until ``/health`` shows the group served by a new process.
4. **Listening sockets** of the serve process tree (all on loopback by default).

Each engine is a `selectsearch serve --engine E` process with its own local Ray instance,
stopped (SIGTERM) before the next starts. Writes ``ray-serve.json`` and ``README.md`` into
``--out``. It is a timing benchmark: run it alone on an idle machine.

Run it inside a private network namespace (root) given a non-loopback address, as a machine on
a network has (nothing leaves the namespace; the sockets table then shows that nothing binds it):

    unshare -n sh -c 'ip link set lo up && ip addr add 10.254.254.1/32 dev lo && \\
      ip route add default dev lo src 10.254.254.1 && exec .venv/bin/python eval/serve/bench_ray_serve.py \\
      --index indexes/sfwiki-kmeans32 --data ../shared/data/scifact --out eval/results/serve'
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench_reliability import add_load_arguments, measure

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import add_collection_arguments, command_line, script_parser

ENGINES = {"serve": "Ray Serve (default)", "starlette": "Starlette coordinator (previous)"}


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    add_collection_arguments(parser, index_option=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--engines", default="serve,starlette", help="engines, in the order run (default %(default)s)")
    add_load_arguments(parser)
    parser.add_argument("--serve-args", default="--shards-per-group 8 --actor-cpus 0.25 --java-heap 1g",
                        help="extra arguments of `selectsearch serve`, both engines (default: %(default)s)")
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown or not engines:
        parser.error(f"--engines: unknown {unknown}; pick from {sorted(ENGINES)}")
    from selectsearch.data import load_queries

    texts = [t for _, t in load_queries(args.data, split=args.split).items()]
    result: dict[str, Any] = {
        "command": "unshare -n sh -c 'ip link set lo up && ip addr add 10.254.254.1/32 dev lo && ip route add "
                   "default dev lo src 10.254.254.1 && exec .venv/bin/python "
                   + command_line(__file__, argv, quote=False) + "'",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "index": args.index, "engines": {}}
    for engine in engines:
        serve_cmd = [sys.executable, "-m", "selectsearch", "-q", "serve", args.index, "--engine", engine,
                     "--port", str(args.port), "--route", args.route, *args.serve_args.split()]
        print(f"== {engine}", flush=True)
        result["engines"][engine] = measure(serve_cmd, texts, args)
    out = Path(args.out)
    write_json(out / "ray-serve.json", result, default=str)
    write_markdown(out / "README.md", report(result), end="")
    print((out / "README.md").read_text())
    return 0


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def report(r: dict[str, Any]) -> str:
    """eval/results/serve/README.md from the measurements."""
    engines: dict[str, Any] = r["engines"]
    first = next(iter(engines.values()))
    lines = [
        "# Serving on Ray Serve, against the Starlette coordinator", "",
        f"Command: `{r['command']}` ({r['date']}). Index `{r['index']}` ({first['info']['n_shards']} shards, "
        f"{len(first['info']['groups'])} shard groups of `--shards-per-group`, 1 replica each). Each engine is "
        "`selectsearch serve --engine E` with its own local Ray instance (loopback only, no dashboard), measured "
        "in turn in the same run with the same settings; every request: route "
        f"{first['info']['default_route']}, k=100, one of {first['queries']} queries; closed-loop clients, one "
        f"keep-alive connection each, on the same {first['cpu_count']}-core machine as the service. Answered = "
        "200; errors = another HTTP status; lost = no HTTP answer at all.", "",
        "`selectsearch serve` runs Ray Serve by default: a FastAPI ingress deployment (typed models, OpenAPI at "
        "`/docs`; its `max_ongoing_requests` / `max_queued_requests` are the admission limits, Serve's proxy "
        "answers 503 with `Retry-After` beyond them), a router + merge deployment (routing, fan-out with the "
        "request's deadline, exact merge) and one deployment per shard group (Serve health-checks and replaces "
        "its replicas). `--engine starlette` is the previous engine (Starlette app, hand-written admission queue, "
        "Ray actors), kept for this comparison.", "",
        "| engine | run | clients | requests | answered | of which partial | errors | 503 (with Retry-After) | lost "
        "| p50 ms | p99 ms | requests/s |", "|" + "---|" * 12]
    for engine, e in engines.items():
        for name, key in (("bounded load", "bounded"), ("overload", "overload"), ("replica killed", "kill_drill")):
            x = e[key]
            lines.append(f"| {engine} | {name} | {x['clients']} | {x['requests']} | {x['answered']} | {x['partial']} "
                         f"| {x['errors']} | {x['status_503']} ({x['status_503_with_retry_after']}) | {x['lost']} | "
                         f"{_ms(x['p50_ms'])} | {_ms(x['p99_ms'])} | {_ms(x['qps'])} |")
    if {"serve", "starlette"} <= set(engines):
        s, c = engines["serve"]["bounded"], engines["starlette"]["bounded"]
        lines += ["", f"Bounded load, Ray Serve / Starlette: p50 {_ratio(s['p50_ms'], c['p50_ms'])}, p99 "
                      f"{_ratio(s['p99_ms'], c['p99_ms'])}, requests/s {_ratio(s['qps'], c['qps'])}."]
    lines += [""]
    for engine, e in engines.items():
        d = e["kill_drill"]
        exposed = [s for s in e["sockets"] if not s["loopback"]]
        lines += [
            f"## {ENGINES.get(engine, engine)}", "",
            f"Served as `{e['serve']}` (ready in {e['ready_s']:.0f} s). Errors by code: "
            + "; ".join(f"{name}: {e[key]['by_code'] or 'none'}" for name, key in
                        (("bounded", "bounded"), ("overload", "overload"), ("kill", "kill_drill"))) + ".", "",
            f"Replica killed: {d['kill_after_s']:g} s into the load ({'during' if d['killed_during_load'] else 'AFTER'}"
            f" the load) the process of shard group {d['victim_group']} (shards {d['victim_shards']}, pid "
            f"{d['old_pid']}) got SIGKILL; {d['partial']} answers were flagged partial (naming that group's shards), "
            f"{d['lost']} requests lost; `/health` showed the group served by a new process (pid "
            f"{d.get('new_pid', '?')}) {d.get('recovered_s', float('nan')):.1f} s after the kill.", "",
            f"Listening sockets of the serve process tree ({len(e['sockets'])}; "
            f"{'all on loopback' if not exposed else f'{len(exposed)} NOT on loopback'}); after SIGTERM "
            f"{len(e['left_after_sigterm'])} of its processes were left:", "",
            "| proto | address | port | process |", "|---|---|---|---|"]
        lines += [f"| {s['proto']} | {s['address']} | {s['port']} | {s['process']} |" for s in e["sockets"]]
        lines += [""]
    lines += [REAL_CLUSTER, EARLIER]
    return "\n".join(lines)


REAL_CLUSTER = """## Running the service on a real multi-machine Ray cluster

A local `selectsearch serve INDEX` starts its own Ray instance with every port on 127.0.0.1 and no
dashboard, and nothing of it outlives the command. To spread shard groups over machines, form a
Ray cluster yourself, on a network you trust (Ray's ports are unauthenticated beyond its token):

1. Install this package (`pip install 'selectsearch[ray]'`, the same version) on every machine, and
   make the index readable at the same path on every machine (a shared or replicated file system),
   or plan to pass `--ship-index` (the driver uploads the index folder, up to about 500 MiB, and each
   node that runs a replica unpacks it).
2. On the head machine: `ray start --head --node-ip-address=HEAD_IP --port=6379 --num-cpus=N`;
   on each other machine: `ray start --address=HEAD_IP:6379`.
3. On the head machine: `selectsearch serve INDEX --ray HEAD_IP:6379 --host 0.0.0.0 --port 8000
   --shards-per-group 8 --replicas 2 --route cori@2 --deadline-ms 500` (`--ray auto` finds the
   cluster of the machine it runs on). Serve places the shard-group replicas over the nodes
   (`--actor-cpus` each), health-checks them and replaces dead ones; the HTTP proxy runs on the
   head node. `--host 0.0.0.0` serves HTTP to other machines (default 127.0.0.1).
4. Stop it with Ctrl-C or SIGTERM: the application is deleted from the cluster (and Serve shut
   down when no other application runs there); the cluster itself stays (`ray stop` on each machine).

Serve's metrics (requests, errors, latency, queue lengths per deployment and replica) are exported
with Ray's metrics on each node's metrics agent (Prometheus format).
"""

EARLIER = """The actor coordinator's own benchmark (answers identical to in-process search for every route,
latency at 1 and 16 clients, per-stage times, its fault drill) is in README-actors.md
(`eval/serve/bench_serve.py`); the serving reliability probes are in eval/results/reliability/.
"""


if __name__ == "__main__":
    sys.exit(main())
