"""Check the query cost model across collection sizes (issue 20, item 3).

Fits per-query search + merge CPU (:class:`selectsearch.bench.costmodel.SearchCpuModel`)::

    fixed + per_posting * P + per_shard * S + per_log_docs * ln(N)

(``P``: postings of the query's terms in the searched shards, counted from the index's term
statistics; ``S``: shards searched; ``N``: documents in the collection) on the per-query
measurements of the ``--fit`` cost reports (``selectsearch bench`` ``kind = "cost"`` JSON, e.g.
205k and 1M documents), separately for sharded and unsharded indexes, then predicts every
configuration of the ``--check`` report (e.g. 5M documents) from its postings, shards and size:

    predicted total CPU = (route + search) * (1 + JVM share)

``route`` is the router's mean routing CPU: for the sample-based ReDDE and Rank-S, whose central
sample grows with the collection, a line ``u + v * N`` through the ``--fit`` reports' measurements
(proportional to ``N`` when one size was measured); for the others, whose cost follows the shard
count and vocabulary, the largest ``--fit`` report's. A router measured in none of the ``--fit``
reports keeps its routing as measured in ``--check`` (the row says so: only its search is
predicted). ``JVM share`` is the mean share of the JVM's
own threads in the ``--fit`` reports. The prediction error per configuration is
``predicted / measured - 1`` (target: within 20%).

Then the model refitted on ALL reports extrapolates the ``--check`` configurations to
``--extrapolate`` documents (postings growing with the collection, same fraction scored and shard
count), against exhaustive search on one unsharded index.

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

from selectsearch.bench.costmodel import SearchCpuModel, fit_search_cpu, searched_shards
from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import command_line, script_parser

#: routers that search a sample of the collection: their routing cost grows with it
SAMPLE_BASED = ("redde", "ranks")


def modelled(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The report's configurations of ``kind`` the model covers (measured postings, no reranking,
    not on a merged index)."""
    return [r for r in report["results"]
            if r["kind"] == kind and not r.get("rerank") and r.get("postings") and not r.get("one_index")]


def fit(reports: list[dict[str, Any]], kind: str) -> SearchCpuModel:
    """The search + merge CPU model of ``kind`` (``sharded``/``unsharded``) over the reports' queries."""
    measured = [(np.asarray(r["postings"]), searched_shards(r), int(r["n_docs"]), np.asarray(r["search_merge_cpu"]))
                for report in reports for r in modelled(report, kind)]
    if not measured:
        raise SystemExit(f"no per-query {kind} measurements with postings in the reports")
    return fit_search_cpu(measured)


def jvm_share(reports: list[dict[str, Any]]) -> float:
    shares = [r["summary"]["jvm_other_cpu_ms"] / max(r["summary"]["thread_cpu_ms"], 1e-9)
              for report in reports for r in report["results"]]
    return float(np.mean(shares)) if shares else 0.0


def route_costs(reports: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Per router, routing CPU (ms) at ``N`` documents as ``(u, v)``: ``u + v * N`` (module docs).

    A router's routing CPU in one report is its cheapest budget's (routing barely depends on it).
    """
    by_router: dict[str, dict[int, float]] = {}
    for report in reports:
        for r in report["results"]:
            ms = r["summary"]["cpu_ms"]["route"]
            sizes = by_router.setdefault(r["router"], {})
            sizes[int(r["n_docs"])] = min(sizes.get(int(r["n_docs"]), ms), ms)
    out: dict[str, tuple[float, float]] = {}
    for router, sizes in by_router.items():
        largest = max(sizes)
        if router not in SAMPLE_BASED:
            out[router] = (sizes[largest], 0.0)
        elif len(sizes) == 1:
            out[router] = (0.0, sizes[largest] / largest)
        else:
            n = np.asarray(sorted(sizes), dtype=np.float64)
            v, u = np.polyfit(n, [sizes[int(x)] for x in n], 1)
            out[router] = (float(u), float(v))
    return out


def predict(report: dict[str, Any], models: dict[str, SearchCpuModel], routes: dict[str, tuple[float, float]],
            jvm: float, docs: float | None = None) -> list[dict[str, Any]]:
    """Predicted total CPU of every configuration of ``report`` (at ``docs`` documents: postings
    scaled from the report's size, shards searched kept; default the report's own size)."""
    rows = []
    for kind in ("sharded", "unsharded"):
        for r in modelled(report, kind):
            n_docs = float(docs or r["n_docs"])
            # a router measured at none of the fitted sizes: its routing as measured in this report
            # (said in the row: only its search is predicted)
            u, v = routes.get(r["router"], (r["summary"]["cpu_ms"]["route"], 0.0))
            postings = float(np.mean(r["postings"])) * n_docs / r["n_docs"]
            search = models[kind].predict(postings, float(np.mean(searched_shards(r))), n_docs)
            rows.append({"config": f"{r['index']}:{r['route']}", "kind": kind, "router": r["router"],
                         "docs_frac": r["summary"]["fraction_scored"], "ndcg10": r["metrics"].get("nDCG@10"),
                         "postings": postings, "route_cpu_ms": u + v * n_docs, "search_cpu_ms": search,
                         "route_measured_here": r["router"] not in routes,
                         "predicted_cpu_ms": (u + v * n_docs + search) * (1.0 + jvm),
                         "measured_cpu_ms": r["summary"]["total_cpu_ms"]})
    return rows


def describe(model: SearchCpuModel) -> str:
    """The fitted terms in words, e.g. ``0.510 ms + 14.53 ns x P + 0.0350 ms x S (10200 points)``."""
    c = model.coef
    words = {"fixed": f"{c['fixed']:.3f} ms", "per_posting": f"{c['per_posting'] * 1e6:.2f} ns x P",
             "per_shard": f"{c['per_shard']:.4f} ms x S", "per_log_docs": f"{c['per_log_docs']:.3f} ms x ln N"}
    return " + ".join(words[t] for t in model.fitted) + f" ({model.points} points)"


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
    models = {kind: fit(reports, kind) for kind in ("sharded", "unsharded")}
    rows = predict(check, models, route_costs(reports), jvm_share(reports))
    for row in rows:
        row["error"] = row["predicted_cpu_ms"] / row["measured_cpu_ms"] - 1.0
    everything = [*reports, check]
    refit = {kind: fit(everything, kind) for kind in ("sharded", "unsharded")}
    far = predict(check, refit, route_costs(everything), jvm_share(everything), docs=args.extrapolate)
    unsharded = next((r for r in far if r["kind"] == "unsharded"), None)
    for row in far:
        row["ratio_to_unsharded"] = row["predicted_cpu_ms"] / unsharded["predicted_cpu_ms"] if unsharded else None
    sizes = sorted({r["results"][0]["n_docs"] for r in reports})
    result = {"command": command_line(__file__, argv, prefix="PYTHONPATH=. " + sys.executable + " "),
              "k": check["k"], "fit_sizes": sizes, "check_size": check["results"][0]["n_docs"],
              "models": {k: m.to_dict() for k, m in models.items()},
              "refit_all": {k: m.to_dict() for k, m in refit.items()},
              "rows": rows, "extrapolated_docs": args.extrapolate, "extrapolation": far}
    write_json(args.out.with_suffix(".json"), result, indent=1, end="\n")
    within = sum(abs(r["error"]) <= 0.2 for r in rows)
    lines = [f"# Cost model across sizes (k={check['k']})", "", "```sh", result["command"], "```", "",
             f"Fitted on {', '.join(f'{n:,}' for n in sizes)} documents (per-query search + merge CPU = fixed + "
             "per_posting x P + per_shard x S + per_log_docs x ln N; P postings of the query's terms in the S "
             "searched shards, N documents): " + "; ".join(f"{k}: {describe(m)}" for k, m in models.items())
             + f". Checked on {result['check_size']:,} documents: {within} of {len(rows)} configurations within 20%.",
             "",
             "| configuration | frac scored | nDCG@10 | postings | predicted CPU ms | measured CPU ms | error |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ndcg = f"{r['ndcg10']:.4f}" if r["ndcg10"] is not None else "-"
        mark = " (routing as measured here: not at the fitted sizes)" if r["route_measured_here"] else ""
        lines.append(f"| {r['config']}{mark} | {r['docs_frac']:.3f} | {ndcg} | {r['postings']:,.0f} | "
                     f"{r['predicted_cpu_ms']:.2f} | {r['measured_cpu_ms']:.2f} | {r['error']:+.0%} |")
    lines += ["", f"## Extrapolation to {args.extrapolate:,.0f} documents", "",
              "Refitted on all sizes (" + "; ".join(f"{k}: {describe(m)}" for k, m in refit.items()) + "); every "
              "configuration of the checked run keeps its shard count and the fraction it scores, its postings "
              "grow with the collection; routing as measured at the largest size (ReDDE and Rank-S: the line "
              "through the sizes measured). Same document and query distributions assumed; Lucene's dynamic "
              "pruning assumed no better at scale.", "",
              "| configuration | frac scored | predicted CPU ms | x unsharded exhaustive |", "|---|---|---|---|"]
    for r in far:
        ratio = f"{r['ratio_to_unsharded']:.3f}" if r["ratio_to_unsharded"] is not None else "-"
        lines.append(f"| {r['config']} | {r['docs_frac']:.3f} | {r['predicted_cpu_ms']:.1f} | {ratio} |")
    write_markdown(args.out.with_suffix(".md"), [*lines, ""])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
