"""The same queries searched in the shard indexes and in the shards merged into one index, interleaved.

For an index built with ``--lucene-ranges`` (or given it with ``--add-backend lucene-ranges``),
each ``--route`` chooses every query's shards once (before timing); then, per query, in a seeded
random order: the shard indexes (``ShardedIndex.lucene(one_index=False)``), the merged index alone
(:data:`~selectsearch.lucene.searcher.SHARD_INDEXES_UP_TO` = 0) and what the product does (the
merged index, the shard indexes for queries over a few shards). One ``search`` call per query
(the Java engine, no pipeline), CPU of the calling thread; the first ``--warmup`` passes are not
recorded. This is how the product's threshold between the two was chosen
(``eval/results/cost/engine-profile.md``, section 7).

Usage (from the repository root):
  .venv/bin/python eval/serve/one_index_ab.py /work/scale-data/indexes/syn5m-kmeans128-ranges \\
      --data /work/scale-data/syn-5m --routes cori@4 cori@8 random@16 all --k 10 1000 --out /tmp/one-index-ab
writes ``one-index-ab.json`` and ``one-index-ab.md`` into ``--out``.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import command_line, script_parser
from selectsearch.data import load_queries
from selectsearch.index.sharded import ShardedIndex
from selectsearch.lucene import searcher as lucene_searcher
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Query

ENGINES = ("shard indexes", "merged index", "product")


def _engines(index: ShardedIndex) -> dict[str, Any]:
    saved = lucene_searcher.SHARD_INDEXES_UP_TO
    lucene_searcher.SHARD_INDEXES_UP_TO = 0.0  # the merged index for every query
    try:
        merged = index.lucene()
    finally:
        lucene_searcher.SHARD_INDEXES_UP_TO = saved
    return {"shard indexes": index.lucene(one_index=False), "merged index": merged, "product": index.lucene()}


def main(argv: list[str] | None = None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("index", type=Path, help="a sharded index with its shards merged into one index")
    ap.add_argument("--data", type=Path, required=True, help="BEIR folder of the queries (test split)")
    ap.add_argument("--routes", nargs="+", default=["cori@2", "all"], help="routes choosing each query's shards")
    ap.add_argument("--k", type=int, nargs="+", default=[10, 1000], help="hits per query")
    ap.add_argument("--passes", type=int, default=4, help="recorded passes (default 4)")
    ap.add_argument("--warmup", type=int, default=2, help="passes before recording (default 2)")
    ap.add_argument("--out", type=Path, required=True, help="results folder")
    args = ap.parse_args(argv)
    index = ShardedIndex.open(args.index)
    if index.manifest.lucene_ranges is None:
        print(f"{args.index} has no merged index: add one with `selectsearch index SOURCE --out {args.index} "
              "--add-backend lucene-ranges`", file=sys.stderr)
        return 2
    engines = _engines(index)
    if not all(e.batched for e in engines.values()):
        print("the Java batch engine is not compiled here (no javac): nothing to measure", file=sys.stderr)
        return 2
    qs = [Query(q, t) for q, t in load_queries(args.data, split="test").items()]
    rows = []
    rng = random.Random(0)
    load_before = os.getloadavg()
    for route in args.routes:
        searcher = SelectiveSearcher.open(args.index, route)
        shards = [sorted(r.trace.shards) for r in searcher.batch_search(qs, k=1).values()] \
            if route != "all" else [None] * len(qs)
        for k in args.k:
            cpu: dict[str, list[float]] = {name: [] for name in ENGINES}
            for p in range(args.warmup + args.passes):
                for q, chosen in zip(qs, shards, strict=True):
                    order = list(ENGINES)
                    rng.shuffle(order)
                    for name in order:
                        t = time.thread_time_ns()
                        engines[name].search(q.text, k, chosen)
                        if p >= args.warmup:
                            cpu[name].append((time.thread_time_ns() - t) / 1e6)
            base = float(np.mean(cpu["shard indexes"]))
            rows.append({"route": route, "k": k, "shards": float(np.mean([index.n_shards if c is None else len(c)
                                                                         for c in shards])),
                         **{f"{name} ms": float(np.mean(v)) for name, v in cpu.items()},
                         **{f"{name} x": float(np.mean(v)) / base for name, v in cpu.items()}})
    result = {"command": command_line(__file__, argv), "index": str(args.index), "queries": len(qs),
              "passes": args.passes, "warmup": args.warmup, "n_shards": index.n_shards,
              "load_average_before": load_before, "load_average_after": os.getloadavg(), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "one-index-ab.json", result)
    lines = ["# Shard indexes against their merged index", "", "```sh", result["command"], "```", "",
             f"{len(qs)} queries, {index.n_shards} shards, mean CPU ms per query of the calling thread over "
             f"{args.passes} recorded passes (after {args.warmup}), engines interleaved per query; load average "
             f"{load_before[0]:.1f} before, {result['load_average_after'][0]:.1f} after.", "",
             "| route | k | shards searched | " + " | ".join(f"{n} ms (x shard indexes)" for n in ENGINES) + " |",
             "|---|---|---|" + "---|" * len(ENGINES)]
    for r in rows:
        cells = " | ".join(f"{r[f'{n} ms']:.3f} ({r[f'{n} x']:.2f})" for n in ENGINES)
        lines.append(f"| {r['route']} | {r['k']} | {r['shards']:.1f} | {cells} |")
    write_markdown(args.out / "one-index-ab.md", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
