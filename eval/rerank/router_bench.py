"""Distilled router vs its MICO teacher on one index, measured in the same run.

1. ``selectsearch.evaluation.evaluate`` for each router (same searcher, same queries): nDCG@10,
   R@100, coverage and coverage AUC (over all budgets 1..K) at budgets --budgets, and the
   router's ms/query as the searcher's trace records it.
2. Routing cost alone, alternating the routers --repeats times over all test queries (so machine
   load hits all alike): median ms/query of ``router.rank`` per router.

Routers: ``mico`` (teacher, the index's MICO model), ``distilled`` (``--student`` folder,
KB-augmented) and, with --ablate-retrieval, ``distilled`` with ``retrieval=0`` (the student alone).
Writes OUT.json / OUT.md.

Example:
  .venv/bin/python eval/rerank/router_bench.py indexes/homedepot-mico16 --data ../shared/data/homedepot \\
      --student /work/models/hd-distilled-router --out eval/results/distilled-router/homedepot-mico16
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from selectsearch.bench.measure import median, timed
from selectsearch.bench.report import write_result
from selectsearch.bench.script import add_collection_arguments, command_line, judged_queries, script_parser


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    add_collection_arguments(parser)
    parser.add_argument("--student", action="append", required=True, help="LABEL=FOLDER or FOLDER (repeatable)")
    parser.add_argument("--budgets", default="1,2,4,8")
    parser.add_argument("--measures", nargs="+", default=["nDCG@10", "R@100"])
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ablate-retrieval", action="store_true", help="also route each student without its KB")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate
    from selectsearch.route import make_router
    from selectsearch.search import SelectiveSearcher, as_queries

    qrels = load_qrels(args.data, split=args.split)
    queries = judged_queries(load_queries(args.data, split=args.split), qrels)
    searcher = SelectiveSearcher.open(args.index, "all")
    index = searcher.index
    systems: list[tuple[str, str, dict[str, object]]] = [("mico", "mico", {})]
    for item in args.student:
        label, _, folder = item.rpartition("=")
        label = label or "distilled"
        systems.append((label, "distilled", {"model": folder}))
        if args.ablate_retrieval:
            systems.append((f"{label} (no retrieval)", "distilled", {"model": folder, "retrieval": 0}))
    budgets = [int(b) for b in args.budgets.split(",")]
    rows = []
    for label, name, options in systems:
        spec = f"{name}@{','.join(map(str, budgets))}" if len(budgets) > 1 else f"{name}@{budgets[0]}"
        t = time.perf_counter()
        for row in evaluate(searcher, queries, qrels, [spec], args.measures, k=args.k, router_options=options):
            row["label"] = label
            rows.append(row)
        print(f"{label}: evaluated in {time.perf_counter() - t:.0f}s", file=sys.stderr, flush=True)

    # routing cost alone, routers alternated
    qs = as_queries(queries)
    routers = {label: make_router(f"{name}@2", index, **options) for label, name, options in systems}
    for r in routers.values():
        r.rank(qs[:8])  # warm-up (lazy loads)
    times: dict[str, list[float]] = {label: [] for label in routers}
    for rep in range(args.repeats):
        order = list(routers) if rep % 2 == 0 else list(reversed(list(routers)))
        for label in order:
            _, ms = timed(routers[label].rank, qs)
            times[label].append(ms / len(qs))
    timing = {label: {"median_ms_per_query": median(v), "runs_ms_per_query": v}
              for label, v in times.items()}
    teacher_ms = timing["mico"]["median_ms_per_query"]

    def pick(label: str, budget: int) -> dict[str, object]:
        return next(r for r in rows if r["label"] == label and r["budget"] == budget)

    teacher2 = pick("mico", 2)
    summary = []
    for label, _, _ in systems:
        r2 = pick(label, 2)
        entry = {"router": label, "nDCG@10@2": r2["metrics"]["nDCG@10"], "coverage@2": r2["metrics"]["coverage"],
                 "coverage_auc": r2["metrics"]["coverage_auc"], "route_ms_eval": r2["cost"]["router_ms"],
                 "route_ms_median": timing[label]["median_ms_per_query"]}
        entry["ndcg_ratio"] = entry["nDCG@10@2"] / teacher2["metrics"]["nDCG@10"]  # type: ignore[operator]
        entry["auc_ratio"] = entry["coverage_auc"] / teacher2["metrics"]["coverage_auc"]  # type: ignore[operator]
        entry["ms_ratio"] = entry["route_ms_median"] / teacher_ms  # type: ignore[operator]
        summary.append(entry)
    command = command_line(__file__, argv or sys.argv[1:], prefix="OMP_NUM_THREADS=1 .venv/bin/python ")
    result = {"command": command, "index": args.index, "data": args.data, "split": args.split,
              "queries": len(queries), "k": args.k, "summary": summary, "timing": timing, "rows": rows}
    lines = [f"# Distilled router vs MICO teacher: {Path(args.index).name}, {args.split} ({len(queries)} queries)", "",
             f"Command: `{command}`", "",
             "Targets (issue 6): coverage AUC and nDCG@10 at budget 2 >= 95% of the teacher's; routing ms/query "
             "<= 35% of the teacher's. `route ms (eval)`: the router's time per query in the evaluation traces "
             f"(all {len(queries)} queries routed as one batch); `route ms (median)`: median over {args.repeats} "
             "alternating timing runs of `router.rank` on all queries (one torch thread; 2-core machine shared with "
             "other jobs, compare ratios).", "",
             "| router | nDCG@10 @2 | coverage @2 | coverage AUC | route ms (eval) | route ms (median) "
             "| nDCG ratio | AUC ratio | ms ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in summary:
        lines.append(f"| {e['router']} | {e['nDCG@10@2']:.4f} | {e['coverage@2']:.4f} | {e['coverage_auc']:.2f} | "
                     f"{e['route_ms_eval']:.3f} | {e['route_ms_median']:.3f} | {e['ndcg_ratio']:.3f} | "
                     f"{e['auc_ratio']:.3f} | {e['ms_ratio']:.3f} |")
    lines += ["", "All budgets:", "", "| route | " + " | ".join(args.measures) + " | coverage | route ms |",
              "|---|" + "---|" * (len(args.measures) + 2)]
    for r in rows:
        lines.append(f"| {r['label']} @{r['budget']} | " + " | ".join(f"{r['metrics'][m]:.4f}" for m in args.measures)
                     + f" | {r['metrics']['coverage']:.4f} | {r['cost']['router_ms']:.3f} |")
    lines.append("")
    write_result(args.out, result, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
