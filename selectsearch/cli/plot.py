"""Plot cost-quality curves from `selectsearch eval --json` output (or a benchmark result file).

One line per router, each with its own colour (colour-blind-safe), marker and line style, so the
figure reads in greyscale too; numbers at points are the budget m (shards per query, powers of
two) or the target of NAME@auto:T. Exhaustive search is a dashed line labelled with its value,
the oracle a grey dotted reference; a router's own cut-off (ranks, taily) is a star. Shaded bands
are 95% bootstrap intervals over queries (rows from `selectsearch eval` carry them).

The format comes from --out's extension: .pdf, .svg or .png. --x chooses the cost axis: fraction
of the collection scored (default), shards searched, CPU ms per query, or postings scored (eval
--postings); --relative plots % of exhaustive. --preset column sizes the figure for one column of
a two-column paper (panels stacked, 8 pt fonts), page for the full text width, screen (default)
for reports. The title and the caption come from the run's setup in the results (collection,
shards, partitioner, queries, split, k): the caption is printed and stored in the file's
metadata; --title overrides the title, --no-title drops it (papers put it in the caption).

examples:
  selectsearch plot results.json --out curve.png
  selectsearch plot results.json --out fig.pdf --preset column --metrics nDCG@10 --relative --no-title
  selectsearch plot results.json --out curve.svg --x cpu --metrics nDCG@10 R@100
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from selectsearch.errors import DataNotFoundError, SelectSearchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="JSON rows written by `selectsearch eval --json` (or a benchmark's result)")
    parser.add_argument("--out", required=True, help="figure to write: .pdf, .svg or .png")
    parser.add_argument("--metrics", nargs="+", action="extend", default=None,
                        help="metrics to plot, each present in the results, repeatable (default: those of nDCG@10 "
                             "R@100 coverage that the results have)")
    parser.add_argument("--x", choices=["fraction", "shards", "cpu", "postings"], default="fraction",
                        help="cost axis: fraction of the collection scored (default), shards searched, CPU ms per "
                             "query, postings scored per query (needs eval --postings)")
    parser.add_argument("--relative", action="store_true", help="y as %% of exhaustive search (needs the 'all' row)")
    parser.add_argument("--preset", choices=["screen", "column", "page"], default="screen",
                        help="figure size and fonts: screen (default), column (one paper column), page (text width)")
    parser.add_argument("--no-bands", action="store_true", help="no confidence bands")
    parser.add_argument("--no-labels", action="store_true", help="no budget labels at the points")
    title = parser.add_mutually_exclusive_group()
    title.add_argument("--title", help="figure title (default: from the results' setup)")
    title.add_argument("--no-title", action="store_true", help="no title in the figure")


def execute(args: argparse.Namespace) -> int:
    from selectsearch.bench.report.curves import FORMATS, available_metrics, check_rows, figure_text, plot_curves

    path = Path(args.results)
    if Path(args.out).suffix.lower() not in FORMATS:  # before reading anything: the cheapest mistake first
        raise SelectSearchError(f"--out {args.out}: the format comes from the extension, one of {', '.join(FORMATS)}")
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
        check_rows(rows, args.x)
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
    title, caption = figure_text(rows)
    title = None if args.no_title else args.title or title
    try:
        out = plot_curves(rows, args.out, metrics=metrics, title=title, x=args.x, relative=args.relative,
                          bands=not args.no_bands, labels=not args.no_labels, preset=args.preset, caption=caption)
    except SelectSearchError as exc:
        raise SelectSearchError(f"{path}: {exc}") from exc
    print(out)
    if caption:
        print(f"caption: {caption}")
    return 0


#: plotted when --metrics is not given (those the results have)
DEFAULT_METRICS = ("nDCG@10", "R@100", "coverage")
