"""Fit ``hybrid@m`` weights on held-out logged queries, then compare routers on the test split.

(``selectsearch tune-route`` does the fitting half for users and stores the weights with the
index; this script adds the side-by-side test-split coverage of every router.)

The weights are chosen on the logged queries that MICO training held out for validation (the
same seeded split by query, reproduced from the model's config: ``val_fraction``, ``seed``), so
neither the MICO head nor the weights have seen them; the test split is only scored. A fused
``knn`` router's knowledge base is the training part of the logs only (for validation and test
alike), so no validation query finds itself. For an index
that is not MICO-partitioned the same seeded split of the logs is used.

Writes OUT.json (validation grid, chosen weights, test coverage of every router and the fusion)
and OUT.md, and prints the ``selectsearch eval`` command that scores nDCG@10 with those weights.

Example:
  .venv/bin/python eval/mico/hybrid.py indexes/homedepot-mico16 --data ../shared/data/homedepot \\
      --logs train --routers mico,cori --out eval/results/mico/hd-hybrid
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np

from selectsearch.bench.measure import timed
from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import command_line, judged_queries, script_parser
from selectsearch.data import load_qrels, load_queries
from selectsearch.index.sharded import ShardedIndex
from selectsearch.route.base import rank_by_scores
from selectsearch.route.hybrid import fit_weights, standardise
from selectsearch.route.tuning import held_out_logs, scoring_routers
from selectsearch.selective_metrics import coverage_curve, relevant_pairs
from selectsearch.types import Query

BUDGETS = (1, 2, 4, 8)


def test_pairs(index: ShardedIndex, data: str, split: str) -> tuple[list[Query], np.ndarray, np.ndarray]:
    """Judged test queries and their (query row, shard) pairs with relevance > 0."""
    queries = load_queries(data, split=split)
    qrels = load_qrels(data, split=split)
    ids = list(judged_queries(queries, qrels, relevant=True))
    pq, ps = relevant_pairs(ids, qrels, index.shard_of_doc)
    return [Query(q, queries[q]) for q in ids], pq, ps


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("index")
    parser.add_argument("--data", required=True, help="BEIR folder with the logs' qrels and the test split")
    parser.add_argument("--logs", default="train", help="qrels split (or click-log file) MICO was trained on")
    parser.add_argument("--split", default="test")
    parser.add_argument("--routers", default="mico,cori", help="comma-separated routers to fuse")
    parser.add_argument("--step", type=float, default=0.05, help="weight grid resolution")
    parser.add_argument("--router-option", action="append", default=[], metavar="ROUTER.KEY=VALUE",
                        help="an option for one fused router, e.g. distilled.model=DIR")
    parser.add_argument("--out", type=Path, required=True, help="OUT.json and OUT.md")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    index = ShardedIndex.open(args.index)
    names = [n for n in args.routers.split(",") if n]
    options = dict(item.split("=", 1) for item in args.router_option)
    held = held_out_logs(index, args.data, args.logs)
    val_queries, val_pq, val_ps = held.queries, held.pair_query, held.pair_shard
    routers = scoring_routers(index, names, held.train_records, options)
    val_scores = [standardise(routers[n].scores(val_queries)) for n in names]
    weights, val_auc, grid = fit_weights(val_scores, val_pq, val_ps, index.shard_sizes, step=args.step)

    queries, pq, ps = test_pairs(index, args.data, args.split)
    rows = []
    test_scores = {}
    for n in names:
        test_scores[n], ms = timed(lambda n=n: standardise(routers[n].scores(queries)))
        rows.append((n, test_scores[n], ms / len(queries)))
    fused = sum(w * test_scores[n] for w, n in zip(weights, names, strict=True))
    label = "hybrid " + " + ".join(f"{w:.2f} {n}" for w, n in zip(weights, names, strict=True))
    rows.append((label, np.asarray(fused), sum(r[2] for r in rows)))
    results = []
    for name, scores, ms in rows:
        curve = coverage_curve(rank_by_scores(scores), pq, ps, index.shard_sizes)
        results.append({"router": name, "auc": curve.auc, "route_ms_per_query": ms,
                        "coverage": {m: float(curve.coverage[m - 1]) for m in BUDGETS if m <= index.n_shards},
                        "cost_fraction": {m: float(curve.cost_fraction[m - 1]) for m in BUDGETS
                                          if m <= index.n_shards}})
    eval_cmd = (f"selectsearch eval {args.index} --data {args.data} --split {args.split} --route all "
                f"--route hybrid@1:4 --router-option hybrid.routers={','.join(names)} "
                f"--router-option hybrid.weights={','.join(f'{w:g}' for w in weights)}"
                + "".join(f" --router-option hybrid.{item}" for item in args.router_option))
    report = {"command": command_line(__file__, argv, prefix=shlex.quote(sys.executable) + " "),
              "index": args.index, "routers": names, "weights": list(weights), "val_auc": val_auc,
              "n_val_queries": len(val_queries), "n_val_pairs": len(val_pq), "n_test_queries": len(queries),
              "n_test_pairs": len(pq), "grid": grid, "test": results, "eval_command": eval_cmd}
    write_json(args.out.with_suffix(".json"), report, indent=1, end="\n")
    budgets = [m for m in BUDGETS if m <= index.n_shards]
    lines = [f"Weights chosen on {len(val_queries)} held-out logged queries ({len(val_pq)} pairs): "
             f"{', '.join(f'{n} {w:.2f}' for n, w in zip(names, weights, strict=True))} "
             f"(validation AUC {val_auc:.2f}).",
             f"Test: {len(queries)} queries, {len(pq)} (query, relevant document) pairs.", "",
             "| router | AUC | " + " | ".join(f"cov@{m}" for m in budgets) + " | route ms/query |",
             "|---|---|" + "---|" * len(budgets) + "---|"]
    for r in results:
        lines.append(f"| {r['router']} | {r['auc']:.2f} | " + " | ".join(f"{r['coverage'][m]:.3f}" for m in budgets)
                     + f" | {r['route_ms_per_query']:.2f} |")
    write_markdown(args.out.with_suffix(".md"), lines)
    print("\n".join(lines))
    print("\nnDCG@10 with these weights:\n  " + eval_cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
