"""Run a benchmark definition (TOML) end to end, reusing built indexes.

Builds each [[index]] of the definition under --indexes if it is not there yet, evaluates all
its routes (quality, coverage, overlap with exhaustive, cost) and writes JSON, a Markdown
report (tables + the fraction of the collection at which each router reaches 95% / 99% of
exhaustive nDCG@10 and R@100) and a plot per index into --out.

examples:
  selectsearch bench eval/benchmarks/scifact.toml --out eval/results/scifact
  selectsearch bench eval/benchmarks/scale.toml --out eval/results/scale --only sfwiki-kmeans32
"""

from __future__ import annotations

import argparse
from pathlib import Path

from selectsearch.cli._common import add_help_section, partitioners_help, progress_enabled, routers_help


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("definition", help="benchmark TOML (see eval/benchmarks/)")
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--data", help="data root (default $SELECTSEARCH_DATA or ../shared/data)")
    parser.add_argument("--indexes", default="indexes", help="where indexes are built/reused (default indexes/)")
    parser.add_argument("--threads", type=int, default=2, help="shards indexed in parallel when building")
    parser.add_argument("--only", nargs="+", metavar="INDEX", help="run only these [[index]] names")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the reports from the JSON results")
    add_help_section(parser, routers_help)  # an [[index]]'s routes and router_options
    add_help_section(parser, partitioners_help)  # its partitioner, space and [index.options]


def execute(args: argparse.Namespace) -> int:
    from selectsearch.bench import run_benchmark
    from selectsearch.data import resolve_data_dir

    files = run_benchmark(args.definition, data_root=resolve_data_dir(args.data), indexes_root=Path(args.indexes),
                          out=Path(args.out), threads=args.threads, only=args.only,
                          report_only=args.report_only, progress=progress_enabled(args))
    for f in files:
        print(f)
    return 0
