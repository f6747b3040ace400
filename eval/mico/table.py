"""Markdown table from `selectsearch eval --json` files: coverage, nDCG@10 and cost at budgets 1, 2, 4.

Usage:
  .venv/bin/python eval/mico/table.py LABEL=FILE.json[#ROUTER] [...] [--budgets 1 2 4]

Each FILE holds the rows of one index (``all`` plus ``ROUTER@m`` rows); the exhaustive row gives
the nDCG@10 reference, so "nDCG@10 / exh." is the fraction of exhaustive quality kept.
``#ROUTER`` keeps only that router's rows (for files that evaluated several routers).
"""

from __future__ import annotations

import json
import sys

from selectsearch.bench.script import script_parser


def rows_table(items: list[tuple[str, list[dict]]], budgets: list[int]) -> str:
    head = ["system", "AUC", "max/mean", "nDCG@10 exh."]
    for m in budgets:
        head += [f"cov@{m}", f"nDCG@10 @{m}", f"% of exh. @{m}", f"frac. scored @{m}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, rows in items:
        exhaustive = next((r for r in rows if r["route"] == "all"), None)
        routed = [r for r in rows if r["route"] != "all"]
        if not routed:
            continue
        by_budget = {r["budget"]: r for r in routed}
        ref = exhaustive["metrics"].get("nDCG@10") if exhaustive else None
        cells = [label, f"{routed[0]['metrics'].get('coverage_auc', float('nan')):.1f}",
                 f"{routed[0]['balance']['max_over_mean']:.2f}", f"{ref:.4f}" if ref else "-"]
        for m in budgets:
            r = by_budget.get(m)
            if r is None:
                cells += ["-"] * 4
                continue
            ndcg = r["metrics"].get("nDCG@10", float("nan"))
            cells += [f"{r['metrics']['coverage']:.3f}", f"{ndcg:.4f}", f"{100 * ndcg / ref:.1f}%" if ref else "-",
                      f"{r['cost']['fraction_scored']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("files", nargs="+", help="LABEL=FILE.json or LABEL=FILE.json#ROUTER")
    parser.add_argument("--budgets", nargs="+", type=int, default=[1, 2, 4])
    args = parser.parse_args(argv)
    items = []
    for spec in args.files:
        label, _, target = spec.partition("=")
        path, _, router = target.partition("#")
        with open(path) as f:
            data = json.load(f)
        rows = data["rows"] if isinstance(data, dict) and "rows" in data else data
        if router:
            rows = [r for r in rows if r["route"] == "all" or r["route"].split("@")[0] == router]
        items.append((label, rows))
    print(rows_table(items, args.budgets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
