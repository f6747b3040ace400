"""Check the query cost model across collection sizes (issue 20, item 3).

Fits per-query search + merge CPU = ``a + c * P`` (``P``: postings of the query's terms in the
searched shards, counted from the index's term statistics) on the per-query measurements of the
``--fit`` cost reports (``selectsearch bench`` ``kind = "cost"`` JSON, e.g. 205k and 1M documents),
separately for sharded and unsharded indexes, then predicts every configuration of the ``--check``
report (e.g. 5M documents) from its postings alone:

    predicted total CPU = (route + a + c * P) * (1 + JVM share)

``route`` is the router's mean routing CPU in the largest ``--fit`` report (scaled by the size ratio
for the sample-based ReDDE and Rank-S, whose central sample grows with the collection; kept for
the others, whose cost follows the shard count and vocabulary), ``JVM share`` the mean share of
the JVM's own threads in the ``--fit`` reports. The prediction error per configuration is
``predicted / measured - 1`` (target: within 20%).

Then the model refitted on ALL reports extrapolates the ``--check`` configurations to
``--extrapolate`` documents (postings growing with the collection, same fraction scored), against
exhaustive search on one unsharded index.

Configurations on an index whose shards are also merged into one Lucene index (``one_index`` in
the report: ``selectsearch index --lucene-ranges``) are left out of the fit and the predictions:
the model is that of shard indexes (and of the unsharded index).

Usage:
  PYTHONPATH=. .venv/bin/python eval/scale/model_check.py --fit eval/results/cost/cost-sfwiki32.json \\
      eval/results/scale-5m/cost-syn1m.json --check eval/results/scale-5m/cost-syn5m.json \\
      --out eval/results/scale-5m/model-check
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import command_line, script_parser

#: routers that search a sample of the collection: their routing cost grows with it
SAMPLE_BASED = ("redde", "ranks")


def fit(reports: list[dict[str, Any]], kind: str) -> tuple[float, float, int]:
    """``(a ms, c ms per posting, points)`` of ``search+merge = a + c*P`` over the reports' queries."""
    x, y = [], []
    for report in reports:
        for r in report["results"]:
            if r["kind"] == kind and not r.get("rerank") and r.get("postings") and not r.get("one_index"):
                x += r["postings"]
                y += r["search_merge_cpu"]
    if not x:
        raise SystemExit(f"no per-query {kind} measurements with postings in the reports")
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    (a, c), *_ = np.linalg.lstsq(np.stack([np.ones_like(xs), xs], axis=1), ys, rcond=None)
    return float(a), max(float(c), 0.0), len(xs)


def jvm_share(reports: list[dict[str, Any]]) -> float:
    shares = [r["summary"]["jvm_other_cpu_ms"] / max(r["summary"]["thread_cpu_ms"], 1e-9)
              for report in reports for r in report["results"]]
    return float(np.mean(shares)) if shares else 0.0


def route_costs(report: dict[str, Any]) -> dict[str, float]:
    """Mean routing CPU per router in one report (the cheapest budget's, routing barely depends on it)."""
    out: dict[str, float] = {}
    for r in report["results"]:
        ms = r["summary"]["cpu_ms"]["route"]
        out[r["router"]] = min(out.get(r["router"], ms), ms)
    return out


def predict(report: dict[str, Any], models: dict[str, tuple[float, float, int]], routes: dict[str, float],
            routes_docs: int, jvm: float, docs: float | None = None) -> list[dict[str, Any]]:
    """Predicted total CPU of every configuration of ``report`` (at ``docs`` documents: postings
    scaled from the report's size; default the report's own size)."""
    rows = []
    for r in report["results"]:
        if r.get("rerank") or not r.get("postings") or r.get("one_index"):
            continue  # the model is of shard indexes (and the unsharded index), not of a merged one
        a, c, _ = models[r["kind"]]
        scale = (docs or r["n_docs"]) / r["n_docs"]
        route = routes.get(r["router"], r["summary"]["cpu_ms"]["route"] if docs else 0.0)
        if r["router"] in SAMPLE_BASED:
            route *= (docs or r["n_docs"]) / routes_docs
        postings = float(np.mean(r["postings"])) * scale
        rows.append({"config": f"{r['index']}:{r['route']}", "kind": r["kind"], "router": r["router"],
                     "docs_frac": r["summary"]["fraction_scored"], "ndcg10": r["metrics"].get("nDCG@10"),
                     "postings": postings, "predicted_cpu_ms": (route + a + c * postings) * (1.0 + jvm),
                     "measured_cpu_ms": r["summary"]["total_cpu_ms"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--fit", nargs="+", type=Path, required=True, help="cost reports the model is fitted on")
    parser.add_argument("--check", type=Path, required=True, help="cost report the fitted model predicts")
    parser.add_argument("--extrapolate", type=float, default=100_000_000, help="documents (default 100M)")
    parser.add_argument("--out", type=Path, required=True, help="OUT.json and OUT.md")
    args = parser.parse_args(argv)
    reports = [json.loads(p.read_text()) for p in args.fit]
    check = json.loads(args.check.read_text())
    if len({r["k"] for r in [*reports, check]}) != 1:
        print("the reports have different k: compare runs of one k", file=sys.stderr)
        return 2
    largest = max(reports, key=lambda r: r["results"][0]["n_docs"])
    models = {kind: fit(reports, kind) for kind in ("sharded", "unsharded")}
    rows = predict(check, models, route_costs(largest), largest["results"][0]["n_docs"], jvm_share(reports))
    for row in rows:
        row["error"] = row["predicted_cpu_ms"] / row["measured_cpu_ms"] - 1.0
    everything = [*reports, check]
    refit = {kind: fit(everything, kind) for kind in ("sharded", "unsharded")}
    far = predict(check, refit, route_costs(check), check["results"][0]["n_docs"], jvm_share(everything),
                  docs=args.extrapolate)
    unsharded = next((r for r in far if r["kind"] == "unsharded"), None)
    for row in far:
        row["ratio_to_unsharded"] = row["predicted_cpu_ms"] / unsharded["predicted_cpu_ms"] if unsharded else None
    sizes = sorted({r["results"][0]["n_docs"] for r in reports})
    result = {"command": command_line(__file__, argv, prefix="PYTHONPATH=. " + sys.executable + " "),
              "k": check["k"], "fit_sizes": sizes, "check_size": check["results"][0]["n_docs"],
              "models": {k: {"a_ms": m[0], "c_ns_per_posting": m[1] * 1e6, "points": m[2]} for k, m in models.items()},
              "refit_all": {k: {"a_ms": m[0], "c_ns_per_posting": m[1] * 1e6, "points": m[2]}
                            for k, m in refit.items()},
              "rows": rows, "extrapolated_docs": args.extrapolate, "extrapolation": far}
    write_json(args.out.with_suffix(".json"), result, indent=1, end="\n")
    within = sum(abs(r["error"]) <= 0.2 for r in rows)
    lines = [f"# Cost model across sizes (k={check['k']})", "", "```sh", result["command"], "```", "",
             f"Fitted on {', '.join(f'{n:,}' for n in sizes)} documents (per-query search + merge CPU = a + c x "
             "postings; sharded: " + ", ".join(f"{k} a = {m[0]:.3f} ms, c = {m[1] * 1e6:.2f} ns/posting ({m[2]} "
                                              "points)" for k, m in models.items()) + f"); checked on "
             f"{result['check_size']:,} documents: {within} of {len(rows)} configurations within 20%.", "",
             "| configuration | frac scored | nDCG@10 | postings | predicted CPU ms | measured CPU ms | error |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ndcg = f"{r['ndcg10']:.4f}" if r["ndcg10"] is not None else "-"
        lines.append(f"| {r['config']} | {r['docs_frac']:.3f} | {ndcg} | {r['postings']:,.0f} | "
                     f"{r['predicted_cpu_ms']:.2f} | {r['measured_cpu_ms']:.2f} | {r['error']:+.0%} |")
    lines += ["", f"## Extrapolation to {args.extrapolate:,.0f} documents", "",
              "Refitted on all sizes; every configuration of the checked run keeps its shard count and the "
              "fraction it scores, its postings grow with the collection; routing as measured (ReDDE and "
              "Rank-S grow with the collection). Same document and query distributions assumed; Lucene's "
              "dynamic pruning assumed no better at scale.", "",
              "| configuration | frac scored | predicted CPU ms | x unsharded exhaustive |", "|---|---|---|---|"]
    for r in far:
        ratio = f"{r['ratio_to_unsharded']:.3f}" if r["ratio_to_unsharded"] is not None else "-"
        lines.append(f"| {r['config']} | {r['docs_frac']:.3f} | {r['predicted_cpu_ms']:.1f} | {ratio} |")
    write_markdown(args.out.with_suffix(".md"), [*lines, ""])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
