"""Gather the routing acceptance rows (issue 19) into eval/results/routing/summary.json (+ .md).

Reads what the routing benchmarks wrote and recomputes nothing:

- ``shift-<collection>.json`` (``eval/routing/shift.py``): per setting (``in-distribution``,
  ``new-topics``, ``unlogged-docs``) and budget (``1``, ``2``, ``4``, ``auto``), the default
  learned route (``hybrid[tuned]``: what ``tune-route`` stores) against the best classic router
  at the same fraction of documents scored;
- ``budget-<collection>.json`` (``eval/routing/budget.py``): the smallest coverage target whose
  per-query budget reaches 97% of exhaustive nDCG@10, with its documents scored (rows with
  ``budget`` = ``"auto:T"``, setting ``in-distribution``);
- ``cost.json`` when present (``eval/routing/cost.py --summary``): routing CPU against BM25
  search CPU per query, one query at a time and as one batch (``mode``), and coverage AUC
  against the transformer encoder's (rows with ``setting`` = ``"cost"``);
- ``coalesce-<collection>.json`` when present (``eval/routing/coalesce.py``): the same with C
  requests in flight routed together by the serving coordinator (``mode`` = ``"served, C in
  flight"``).

Each acceptance line is then a filter over the rows, printed with its verdict in summary.md.

Usage:
  PYTHONPATH=. .venv/bin/python eval/routing/summary.py            # reads and writes eval/results/routing
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import REPO, command_line, script_parser

COLLECTIONS = ("scifact", "homedepot")
#: share of exhaustive nDCG@10 the per-query budget must reach, and the documents it may score
BUDGET_GOAL = {"scifact": 0.15, "homedepot": 0.20}
#: under shift, the default route may trail the best classic router by at most this (nDCG@10 points)
SHIFT_SLACK = 0.5
#: in distribution on Home Depot at 2 shards, it must lead by at least this
HD_LEAD = 2.0


def shift_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary rows of one shift report, in the acceptance's vocabulary."""
    out = []
    for row in report["summary"]:
        out.append({"setting": row["setting"], "collection": report["collection"], "route": row["route"],
                    "budget": row["budget"], "docs_frac": row["docs_frac"], "shards_mean": row.get("shards_mean"),
                    "ndcg10": row["ndcg10"], "exhaustive_ndcg10": row["exhaustive_ndcg10"],
                    "best_classic_route": row["best_classic_route"],
                    "best_classic_ndcg10": row["best_classic_ndcg10"], "margin_ci95": row.get("margin_ci95")})
    return out


def budget_row(report: dict[str, Any]) -> dict[str, Any] | None:
    """The per-query budget row of one budget report (smallest target reaching 97%)."""
    s = report["summary"]
    auto = s.get("auto_reaching")
    if not auto:
        return None
    return {"setting": "in-distribution", "collection": report["collection"], "route": auto["route"],
            "budget": f"auto:{auto['target']:g}", "docs_frac": auto["docs_frac"], "shards_mean": auto["shards"],
            "ndcg10": auto["ndcg10"], "exhaustive_ndcg10": s["exhaustive_ndcg10"],
            "share_of_exhaustive": auto["ndcg10"] / s["exhaustive_ndcg10"], "docs_goal": BUDGET_GOAL.get(
                report["collection"]), "source": "budget"}


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """One Markdown line per acceptance check, from the rows."""
    lines = []
    for r in rows:
        if r["setting"] in ("new-topics", "unlogged-docs") and r.get("best_classic_ndcg10") is not None:
            margin = 100 * (r["ndcg10"] - r["best_classic_ndcg10"])
            ok = margin >= -SHIFT_SLACK
            ci = r.get("margin_ci95")
            ci_text = f" (95% CI {ci[0]:+.2f}..{ci[1]:+.2f})" if ci else ""
            lines.append(f"| {r['collection']} | {r['setting']} | {r['budget']} ({r['docs_frac']:.3f} docs) | "
                         f"{r['ndcg10']:.4f} vs {r['best_classic_ndcg10']:.4f} ({r['best_classic_route']}) | "
                         f"{margin:+.2f}{ci_text} >= -{SHIFT_SLACK} | {'met' if ok else '**missed**'} |")
        elif r["setting"] == "in-distribution" and r["collection"] == "homedepot" and r["budget"] == "2":
            margin = 100 * (r["ndcg10"] - r["best_classic_ndcg10"])
            lines.append(f"| homedepot | in-distribution | 2 ({r['docs_frac']:.3f} docs) | {r['ndcg10']:.4f} vs "
                         f"{r['best_classic_ndcg10']:.4f} ({r['best_classic_route']}) | {margin:+.2f} >= +{HD_LEAD} | "
                         f"{'met' if margin >= HD_LEAD else '**missed**'} |")
        elif r.get("source") == "budget":
            goal = r["docs_goal"]
            ok = r["share_of_exhaustive"] >= 0.97 and goal is not None and r["docs_frac"] <= goal
            lines.append(f"| {r['collection']} | in-distribution | {r['budget']} | 97% of exhaustive at "
                         f"{r['docs_frac']:.3f} docs | <= {goal} docs | {'met' if ok else '**missed**'} |")
        elif r["setting"] == "cost":
            ok = r["route_ms"] <= 0.25 * r["search_ms"]
            default = " (default)" if r.get("default") else ""
            mode = f", {r['mode']}" if r.get("mode") else ""
            lines.append(f"| {r['collection']} | cost{mode} | {r['route']}{default} | routing {r['route_ms']:.3f} ms "
                         f"vs search {r['search_ms']:.3f} ms CPU/query ({r['route_ms'] / r['search_ms']:.0%}) | "
                         f"<= 25% | {'met' if ok else '**missed**'} |")
            if "coverage_auc" in r and r.get("mode", "per-query") == "per-query":
                ok = r["coverage_auc"] >= r["reference_auc"] - 1.0
                lines.append(f"| {r['collection']} | cost | {r['route']}{default} | coverage AUC "
                             f"{r['coverage_auc']:.2f} vs transformer {r['reference_auc']:.2f} | within 1 point | "
                             f"{'met' if ok else '**missed**'} |")
    return lines


def coalesce_rows(collection: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Cost rows of ``eval/routing/coalesce.py``: routing CPU per query when C requests in flight
    are routed together by the serving coordinator (``mode`` = ``"served, C in flight"``)."""
    return [{"setting": "cost", "mode": f"served, {r['concurrency']} in flight", "collection": collection,
             "route": result["route"], "route_ms": r["route_cpu_ms"], "search_ms": result["search_cpu_ms"],
             "route_cpu_ms": r["route_cpu_ms"], "search_cpu_ms": result["search_cpu_ms"],
             "requests_per_call": r["requests_per_call"]}
            for r in result["runs"] if r.get("mode", "coalesced") == "coalesced"]


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--results", type=Path, default=REPO / "eval" / "results" / "routing",
                        help="folder of the routing results (read and written)")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    missing = []
    for name in COLLECTIONS:
        shift = args.results / f"shift-{name}.json"
        budget = args.results / f"budget-{name}.json"
        if shift.is_file():
            rows += shift_rows(json.loads(shift.read_text()))
        else:
            missing.append(shift.name)
        if budget.is_file():
            row = budget_row(json.loads(budget.read_text()))
            if row is not None:
                rows.append(row)
        else:
            missing.append(budget.name)
    cost = args.results / "cost.json"
    if cost.is_file():
        rows += json.loads(cost.read_text())["rows"]
    else:
        missing.append(cost.name)
    for coalesced in sorted(args.results.glob("coalesce-*.json")):
        rows += coalesce_rows(coalesced.stem.removeprefix("coalesce-"), json.loads(coalesced.read_text()))
    write_json(args.results / "summary.json", rows, indent=1, end="\n")
    lines = ["# Routing acceptance (issue 19): summary", "", "```sh",
             command_line(__file__, argv, prefix="PYTHONPATH=. " + sys.executable + " "), "```", "",
             "Rows in `summary.json`; sources: `shift-*.json`, `budget-*.json`, `cost.json`, `coalesce-*.json` (their "
             "commands are in "
             "their .md files). The default learned route is `hybrid[tuned]`: what `tune-route` stores (its shard "
             "ranker where it kept one, else the gated weights), with `knn`'s default query encoder "
             "(`knn.encoder=adapted`).", "",
             "| collection | setting | budget | default vs best classic | target | verdict |",
             "|---|---|---|---|---|---|", *verdicts(rows), ""]
    if missing:
        lines.append(f"Not found (not measured yet): {', '.join(missing)}.")
    write_markdown(args.results / "summary.md", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
