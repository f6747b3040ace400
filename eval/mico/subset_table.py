"""Markdown table from subset_bench.py JSON files (k-means row once, one MICO row per file).

Usage:
  .venv/bin/python eval/mico/subset_table.py eval/results/mico/hd-subset16k-*.json
"""

from __future__ import annotations

import json
import sys

from selectsearch.bench.script import script_parser


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("files", nargs="*", help="subset_bench.py JSON files")
    files = parser.parse_args(argv).files
    head = ("| system | val AUC (init → best) | test AUC | cov@1 | cov@2 | cov@4 | cost@1 | cost@2 | cost@4 "
            "| max/mean | fit s (wall) |")
    lines = [head, "|" + "---|" * 11]
    for n, path in enumerate(files):
        with open(path) as f:
            d = json.load(f)
        rows = []
        if n == 0:
            rows.append(("dense k-means / centroid", d["kmeans_centroid"], "-"))
        c = d["config"]
        c.setdefault("head_lr", c.get("head_learning_rate"))  # results written since the names were unified
        m = d["mico_frozen"]
        val = f"{m['initial_val_auc']:.2f} → {m['best_val_auc']:.2f}"
        rows.append((f"MICO frozen head_lr={c['head_lr']:g} beta={c['beta']:g} ({m['steps']} steps)", m, val))
        for label, r, v in rows:
            cov, cost = r["coverage"], r["cost_fraction"]
            lines.append(f"| {label} | {v} | {r['auc']:.2f} | {cov['1']:.3f} | {cov['2']:.3f} | {cov['4']:.3f} | "
                         f"{cost['1']:.3f} | {cost['2']:.3f} | {cost['4']:.3f} | "
                         f"{r['balance']['max_over_mean']:.2f} | {r['seconds']:.0f} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
