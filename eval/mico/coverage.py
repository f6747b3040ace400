"""Selective-search coverage of a built index's router on held-out judged pairs.

For every (query, relevant doc) pair of --split (relevance > 0) and every budget m = 1..K:
coverage@m, cost@m and latency-cost@m as fractions of the collection, and the AUC of the
coverage-cost curve (``selectsearch.selective_metrics.coverage_curve``); plus the partition
balance. One JSON object per (index, route) is appended to --json; a Markdown row is printed.

Example:
  .venv/bin/python eval/mico/coverage.py /work/indexes/hd-mico16 --data ../shared/data/homedepot \
      --split test --route mico --json eval/results/mico/hd-coverage.jsonl --label "MICO frozen"
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from selectsearch.bench.measure import timed
from selectsearch.bench.script import add_collection_arguments, judged_queries, script_parser
from selectsearch.data import load_qrels, load_queries
from selectsearch.index.sharded import ShardedIndex
from selectsearch.route import make_router, parse_route
from selectsearch.selective_metrics import coverage_curve, partition_balance, relevant_pairs
from selectsearch.types import Query


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    add_collection_arguments(parser)
    parser.add_argument("--route", required=True, help="router name: mico, centroid, redde, random, ...")
    parser.add_argument("--label", help="row label (default: route)")
    parser.add_argument("--json", type=Path, help="append the result as one JSON line here")
    parser.add_argument("--option", action="append", default=[], help="router option KEY=VALUE")
    args = parser.parse_args(argv)

    index = ShardedIndex.open(args.index)
    queries_all = load_queries(args.data, split=args.split)
    qrels = load_qrels(args.data, split=args.split)
    query_ids = list(judged_queries(queries_all, qrels, relevant=True))
    pair_query, pair_shard = relevant_pairs(query_ids, qrels, index.shard_of_doc)
    options = dict(o.split("=", 1) for o in args.option)
    router = make_router(parse_route(f"{args.route}@1"), index, qrels=qrels, seed=0, **options)
    rankings, ms = timed(lambda: router.rank([Query(q, queries_all[q]) for q in query_ids]))
    route_ms = ms / max(1, len(query_ids))
    curve = coverage_curve(rankings, pair_query, pair_shard, index.shard_sizes)
    k = index.n_shards
    result = {
        "label": args.label or args.route, "index": args.index, "route": args.route, "split": args.split,
        "n_queries": len(query_ids), "n_pairs": len(pair_query), "n_shards": k,
        "partition": index.manifest.partition_kind,
        "coverage": {m: float(curve.coverage[m - 1]) for m in range(1, k + 1)},
        "cost_fraction": {m: float(curve.cost_fraction[m - 1]) for m in range(1, k + 1)},
        "latency_fraction": {m: float(curve.latency_fraction[m - 1]) for m in range(1, k + 1)},
        "auc": curve.auc, "balance": partition_balance(index.shard_sizes), "route_ms_per_query": route_ms,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with args.json.open("a") as f:
            f.write(json.dumps(result) + "\n")
    cov = result["coverage"]
    print(f"| {result['label']} | {cov[1]:.3f} | {cov[min(2, k)]:.3f} | {cov[min(4, k)]:.3f} | {curve.auc:.1f} | "
          f"{result['balance']['max_over_mean']:.2f} |", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
