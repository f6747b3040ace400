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

from selectsearch.errors import DataNotFoundError, SelectSearchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="JSON rows written by `selectsearch eval --json`")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--metrics", nargs="+", action="extend", default=None,
                        help="metrics to plot, each present in the results, repeatable (default: those of nDCG@10 "
                             "R@100 coverage that the results have)")
    parser.add_argument("--title", help="figure title")


def execute(args: argparse.Namespace) -> int:
    from selectsearch.bench.report.curves import available_metrics, check_rows, plot_curves

    path = Path(args.results)
    if not path.is_file():
        raise DataNotFoundError(f"{path} not found; write it with `selectsearch eval ... --json {path}`")
    try:
        rows = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SelectSearchError(f"{path} is not JSON ({exc}); write it with `selectsearch eval ... --json {path}`"
                                ) from exc
    if isinstance(rows, dict):  # a benchmark result file: {"rows": [...], ...}
        rows = rows.get("rows")
    try:
        check_rows(rows)
    except SelectSearchError as exc:
        raise SelectSearchError(f"{path}: {exc}") from exc
    available = available_metrics(rows)
    missing = [m for m in args.metrics or () if m not in available]
    if missing:
        raise SelectSearchError(f"{path} has no {', '.join(missing)}; available metrics: {', '.join(available)}")
    metrics = args.metrics or [m for m in DEFAULT_METRICS if m in available]
    if not metrics:
        raise SelectSearchError(f"{path} has none of the default metrics {', '.join(DEFAULT_METRICS)}; pass --metrics "
                                f"from: {', '.join(available)}")
    print(plot_curves(rows, args.out, metrics=metrics, title=args.title))
    return 0


#: plotted when --metrics is not given (those the results have)
DEFAULT_METRICS = ("nDCG@10", "R@100", "coverage")
