"""Plot cost-quality curves from `selectsearch eval --json` output.

One line per router: nDCG@10, R@100 and coverage against the fraction of the collection
scored (log scale); exhaustive search is a dashed line, the oracle a dotted reference.

examples:
  selectsearch plot results.json --out curve.png
  selectsearch plot results.json --out curve.png --metrics nDCG@10 coverage --title "SciFact, 16 shards"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from selectsearch.errors import DataNotFoundError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="JSON rows written by `selectsearch eval --json`")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--metrics", nargs="+", default=["nDCG@10", "R@100", "coverage"], help="metrics to plot")
    parser.add_argument("--title", help="figure title")


def execute(args: argparse.Namespace) -> int:
    from selectsearch.reports.curves import plot_curves

    path = Path(args.results)
    if not path.exists():
        raise DataNotFoundError(f"{path} not found; write it with `selectsearch eval ... --json {path}`")
    rows = json.loads(path.read_text())
    if isinstance(rows, dict):  # a benchmark result file: {"rows": [...], ...}
        rows = rows["rows"]
    print(plot_curves(rows, args.out, metrics=args.metrics, title=args.title))
    return 0
