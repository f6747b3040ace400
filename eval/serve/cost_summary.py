"""Gather the query-cost acceptance rows (issue 20) into summary.json (+ summary.md).

Reads the reports of ``kind = "cost"`` benchmarks (``selectsearch bench DEF.toml``: JSON files
with ``results`` and ``latency``) in the given folders and recomputes nothing. One row per
(report, configuration)::

    {"docs", "k", "config", "docs_frac", "ndcg10", "cpu_ms", "cpu_ms_process", "ratio_to_unsharded",
     "ratio_process_to_unsharded", "benchmark", "load_average_at_end"}

``cpu_ms`` is the in-process CPU per query (route + search + merge + the JVM's own threads, the
interleaved run); ``cpu_ms_process`` the CPU per query of a separate client process running the
configuration alone with 1 client (only for the report's ``latency_routes``); the ratios divide
by the unsharded index's exhaustive search of the same report (same run, same queries, same k).

Usage:
  PYTHONPATH=. .venv/bin/python eval/serve/cost_summary.py                      # eval/results/cost
  PYTHONPATH=. .venv/bin/python eval/serve/cost_summary.py eval/results/cost eval/results/scale-5m \\
      --out eval/results/cost
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import REPO, command_line, script_parser

#: the issue's targets at 205k documents: (k, config) -> (largest in-process ratio, largest per-process ratio)
TARGETS_205K: dict[tuple[int, str], tuple[float, float | None]] = {
    (1000, "sfwiki-kmeans32:cori@2"): (0.40, 0.40),
    (1000, "sfwiki-kmeans32:all"): (1.15, None),
    (10, "sfwiki-kmeans32:cori@2"): (0.60, None),
    (10, "sfwiki-kmeans32:all"): (1.30, None),
    # the same shards as doc id ranges of one Lucene index (selectsearch index --lucene-ranges)
    (1000, "sfwiki-kmeans32-ranges:cori@2"): (0.40, 0.40),
    (1000, "sfwiki-kmeans32-ranges:all"): (1.15, None),
    (10, "sfwiki-kmeans32-ranges:cori@2"): (0.60, None),
    (10, "sfwiki-kmeans32-ranges:all"): (1.30, None),
}


def report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary rows of one cost report; ratios against its unsharded exhaustive row."""
    process = {f"{r['index']}:{r['route']}": r["process_cpu_ms_per_query"]
               for r in report.get("latency", []) if r["clients"] == 1}
    rows = []
    for r in report["results"]:
        s = r["summary"]
        rows.append({"docs": r["n_docs"], "k": report["k"], "config": f"{r['index']}:{r['route']}",
                     "unsharded": r["kind"] == "unsharded" and r["route"] == "all",
                     "docs_frac": s["fraction_scored"], "ndcg10": r["metrics"].get("nDCG@10"),
                     "cpu_ms": s["total_cpu_ms"], "cpu_ms_process": process.get(f"{r['index']}:{r['route']}"),
                     "benchmark": report["benchmark"], "load_average_at_end": report.get("load_average_at_end")})
    base = next((row for row in rows if row["unsharded"]), None)
    for row in rows:
        row["ratio_to_unsharded"] = row["cpu_ms"] / base["cpu_ms"] if base else None
        row["ratio_process_to_unsharded"] = (row["cpu_ms_process"] / base["cpu_ms_process"]
                                             if base and base["cpu_ms_process"] and row["cpu_ms_process"] else None)
        del row["unsharded"]
    return rows


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """One Markdown line per target of the issue that the rows can check."""
    lines = []
    for (k, config), (limit, limit_process) in TARGETS_205K.items():
        row = next((r for r in rows if r["k"] == k and r["config"] == config and r["docs"] < 300_000), None)
        if row is None:
            lines.append(f"| {config} | {k} | - | <= {limit:.2f}x | not measured |")
            continue
        ok = row["ratio_to_unsharded"] is not None and row["ratio_to_unsharded"] <= limit
        lines.append(f"| {config} | {k} | {row['ratio_to_unsharded']:.2f}x in-process | <= {limit:.2f}x | "
                     f"{'met' if ok else '**missed**'} |")
        if limit_process is not None:
            ratio = row["ratio_process_to_unsharded"]
            ok = ratio is not None and ratio <= limit_process
            shown = f"{ratio:.2f}x" if ratio is not None else "-"
            lines.append(f"| {config} | {k} | {shown} per client process | <= {limit_process:.2f}x | "
                         f"{'met' if ok else '**missed**'} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("folders", nargs="*", type=Path, default=[REPO / "eval" / "results" / "cost"],
                        help="folders holding cost reports (default eval/results/cost)")
    parser.add_argument("--out", type=Path, default=None, help="where summary.json/.md go (default: the first folder)")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    sources = []
    for folder in args.folders:
        for path in sorted(folder.glob("*.json")):
            report = json.loads(path.read_text())
            if not isinstance(report, dict) or "results" not in report or "latency" not in report:
                continue  # not a cost report (e.g. a previous summary.json)
            rows += report_rows(report)
            sources.append(f"`{path.name}` ({report['command']})")
    if not rows:
        print(f"no cost reports (bench kind = \"cost\" JSON) in {', '.join(map(str, args.folders))}", file=sys.stderr)
        return 2
    out = args.out or args.folders[0]
    write_json(out / "summary.json", rows, indent=1, end="\n")
    table = ["| docs | k | config | frac scored | nDCG@10 | CPU ms | x unsharded | CPU ms, client process "
             "| x unsharded |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        proc = f"{r['cpu_ms_process']:.2f}" if r["cpu_ms_process"] is not None else "-"
        proc_ratio = f"{r['ratio_process_to_unsharded']:.2f}" if r["ratio_process_to_unsharded"] is not None else "-"
        ratio = f"{r['ratio_to_unsharded']:.2f}" if r["ratio_to_unsharded"] is not None else "-"
        ndcg = f"{r['ndcg10']:.4f}" if r["ndcg10"] is not None else "-"
        table.append(f"| {r['docs']:,} | {r['k']} | {r['config']} | {r['docs_frac']:.3f} | {ndcg} | "
                     f"{r['cpu_ms']:.2f} | {ratio} | {proc} | {proc_ratio} |")
    lines = ["# Query cost (issue 20): summary", "", "```sh",
             command_line(__file__, argv, prefix="PYTHONPATH=. " + sys.executable + " "), "```", "",
             "Sources (each measured in one interleaved run; ratios are within a run):", "",
             *[f"- {s}" for s in sources], "", "## Acceptance at 205k documents", "",
             "| config | k | measured | target | verdict |", "|---|---|---|---|---|", *verdicts(rows), "",
             "## All rows", "", *table, ""]
    write_markdown(out / "summary.md", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
