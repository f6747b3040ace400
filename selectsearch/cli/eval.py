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

--retriever bm25|dense|hybrid (and the fusion options) choose what searches the selected shards;
dense and hybrid rows add the vectors scored and their fraction of the collection.

examples:
  selectsearch eval indexes/scifact-k16 --data ../shared/data/scifact --split test \\
      --route all --route centroid@1 --route centroid@4 --measures nDCG@10 R@100 R@1000 --json results.json
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
    parser.add_argument("--seed", type=int, default=0, help="seed of random@M")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="Java search threads (default 1)")
    add_router_options(parser)
    add_encoder_precision(parser)
    add_retriever_options(parser)


def execute(args: argparse.Namespace) -> int:
    apply_encoder_precision(args)
    from selectsearch.data import load_qrels, load_queries, write_run
    from selectsearch.evaluation import check_cutoffs, evaluate, format_table, parse_measures
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

    rows = evaluate(searcher, queries, qrels, args.routes or ["all"], measures, k=args.k, seed=args.seed,
                    on_results=save_run, router_options=parse_router_options(args.router_options),
                    progress=progress_enabled(args), all_judged=args.all_judged)
    if args.json:  # results first: a failure to print must not lose them
        tmp = f"{args.json}.tmp"
        with open(tmp, "w") as f:
            json.dump(rows, f, indent=2)
        os.replace(tmp, args.json)
    print(format_table(rows))
    return 0


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
