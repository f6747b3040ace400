"""Does a code change slow the query path? Two source trees searched side by side, interleaved.

One worker process per source tree (``PYTHONPATH=TREE``) opens the same index and query set;
the parent then asks the workers in turn, ``--passes`` times, for one timed pass over all queries
for every (route, k) configuration, alternating which tree goes first. A pass's cost is the CPU
of the worker's main thread (``time.thread_time``: Python, JNI and Lucene's work on that thread)
and its wall time. The report gives the median per-query CPU per tree and the ratio after/before
per configuration, with the machine's load average.

Usage (from the repository root; BEFORE is e.g. a ``git worktree`` of the older commit):
  .venv/bin/python eval/reliability/query_path.py --before /tmp/oldmain --after . \\
      --index indexes/scifact-k16 --data ../shared/data/scifact --out eval/results/reliability
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from selectsearch.bench.measure import load_average, machine, median
from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import command_line, script_parser

WORKER = r"""
import json, sys, time
from selectsearch.data import load_queries
from selectsearch.search import SelectiveSearcher
index, data, configs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
queries = load_queries(data, split="test")
base = SelectiveSearcher.open(index, "all")
searchers = {route: base.with_route(route) for route, _ in configs}
for route, k in configs:  # warm-up: JVM, readers, router state
    searchers[route].batch_search(queries, k=k)
print("ready", flush=True)
for line in sys.stdin:
    out = {}
    for route, k in configs:
        s = searchers[route]
        c, w = time.thread_time(), time.perf_counter()
        for qid, text in queries.items():
            s.batch_search({qid: text}, k=k)
        out[f"{route}|{k}"] = [(time.thread_time() - c) * 1e3 / len(queries),
                               (time.perf_counter() - w) * 1e3 / len(queries)]
    print(json.dumps(out), flush=True)
"""


def _worker(tree: Path, index: str, data: str, configs: list[tuple[str, int]]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    proc = subprocess.Popen([sys.executable, "-c", WORKER, index, data, json.dumps(configs)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd="/tmp")
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        raise SystemExit(f"worker for {tree} failed to start (got {line!r})")
    return proc


def _pass(proc: subprocess.Popen[str]) -> dict[str, list[float]]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("--before", type=Path, required=True, help="source tree of the older code")
    ap.add_argument("--after", type=Path, default=Path("."), help="source tree of the newer code")
    ap.add_argument("--index", required=True)
    ap.add_argument("--data", required=True, help="BEIR folder (its test queries are searched)")
    ap.add_argument("--routes", nargs="+", default=["all", "cori@2", "redde@2"])
    ap.add_argument("--k", nargs="+", type=int, default=[10, 1000])
    ap.add_argument("--passes", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("eval/results/reliability"))
    args = ap.parse_args(argv)
    configs = [(r, k) for r in args.routes for k in args.k]
    load_before = load_average()
    workers = {"before": _worker(args.before, os.path.abspath(args.index), os.path.abspath(args.data), configs),
               "after": _worker(args.after, os.path.abspath(args.index), os.path.abspath(args.data), configs)}
    samples: dict[str, dict[str, list[list[float]]]] = {"before": {}, "after": {}}
    for p in range(args.passes):
        order = ["before", "after"] if p % 2 == 0 else ["after", "before"]
        for name in order:
            for key, value in _pass(workers[name]).items():
                samples[name].setdefault(key, []).append(value)
        print(f"pass {p + 1}/{args.passes}", file=sys.stderr, flush=True)
    for proc in workers.values():
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    rows = []
    for route, k in configs:
        key = f"{route}|{k}"
        cpu = {n: median(v[0] for v in samples[n][key]) for n in samples}
        wall = {n: median(v[1] for v in samples[n][key]) for n in samples}
        rows.append({"route": route, "k": k, "cpu_ms_before": cpu["before"], "cpu_ms_after": cpu["after"],
                     "cpu_ratio": cpu["after"] / cpu["before"], "wall_ms_before": wall["before"],
                     "wall_ms_after": wall["after"], "wall_ratio": wall["after"] / wall["before"]})
    command = command_line(__file__, argv, prefix=Path(sys.executable).name + " ", quote=False)
    result = {"command": command, "machine": f"{machine()}, {os.cpu_count()} CPUs",
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "load_before": load_before, "load_after": load_average(),
              "passes": args.passes, "rows": rows, "samples": samples}
    write_json(args.out / "query-path.json", result)
    lines = ["# Query path before/after (interleaved, same index, same queries)", "",
             f"Command: `{command}`  ", f"Machine: {result['machine']}, {result['date']}; load average "
             f"{load_before[0]:.2f} before, {result['load_after'][0]:.2f} after (1 min)", "",
             "Median over passes of the per-query CPU of the searching thread (ms) and wall (ms); one query "
             "per `batch_search` call.", "",
             "| route | k | CPU before | CPU after | ratio | wall before | wall after | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['route']} | {r['k']} | {r['cpu_ms_before']:.3f} | {r['cpu_ms_after']:.3f} | "
                     f"{r['cpu_ratio']:.3f} | {r['wall_ms_before']:.3f} | {r['wall_ms_after']:.3f} | "
                     f"{r['wall_ratio']:.3f} |")
    write_markdown(args.out / "query-path.md", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
