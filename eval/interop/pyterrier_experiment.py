"""Routes compared in PyTerrier's ``pt.Experiment`` (significance against the first), next to ``selectsearch eval``.

Runs ``pt.Experiment`` over one :class:`~selectsearch.pyterrier.SelectiveRetriever` per route on a
judged split, with paired t-tests against the first route and Holm's correction, and evaluates the
same routes with :func:`selectsearch.evaluation.evaluate` (what ``selectsearch eval`` runs), so the
report shows PyTerrier's table and the largest difference between the two sets of metrics.

Usage:
    python eval/interop/pyterrier_experiment.py INDEX --data ../shared/data/scifact --split test \\
        --route all --route cori@2 --route hybrid@auto --out eval/results/figures
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

MEASURES = ["nDCG@10", "R@100", "R@1000", "AP"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index")
    parser.add_argument("--data", required=True, help="BEIR folder with queries and qrels/<split>.tsv")
    parser.add_argument("--split", default="test")
    parser.add_argument("--route", action="append", dest="routes", help="route spec, repeatable (first: baseline)")
    parser.add_argument("--measures", nargs="+", default=MEASURES)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--correction", default="holm", help="multiple-testing correction (statsmodels name)")
    parser.add_argument("--name", default="pyterrier-experiment", help="stem of the output files")
    parser.add_argument("--out", required=True, help="folder for NAME.md and NAME.json")
    args = parser.parse_args(argv)

    import ir_measures
    import pandas as pd
    import pyterrier as pt

    from selectsearch.data import load_qrels as read_qrels
    from selectsearch.data import load_queries
    from selectsearch.evaluation import evaluate
    from selectsearch.pyterrier import SelectiveRetriever, load_qrels, load_topics

    routes = args.routes or ["all", "cori@2"]
    topics = load_topics(args.data, split=args.split)
    qrels = load_qrels(args.data, split=args.split)
    first = SelectiveRetriever(args.index, route=routes[0], k=args.k)
    systems = [first] + [first.with_route(r) for r in routes[1:]]
    t0 = time.perf_counter()
    table = pt.Experiment(systems, topics, qrels, [ir_measures.parse_measure(m) for m in args.measures],
                          names=routes, baseline=0, correction=args.correction)
    pt_seconds = time.perf_counter() - t0
    rows = evaluate(first.searcher, load_queries(args.data, split=args.split), read_qrels(args.data, split=args.split),
                    routes, args.measures, k=args.k)
    ours = {row["route"]: row["metrics"] for row in rows}
    diff = max(abs(float(r[m]) - ours[r["name"]][m]) for _, r in table.iterrows() for m in args.measures)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shown = ["name", *args.measures]
    for m in args.measures:
        shown += [f"{m} +", f"{m} -", f"{m} p-value corrected", f"{m} reject"]
    view = table[shown].copy()
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python", "eval/interop/pyterrier_experiment.py", *given])
    with pd.option_context("display.width", 400, "display.max_columns", 100):
        text = view.to_string(index=False, float_format=lambda x: f"{x:.4g}")
    report = {"command": command, "index": args.index, "data": args.data, "split": args.split, "routes": routes,
              "measures": args.measures, "correction": args.correction, "queries": len(topics),
              "pt_experiment_seconds": round(pt_seconds, 1), "max_abs_difference_vs_selectsearch_eval": diff,
              "table": json.loads(table.to_json(orient="records")),
              "selectsearch_eval": {r["route"]: {"metrics": r["metrics"], "cost": r["cost"]} for r in rows}}
    (out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{args.name}.txt").write_text(text + "\n")
    print(text)
    print(f"largest |pt.Experiment - selectsearch eval| over {len(routes)} routes x {len(args.measures)} measures: "
          f"{diff:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
