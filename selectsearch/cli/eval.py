"""Evaluate routes on a judged query set: TREC metrics (ir-measures) next to cost.

Every --route is run on the same queries (those judged in --split) and scored with every
--measure; cost columns are mean shards searched, documents scored, fraction of the collection
scored, router and search milliseconds per query. Budget ranges expand to one row per budget
(centroid@1:16); budgets above the index's shard count are left out of a range, with a warning,
and a single budget above it (cori@99 on 8 shards) is refused.

Which queries are averaged: the queries that have judgements in the qrels (--data with --split,
or --queries with --qrels). Queries without judgements are left out, judged queries missing from
the queries are not scored (warnings give both counts, and the judged documents that are not in
the index); metrics and cost are means over the same evaluated queries (cost.queries says how
many). --all-judged averages metrics over every judged query instead, a missing one scoring 0.

--k must reach every measure's cutoff (R@1000 needs --k 1000); the default measures are those of
nDCG@10 R@100 R@1000 that --k reaches. --measures may be repeated (the lists add up).

Per-query budgets: NAME@auto:T searches, per query, the fewest shards of NAME's ranking whose
calibrated probability of holding the query's relevant documents reaches T (default 0.9), at most
M shards with NAME@auto:T/M (default half the shards); NAME@auto:0.7,0.8,0.9 is a sweep. The
calibration is the one stored in INDEX/routing.json (selectsearch tune-route), else an
uncalibrated fallback (warned). Every row reports the distribution of shards searched per query
(JSON: cost.shards_searched_min/p10/p50/p90/max and shards_histogram; the table adds a column
"shards p10/50/90/max" when some route's count varies).

Significance (as the selective-search literature reports it, Kulkarni & Callan): with `all` among
the routes (or --baseline ROUTE), every other row is compared with the baseline on the same
queries: paired t-test and Wilcoxon signed-rank p-values, Holm-corrected over the routes compared
(one family per measure and test), win/tie/loss counts, the mean ratio with a bootstrap interval.
The table adds "vs all MEASURE" (for the first measure: worse / better when the Holm-adjusted
p-value of --significance is below --significance-level (0.05), else n.s. = not significantly worse) and "W/T/L"; the
JSON rows carry it all (significance.measures.MEASURE.{t,wilcoxon}.{p,p_holm}, verdict,
not_worse, wins, ties, losses, ratio_ci) and a 95% bootstrap interval of every mean (ci).
--per-query FILE writes every query's value (TSV: route, query_id, measure, value); their means
are the table's. "Not significantly worse" is absence of evidence, easier to earn the more routes
are compared: read it with W/T/L.

Cost also has process CPU ms per query (cpu_ms, route_cpu_ms, search_cpu_ms) and, with
--postings, the postings of the query terms in the searched shards (from the index's term
statistics). Each row's "setup" (collection, shards, partitioner, queries, split, k) gives
`selectsearch plot` its title and caption.

--retriever bm25|dense|hybrid (and the fusion options) choose what searches the selected shards;
dense and hybrid rows add the vectors scored and their fraction of the collection.

examples:
  selectsearch eval indexes/scifact-k16 --data ../shared/data/scifact --split test \\
      --route all --route centroid@1 --route centroid@4 --measures nDCG@10 R@100 R@1000 --json results.json
  selectsearch eval indexes/scifact-k16 --data ../shared/data/scifact --route all --route cori@1:4 \\
      --per-query per-query.tsv --significance wilcoxon --json results.json
  selectsearch eval indexes/scifact-k16 --queries q.tsv --qrels q.qrels --route random@1:16 --run-dir runs/
  selectsearch eval indexes/sf-dense16 --data ../shared/data/scifact --route all --route centroid@1:16 \\
      --retriever dense
  selectsearch eval indexes/scifact-k16 --data ../shared/data/scifact --route hybrid@2 \\
      --route hybrid@auto:0.8,0.9 --route hybrid@auto:0.95/4 --route ranks
  selectsearch eval indexes/sf-dense16 --data ../shared/data/scifact --route all --retriever hybrid \\
      --fusion convex --alpha 0.3
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from selectsearch.cli._common import (
    add_encoder_precision,
    add_router_options,
    apply_encoder_precision,
    parse_router_options,
    progress_enabled,
)
from selectsearch.cli._retriever import add_retriever_options, retriever_kwargs
from selectsearch.errors import SelectSearchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", help="index folder")
    parser.add_argument("--data", metavar="BEIR", help="BEIR folder with queries and qrels/<split>.tsv")
    parser.add_argument("--split", default="test", help="qrels split (default test)")
    parser.add_argument("--queries", metavar="SOURCE", help="queries (instead of --data): .jsonl, .tsv, topics, irds:")
    parser.add_argument("--qrels", metavar="SOURCE", help="qrels (instead of --data): TREC qrels or BEIR tsv")
    parser.add_argument("--route", action="append", dest="routes", metavar="SPEC",
                        help="route spec NAME@M, NAME@LO:HI, NAME@1,2,4 or NAME@auto[:T][/M] (per-query budget), "
                             "repeatable (default: all); NAME: a router listed at the end of this help")
    parser.add_argument("--measures", nargs="+", action="extend", default=None,
                        help="ir-measures names, repeatable (default: those of nDCG@10 R@100 R@1000 whose cutoff "
                             "--k reaches)")
    parser.add_argument("--k", type=int, default=1000,
                        help="hits retrieved per query, at least every measure's cutoff (default 1000)")
    parser.add_argument("--all-judged", action="store_true",
                        help="average metrics over every judged query of the qrels, those missing from the queries "
                             "scoring 0 (default: over the queries evaluated)")
    parser.add_argument("--json", metavar="FILE", help="write rows {route, metrics, cost} as JSON here")
    parser.add_argument("--run-dir", metavar="DIR", help="write one TREC run file per route here")
    parser.add_argument("--per-query", metavar="FILE",
                        help="write every query's measure values here (TSV: route, query_id, measure, value)")
    parser.add_argument("--baseline", default="auto", metavar="ROUTE",
                        help="route the others are tested against (default: all, when evaluated); none: no tests")
    parser.add_argument("--significance", choices=["t", "wilcoxon"], default="t",
                        help="test whose Holm-adjusted p-value gives the table's verdict column (default t: paired "
                             "t-test; both are in the JSON)")
    parser.add_argument("--significance-level", type=float, default=0.05, metavar="ALPHA",
                        help="level of the verdict (default 0.05)")
    parser.add_argument("--postings", action="store_true",
                        help="also count the postings each query scores (cost.postings; builds the index's term "
                             "statistics on first use)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random@M")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="Java search threads (default 1)")
    add_router_options(parser)
    add_encoder_precision(parser)
    add_retriever_options(parser)


def execute(args: argparse.Namespace) -> int:
    apply_encoder_precision(args)
    from selectsearch.data import load_qrels, load_queries, write_run
    from selectsearch.evaluation import check_cutoffs, evaluate, format_table, parse_measures, per_query_lines
    from selectsearch.search import SelectiveSearcher

    if args.data is None and (args.queries is None or args.qrels is None):
        raise SelectSearchError("pass --data BEIR_FOLDER (with --split), or both --queries and --qrels")
    if args.k < 1:
        raise SelectSearchError(f"--k must be at least 1 (hits retrieved per query), got {args.k}")
    measures = args.measures or default_measures(args.k)
    check_cutoffs(parse_measures(measures), args.k)  # fail fast, before opening anything
    qrels = load_qrels(args.qrels or args.data, split=None if args.qrels else args.split)
    queries = load_queries(args.queries or args.data, split=None if args.queries else args.split)
    searcher = SelectiveSearcher.open(args.index, route="all", threads=args.threads, **retriever_kwargs(args))
    run_dir = Path(args.run_dir) if args.run_dir else None
    if run_dir:
        run_dir.mkdir(parents=True, exist_ok=True)

    def save_run(spec: object, results: dict[str, Any]) -> None:
        if run_dir:
            name = str(spec).replace("@", "-at-").replace(":", "-")
            write_run({q: [(h.doc_id, h.score) for h in r.hits] for q, r in results.items()},
                      run_dir / f"{name}.trec", tag=str(spec).replace("@", "_at_"))

    setup = {"split": None if args.qrels else args.split,
             "queries_source": Path(args.queries or args.data).name, "qrels_source": Path(args.qrels or args.data).name}
    rows = evaluate(searcher, queries, qrels, args.routes or ["all"], measures, k=args.k, seed=args.seed,
                    on_results=save_run, router_options=parse_router_options(args.router_options),
                    progress=progress_enabled(args), all_judged=args.all_judged, baseline=args.baseline,
                    test=args.significance, alpha=args.significance_level, per_query=bool(args.per_query),
                    postings=args.postings, setup=setup)
    # results first: a failure to print must not lose them
    if args.per_query:
        _write_atomic(args.per_query, "\n".join(per_query_lines(rows)) + "\n")
        for row in rows:
            row.pop("per_query", None)
    if args.json:
        _write_atomic(args.json, json.dumps(rows, indent=2))
    print(format_table(rows))
    return 0


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def default_measures(k: int) -> list[str]:
    """The default measures whose cutoff ``k`` reaches (``--k 100``: nDCG@10 R@100).

    Raises:
        SelectSearchError: ``k`` is below every default cutoff.
    """
    measures = [m for m, cutoff in DEFAULT_MEASURES if cutoff <= k]
    if not measures:
        raise SelectSearchError(f"--k {k} is below the cutoff of every default measure "
                                f"({', '.join(m for m, _ in DEFAULT_MEASURES)}); pass --measures, e.g. nDCG@{k}")
    return measures


#: default measures with their cutoffs
DEFAULT_MEASURES = (("nDCG@10", 10), ("R@100", 100), ("R@1000", 1000))
