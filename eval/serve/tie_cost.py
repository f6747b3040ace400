"""What cutting ties by doc id costs the Java engine: the same searcher with and without tie ranks.

The index's searcher cuts its top k by (score, doc id) (``BatchSearch.setTieRanks``), which stops
the scorer from skipping documents that score exactly the k-th score; Lucene's own tie-break (by
docid) may skip them. For each configuration — the unsharded index ``all``, and on the sharded
index ``--route`` (shards chosen once per query, before timing) and ``all`` — and each k, the
queries are searched by ``BatchSearch.search`` alone (one call per query, no Python pipeline),
ranks on and ranks off alternating; thread CPU of the calling thread, least of ``--passes``
passes after one warm-up pass.

Usage (from the repository root):
  .venv/bin/python eval/serve/tie_cost.py indexes/sfwiki-kmeans32 indexes/sfwiki-single \\
      --data ../shared/data/scifact --out eval/results/cost/tie-cost
writes ``tie-cost.json`` and ``tie-cost.md`` into ``--out``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import add_sharded_pair_arguments, command_line, script_parser
from selectsearch.data import load_queries
from selectsearch.index.sharded import ShardedIndex
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Query


def _cpu_ms(engine: Any, texts: list[str], shards: list[list[int]], k: int) -> float:
    t = time.thread_time()
    for text, chosen in zip(texts, shards, strict=True):
        engine.search([text], [0, len(chosen)], chosen, k)
    return (time.thread_time() - t) / max(len(texts), 1) * 1000.0


def main(argv: list[str] | None = None) -> int:
    ap = script_parser(__doc__)
    add_sharded_pair_arguments(ap, passes=3)
    ap.add_argument("--out", type=Path, required=True, help="results folder")
    args = ap.parse_args(argv)
    qs = [Query(q, t) for q, t in load_queries(args.data, split="test").items()]
    texts = [q.text for q in qs]
    configs: list[tuple[str, Any, list[list[int]], bytes]] = []
    for label, path in (("unsharded", args.unsharded), ("sharded", args.sharded)):
        index = ShardedIndex.open(path)
        lucene = index.lucene()
        if not lucene.batched:
            raise SystemExit("the Java batch engine is not compiled here (no javac): nothing to measure")
        ranks = index.doc_id_ranks.astype("<i4").tobytes()
        every = [list(range(lucene.n_shards))] * len(qs)
        configs.append((f"{label} all", lucene._batch, every, ranks))
        if label == "sharded":
            selective = SelectiveSearcher.open(path, args.route)
            chosen = [sorted(s) for s in selective.router.select(qs, selective.budget)]
            configs.append((f"sharded {args.route}", lucene._batch, chosen, ranks))
    best: dict[tuple[str, int, str], float] = {}
    for p in range(1 + args.passes):
        for name, engine, shards, ranks in configs:
            for k in args.k:
                for mode in ("docid", "doc id"):
                    engine.setTieRanks(ranks if mode == "doc id" else None)
                    ms = _cpu_ms(engine, texts, shards, k)
                    if p:
                        key = (name, k, mode)
                        best[key] = min(best.get(key, ms), ms)
        for _, engine, _, ranks in configs:
            engine.setTieRanks(ranks)
    rows = [{"config": name, "k": k, "docid_ms": best[(name, k, "docid")], "doc_id_ms": best[(name, k, "doc id")],
             "ratio": best[(name, k, "doc id")] / best[(name, k, "docid")]}
            for name, *_ in configs for k in args.k]
    command = command_line(__file__, argv, prefix=Path(sys.executable).name + " ", quote=False)
    load = os.getloadavg()
    write_json(args.out / "tie-cost.json", {"command": command, "load_average": load, "queries": len(qs),
                                            "passes": args.passes, "rows": rows})
    lines = ["# What cutting ties by doc id costs the Java search", "", f"Command: `{command}`  ",
             f"{len(qs)} queries; least thread CPU of {args.passes} passes; load average at the end: "
             f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}", "",
             "| configuration | k | ms, ties by Lucene docid | ms, ties by doc id (the default) | ratio |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['config']} | {r['k']} | {r['docid_ms']:.3f} | {r['doc_id_ms']:.3f} | {r['ratio']:.2f} |"
              for r in rows]
    write_markdown(args.out / "tie-cost.md", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
