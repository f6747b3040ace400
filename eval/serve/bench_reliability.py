"""Serving reliability figures of `selectsearch serve` as a user runs it (local Ray, defaults).

Starts `selectsearch serve INDEX` (its own local Ray instance), then measures:

1. **Bounded load**: ``--requests`` (2,000) from ``--clients`` (8) closed-loop clients:
   answered (200) / errors (an HTTP answer other than 200) / lost (no HTTP answer) / p50 / p99.
2. **Overload**: ``--overload-clients`` (128) clients at once, each sending
   ``--overload-per-client`` requests: 200s, 503s and how many of them carry ``Retry-After``,
   other errors, lost (must be 0).
3. **Shard group killed mid-load**: ``--drill-requests`` from ``--clients`` clients; ``--kill-after``
   (1 s) in, the
   process of one shard-group actor is SIGKILLed (its pid from ``/health``): requests, full
   answers, flagged partial answers (naming the group's shards), 503s, lost (must be 0), and the
   time until ``/health`` shows the group served by a new process.
4. **Listening sockets** of the serve process tree while serving (``/proc``, TCP LISTEN and
   bound UDP), each flagged loopback or not (all on loopback by default).

Then it stops serve with SIGTERM and records what of its process tree is left.

Clients are ``--client-procs`` processes with threads (one keep-alive connection per client).
Writes ``reliability-serve.json`` and ``README-serve.md`` into ``--out``.

Ray picks the machine's network address for its traffic unless told otherwise, and test
traffic here may only go to loopback, so run it inside a private network namespace (root),
given a non-loopback address as a real machine has (nothing leaves the namespace):

    unshare -n sh -c 'ip link set lo up && ip addr add 10.254.254.1/32 dev lo && \\
      ip route add default dev lo src 10.254.254.1 && exec .venv/bin/python eval/serve/bench_reliability.py \\
      --index indexes/sfwiki-kmeans32 --data ../shared/data/scifact --out eval/results/reliability'
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.bench.measure import percentiles
from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import add_collection_arguments, command_line, script_parser


def _client_thread(port: int, texts: list[str], route: str, k: int, deadline_ms: float | None, out: list[Any],
                   start_at: float) -> None:
    """One client: one keep-alive connection, closed loop; records (status, ms, partial, code, retry_after, t)."""
    conn: http.client.HTTPConnection | None = None
    while time.time() < start_at:
        time.sleep(0.001)
    for text in texts:
        body: dict[str, Any] = {"query": text, "k": k, "route": route}
        if deadline_ms is not None:
            body["deadline_ms"] = deadline_ms
        data = json.dumps(body).encode()
        t = time.perf_counter()
        record: tuple[Any, ...] = (-1, 0.0, False, "lost", False, time.time())
        for attempt in range(2):  # one reconnect when a kept-alive connection had been closed
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.request("POST", "/search", body=data, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = None
                sent = not isinstance(exc, (BrokenPipeError, http.client.RemoteDisconnected)) or attempt > 0
                if sent:
                    record = (-1, (time.perf_counter() - t) * 1000.0, False, f"lost: {type(exc).__name__}", False,
                              time.time())
                    break
                continue
            try:
                payload = json.loads(raw or b"null")
            except ValueError:  # an HTTP answer all the same (e.g. a proxy's text 503)
                payload = {"error": f"text: {raw[:40].decode('utf-8', 'replace')}"}
            ok = response.status == 200 and isinstance(payload, dict)
            code = "" if ok else str(payload.get("error") if isinstance(payload, dict) else response.status)
            record = (response.status, (time.perf_counter() - t) * 1000.0, bool(ok and payload.get("partial")),
                      code, response.getheader("Retry-After") is not None, time.time())
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
            break
        out.append(record)
    if conn is not None:
        conn.close()


def _client_proc(port: int, jobs: list[list[str]], route: str, k: int, deadline_ms: float | None,
                 start_at: float) -> list[Any]:
    out: list[Any] = []
    threads = [threading.Thread(target=_client_thread, args=(port, texts, route, k, deadline_ms, out, start_at))
               for texts in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def run_load(port: int, texts: list[str], *, clients: int, requests: int, procs: int, route: str, k: int,
             deadline_ms: float | None = None, during: Any = None) -> dict[str, Any]:
    """``clients`` closed-loop clients (spread over ``procs`` processes) sending ``requests`` in all."""
    per_client = [requests // clients + (c < requests % clients) for c in range(clients)]
    import multiprocessing as mp

    procs = max(1, min(procs, clients))
    jobs = [[texts[(c * 37 + i) % len(texts)] for i in range(n)] for c, n in enumerate(per_client)]
    per_proc = [jobs[p::procs] for p in range(procs)]
    start_at = time.time() + 3.0  # every process connected and waiting
    ctx = mp.get_context("spawn")
    with ctx.Pool(procs) as pool:
        handles = [pool.apply_async(_client_proc, (port, part, route, k, deadline_ms, start_at)) for part in per_proc]
        extra = during(start_at) if during is not None else None
        records = [r for h in handles for r in h.get(timeout=1800)]
    status = [r[0] for r in records]
    answered = [r for r in records if r[0] == 200]
    lat = np.array([r[1] for r in records if r[0] != -1]) if records else np.zeros(0)
    span = max(r[5] for r in records) - start_at if records else 0.0
    codes: dict[str, int] = {}
    for r in records:
        if r[0] != 200:
            codes[f"{r[0]} {r[3]}"] = codes.get(f"{r[0]} {r[3]}", 0) + 1
    out = {"clients": clients, "requests": len(records), "answered": len(answered),
           "partial": sum(r[2] for r in answered), "errors": sum(1 for s in status if s not in (200, -1)),
           "lost": status.count(-1), "status_503": status.count(503),
           "status_503_with_retry_after": sum(1 for r in records if r[0] == 503 and r[4]),
           "by_code": codes,
           **(percentiles(lat, (50, 99), mean=False) if len(lat) else {"p50_ms": None, "p99_ms": None}),
           "qps": len(records) / span if span > 0 else None, "seconds": span, "load_end": start_at + span}
    if extra is not None:
        out.update(extra)
    return out


def _get(port: int, path: str, timeout: float = 5.0) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(body)
    except ValueError:  # Ray Serve's proxy answers in plain text until the application is deployed
        return response.status, None


def measure(serve_cmd: list[str], texts: list[str], args: Any) -> dict[str, Any]:
    """Start ``serve_cmd`` (a `selectsearch serve` on ``args.port``), measure its bounded load,
    overload, kill drill and listening sockets with ``args``' settings, stop it with SIGTERM and
    record what of its process tree is left; returns the measurements."""
    from selectsearch.serve.watchdog import descendants, listening_sockets

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    t0 = time.time()
    proc = subprocess.Popen(serve_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    result: dict[str, Any] = {
        "serve": " ".join(serve_cmd[1:]), "queries": len(texts),
        "cpu_count": os.cpu_count(), "interfaces": [name for _, name in __import__("socket").if_nameindex()]}
    try:
        while True:
            try:
                status, health = _get(args.port, "/health")
                if status == 200 and isinstance(health, dict) and health.get("ok"):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() - t0 > 300:
                raise RuntimeError("serve did not come up: " + (proc.stderr.read()[-3000:] if proc.stderr else ""))
            time.sleep(0.5)
        result["ready_s"] = time.time() - t0
        result["info"] = _get(args.port, "/info")[1]
        time.sleep(2.0)
        sockets = listening_sockets(proc.pid)
        for s in sockets:
            s["loopback"] = ipaddress.ip_address(str(s["address"])).is_loopback
        result["sockets"] = sockets
        print(json.dumps({"sockets": len(sockets), "non_loopback": [s for s in sockets if not s["loopback"]]}),
              flush=True)
        # 1. bounded load
        result["bounded"] = run_load(args.port, texts, clients=args.clients, requests=args.requests,
                                     procs=args.client_procs, route=args.route, k=args.k)
        print("bounded", json.dumps(result["bounded"]), flush=True)
        # 2. overload
        result["overload"] = run_load(args.port, texts, clients=args.overload_clients,
                                      requests=args.overload_clients * args.overload_per_client,
                                      procs=args.client_procs,
                                      route=args.route, k=args.k)
        print("overload", json.dumps(result["overload"]), flush=True)
        # 3. one shard-group process killed mid-load
        groups = health["groups"]
        victim = 1 if len(groups) > 1 else 0
        old_pid = next(r["pid"] for r in _get(args.port, "/health")[1]["groups"][victim]["replicas"] if r["ok"])

        drill_state: dict[str, Any] = {}

        def during(start_at: float) -> None:
            state = drill_state

            def watch() -> None:
                time.sleep(max(0.0, start_at - time.time()) + args.kill_after)
                state["killed_at"] = time.time()
                os.kill(old_pid, signal.SIGKILL)
                while time.time() - state["killed_at"] < 300:
                    try:
                        _, h = _get(args.port, "/health", timeout=2.0)
                        reps = h["groups"][victim]["replicas"]
                        if any(r["ok"] and r["pid"] != old_pid for r in reps):
                            state["recovered_s"] = time.time() - state["killed_at"]
                            state["new_pid"] = next(r["pid"] for r in reps if r["ok"])
                            return
                    except (OSError, KeyError, TypeError, ValueError):  # TypeError: a plain-text answer
                        pass
                    time.sleep(0.1)

            thread = threading.Thread(target=watch)
            thread.start()
            state["_thread"] = thread

        drill = run_load(args.port, texts, clients=args.clients, requests=args.drill_requests, procs=args.client_procs,
                         route=args.route, k=args.k, during=during)
        drill_state.pop("_thread").join(300)
        drill.update({"victim_group": victim, "victim_shards": groups[victim]["shards"], "old_pid": old_pid,
                      "kill_after_s": args.kill_after, **drill_state})
        drill["killed_during_load"] = drill.get("killed_at", float("inf")) < drill["load_end"]
        result["kill_drill"] = drill
        print("kill_drill", json.dumps(drill), flush=True)
    finally:
        tree = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        time.sleep(5.0)
        left = {pid: start for pid, start in tree.items() if Path(f"/proc/{pid}").exists()}
        result["left_after_sigterm"] = sorted(left)
        for pid in left:  # never leave anything behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return result


def add_load_arguments(parser: Any) -> None:
    """The load, overload and kill-drill options :func:`measure` reads (shared with bench_ray_serve.py)."""
    parser.add_argument("--route", default="all", help="route of every request (default all: every group asked)")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--overload-clients", type=int, default=128)
    parser.add_argument("--overload-per-client", type=int, default=10)
    parser.add_argument("--drill-requests", type=int, default=800)
    parser.add_argument("--kill-after", type=float, default=1.0, help="seconds into the drill's load of the kill")
    parser.add_argument("--client-procs", type=int, default=8, help="client processes (clients are threads in them)")
    parser.add_argument("--port", type=int, default=8765)


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    add_collection_arguments(parser, index_option=True)
    parser.add_argument("--out", required=True)
    add_load_arguments(parser)
    parser.add_argument("--serve-args", default="--shards-per-group 8 --actor-cpus 0.25 --java-heap 1g",
                        help="extra arguments of `selectsearch serve` (default: %(default)s)")
    args = parser.parse_args(argv)
    from selectsearch.data import load_queries

    texts = [t for _, t in load_queries(args.data, split=args.split).items()]
    serve_cmd = [sys.executable, "-m", "selectsearch", "-q", "serve", args.index, "--port", str(args.port),
                 "--route", args.route, *args.serve_args.split()]
    result = {"command": "unshare -n sh -c 'ip link set lo up && ip addr add 10.254.254.1/32 dev lo && ip route add "
                         "default dev lo src 10.254.254.1 && exec .venv/bin/python "
                         + command_line(__file__, argv, quote=False) + "'",
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), **measure(serve_cmd, texts, args)}
    out = Path(args.out)
    write_json(out / "reliability-serve.json", result, default=str)
    write_markdown(out / "README-serve.md", report(result), end="")
    print((out / "README-serve.md").read_text())
    return 0


def report(r: dict[str, Any]) -> str:
    """The Markdown section for eval/results/reliability/README.md."""
    b, o, d = r["bounded"], r["overload"], r["kill_drill"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    exposed = [s for s in r["sockets"] if not s["loopback"]]
    lines = [
        "## Serving (`selectsearch serve`, local Ray, default settings)", "",
        f"Command: `{r['command']}` ({r['date']}). Served as `{r['serve']}` (ready in {r['ready_s']:.0f} s; "
        f"{len(r['info']['groups'])} shard groups, {r['info']['n_shards']} shards); network namespace interfaces "
        f"{r['interfaces']} with a non-loopback address on lo (as a machine on a network has). Every request: "
        f"route {r['info']['default_route']}, k=100, one of {r['queries']} queries; clients are closed-loop, one "
        f"keep-alive connection each, on the same {r['cpu_count']}-core machine. Answered = 200; errors = another "
        "HTTP status; lost = no HTTP answer at all.", "",
        "| run | clients | requests | answered | of which partial | errors | 503 (with Retry-After) | lost | "
        "p50 ms | p99 ms | q/s |", "|" + "---|" * 11]
    for name, x in (("bounded load", b), ("overload", o), ("shard group killed", d)):
        lines.append(f"| {name} | {x['clients']} | {x['requests']} | {x['answered']} | {x['partial']} | "
                     f"{x['errors']} | {x['status_503']} ({x['status_503_with_retry_after']}) | {x['lost']} | "
                     f"{ms(x['p50_ms'])} | {ms(x['p99_ms'])} | {ms(x['qps'])} |")
    lines += ["", "Errors by code: " + "; ".join(f"{name}: {x['by_code'] or 'none'}" for name, x in
                                                 (("bounded", b), ("overload", o), ("kill", d))) + ".", "",
              f"Kill drill: {d['kill_after_s']:g} s into the load ({'during' if d['killed_during_load'] else 'AFTER'}"
              f" the load) the process of shard group {d['victim_group']} (shards "
              f"{d['victim_shards']}, pid {d['old_pid']}) got SIGKILL; {d['partial']} answers were flagged partial "
              f"(naming that group's shards), {d['lost']} requests lost; `/health` showed the group served by a new "
              f"process (pid {d.get('new_pid', '?')}) {d.get('recovered_s', float('nan')):.1f} s after the kill.", "",
              f"Listening sockets of the serve process tree while serving ({len(r['sockets'])}; "
              f"{'all on loopback' if not exposed else f'{len(exposed)} NOT on loopback'}):", "",
              "| proto | address | port | process |", "|---|---|---|---|"]
    lines += [f"| {s['proto']} | {s['address']} | {s['port']} | {s['process']} |" for s in r["sockets"]]
    lines += ["", f"After SIGTERM to serve: {len(r['left_after_sigterm'])} of its processes left "
                  f"({r['left_after_sigterm'] or 'none'}).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
