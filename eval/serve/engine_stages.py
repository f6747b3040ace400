"""Where one query's CPU goes on the batch engine: thread CPU per stage, configurations interleaved.

Stages of one query, each timed with ``time.thread_time_ns`` (Python, JNI and Lucene's work on the
calling thread): route; shard-number mapping; the one call into Java (analysis, term lookups,
scoring, heap); decoding the byte buffer; doc-id strings; ordering ties and making Hit objects.
``full_pipeline`` is the same query through ``SelectiveSearcher`` (route + search_selected).
Every configuration runs once per query in a seeded random order; one warm-up pass, then
``--passes`` recorded ones. Indicative on a shared machine: compare columns of one run.

Usage (from the repository root):
  .venv/bin/python eval/serve/engine_stages.py indexes/sfwiki-kmeans32 /tmp/sfwiki-1 \\
      --data ../shared/data/scifact --term-cache 524288 --out /tmp/engine-stages
writes ``engine-stages.json`` and ``engine-stages.md`` (one table per k) into ``--out``.
"""

from __future__ import annotations

import os
import random
import sys
import time
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import add_sharded_pair_arguments, command_line, script_parser
from selectsearch.data import load_queries
from selectsearch.lucene import searcher as lucene_searcher
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Hit, Query

STAGES = ("route", "shard_map", "java_batch_call", "decode_bytes", "doc_id_strings", "order_and_hits")


def _one(s: SelectiveSearcher, q: Query, k: int, acc: dict[str, list[float]]) -> None:
    tt = time.thread_time_ns
    t = [tt()]
    selected = s.router.select([q], s.budget)
    t.append(tt())
    index, lucene = s.index, s.lucene
    pos = {x: i for i, x in enumerate(index.lucene_shards)}
    shards = [pos[x] for x in sorted(set(selected[0])) if x in pos]
    every = len(shards) == lucene.n_shards
    t.append(tt())
    raw = lucene._batch.search([q.text], None if every else [0, len(shards)], None if every else shards, k)
    t.append(tt())
    b = raw.tostring()
    total = int(np.frombuffer(b, dtype="<i4", count=2)[-1])
    docids = np.frombuffer(b, dtype="<i4", count=total, offset=8).astype(np.int64)
    scores = np.frombuffer(b, dtype="<f4", count=total, offset=8 + 4 * total)
    t.append(tt())
    ids, owners = index.global_doc_ids[docids].tolist(), index.global_shard_ids[docids].tolist()
    t.append(tt())
    if len(scores) > 1 and bool((scores[:-1] == scores[1:]).any()):
        order = np.lexsort((index.doc_id_ranks[docids], -scores))
        docids, scores = docids[order], scores[order]
        ids, owners = index.global_doc_ids[docids].tolist(), index.global_shard_ids[docids].tolist()
    list(map(tuple.__new__, repeat(Hit, len(ids)), zip(ids, scores.tolist(), owners, strict=True)))
    t.append(tt())
    for name, a, b_ in zip(STAGES, t[:-1], t[1:], strict=True):
        acc.setdefault(name, []).append((b_ - a) / 1e6)


def _full(s: SelectiveSearcher, q: Query, k: int) -> float:
    c = time.thread_time_ns()
    s.search_selected([q], s.router.select([q], s.budget), k=k)
    return (time.thread_time_ns() - c) / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = script_parser(__doc__)
    add_sharded_pair_arguments(ap, passes=2)
    ap.add_argument("--term-cache", type=int, default=0,
                    help="also measure with this many cached term states (selectsearch.lucene.searcher)")
    ap.add_argument("--out", type=Path, required=True, help="results folder")
    args = ap.parse_args(argv)
    qs = [Query(q, t) for q, t in load_queries(args.data, split="test").items()]
    configs: dict[str, SelectiveSearcher] = {}
    for cache in [0] + ([args.term_cache] if args.term_cache else []):
        lucene_searcher.TERM_CACHE_STATES = cache
        tag = f"+tc{cache}" if cache else ""
        sharded = SelectiveSearcher.open(args.sharded, "all")
        configs.update({f"unsharded:all{tag}": SelectiveSearcher.open(args.unsharded, "all"),
                        f"sharded:all{tag}": sharded, f"sharded:{args.route}{tag}": sharded.with_route(args.route)})
        for s in configs.values():
            s.warm()
            s.router.select(qs[:1], s.budget)
    if not all(s.lucene.batched for s in configs.values()):
        raise SystemExit("the Java batch engine is not compiled here (no javac): nothing to profile")
    rng = random.Random(0)
    rows: dict[str, Any] = {}
    for k in args.k:
        names = list(configs)
        accs: dict[str, dict[str, list[float]]] = {n: {} for n in names}
        fulls: dict[str, list[float]] = {n: [] for n in names}
        for p in range(1 + args.passes):
            for q in qs:
                rng.shuffle(names)
                for n in names:
                    _one(configs[n], q, k, accs[n] if p else {})
                    full = _full(configs[n], q, k)
                    if p:
                        fulls[n].append(full)
        for n in configs:
            row = {st: float(np.mean(accs[n][st])) for st in STAGES}
            row["sum_stages"] = sum(row.values())
            row["full_pipeline"] = float(np.mean(fulls[n]))
            rows[f"{n}|k={k}"] = row
    command = command_line(__file__, argv, prefix=Path(sys.executable).name + " ", quote=False)
    load = os.getloadavg()
    write_json(args.out / "engine-stages.json", {"command": command, "load_average": load, "ms_per_query": rows})
    lines = ["# Per-stage thread CPU per query (ms), interleaved", "", f"Command: `{command}`  ",
             f"Load average at the end: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"]
    for k in args.k:
        names = [n for n in rows if n.endswith(f"|k={k}")]
        lines += ["", f"k={k}", "", "| stage | " + " | ".join(n.split("|")[0] for n in names) + " |",
                  "|---" * (len(names) + 1) + "|"]
        lines += [f"| {st} | " + " | ".join(f"{rows[n][st]:.3f}" for n in names) + " |"
                  for st in (*STAGES, "sum_stages", "full_pipeline")]
    write_markdown(args.out / "engine-stages.md", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
