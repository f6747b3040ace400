"""Search a sharded index with one query or a query set.

One --query prints a ranked table and the query's trace. --queries (a BEIR folder with
--split, a queries .jsonl/.tsv file, TREC topics or irds:<id>) writes a TREC run to --output
(or stdout) and, with --trace, one JSON line per query: shards searched, documents scored,
time per stage.

route specs: all, or NAME@M with NAME a router listed at the end of this help (oracle@M needs --qrels or a BEIR
--queries with --split), or a per-query budget NAME@auto[:T][/M] (e.g. hybrid@auto:0.9/8: per query,
the fewest shards whose calibrated coverage reaches T, at most M; the trace shows the shards chosen)

--retriever bm25 (default) searches the selected shards' Lucene indexes; dense their FAISS
indexes (the index needs the faiss backend); hybrid both, fused by RRF (--fusion rrf --rrf-k 60)
or by a convex combination of min-max (or z-score) normalised scores (--fusion convex --alpha A,
A = weight of the dense list). The trace records the retriever, fusion and vectors scored.

examples:
  selectsearch search indexes/scifact-k16 --query "vitamin D deficiency and fractures" --route all --k 10
  selectsearch search indexes/scifact-k16 --queries ../shared/data/scifact --split test \\
      --route centroid@2 --k 1000 --output run.trec --trace trace.jsonl
  selectsearch search indexes/sf-dense16 --query "statins and cancer" --route centroid@2 --retriever dense
  selectsearch search indexes/sf-dense16 --queries ../shared/data/scifact --split test --route all \\
      --retriever hybrid --fusion convex --alpha 0.3 --k 100 --output hybrid.trec
"""

from __future__ import annotations

import argparse
import json
import sys

from selectsearch.cli._common import (
    add_encoder_precision,
    add_router_options,
    apply_encoder_precision,
    parse_router_options,
)
from selectsearch.cli._retriever import add_retriever_options, retriever_kwargs
from selectsearch.errors import SelectSearchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", help="index folder")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--query", action="append", help="one query text (given once)")
    what.add_argument("--queries", action="append", metavar="SOURCE",
                      help="query set, given once: BEIR folder, .jsonl/.tsv, TREC topics, irds:<id>")
    parser.add_argument("--split", help="qrels split of a BEIR folder whose queries to run (e.g. test)")
    parser.add_argument("--qrels", metavar="SOURCE", help="qrels for oracle@M (default: --queries with --split)")
    parser.add_argument("--route", action="append", dest="routes", metavar="SPEC",
                        help="route spec, given once: NAME@M with M at most the index's shard count, "
                             "NAME@auto[:T][/M], or all "
                             "(default all); a sweep such as centroid@1:4 is refused (use `selectsearch eval`)")
    parser.add_argument("--k", type=int, default=10, help="hits per query (default 10)")
    parser.add_argument("--output", metavar="RUN", help="write a TREC run file here (default stdout)")
    parser.add_argument("--trace", metavar="JSONL", help="write per-query traces here")
    parser.add_argument("--tag", default=None, help="run tag (default: the route)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random@M")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="Java threads searching a query's shards concurrently (default 1)")
    add_router_options(parser)
    add_encoder_precision(parser)
    add_retriever_options(parser)


def execute(args: argparse.Namespace) -> int:
    apply_encoder_precision(args)
    from selectsearch.data import load_qrels, load_queries, write_run
    from selectsearch.route import parse_route
    from selectsearch.search import SelectiveSearcher

    if args.k < 1:
        raise SelectSearchError(f"--k must be at least 1, got {args.k}")
    for flag, values in (("--query", args.query), ("--queries", args.queries)):
        if values is not None and len(values) > 1:
            raise SelectSearchError(f"{flag} given {len(values)} times; search takes one (put several queries in a "
                                    "--queries file)")
    args.query = args.query[0] if args.query else None
    args.queries = args.queries[0] if args.queries else None
    if args.routes and len(args.routes) > 1:
        raise SelectSearchError(f"search takes one --route, got {len(args.routes)} ({', '.join(args.routes)}); "
                                "compare routes with `selectsearch eval --route A --route B`")
    spec = parse_route(args.routes[0] if args.routes else "all")  # sweeps and budgets > shards: refused on open
    qrels = None
    if spec.name == "oracle":
        source = args.qrels or args.queries
        if source is None or (args.qrels is None and args.split is None):
            raise SelectSearchError("oracle@M needs judgements: pass --qrels FILE, or --queries BEIR_FOLDER --split S")
        qrels = load_qrels(source, split=args.split)
    searcher = SelectiveSearcher.open(args.index, route=spec, qrels=qrels, seed=args.seed, threads=args.threads,
                                      router_options=parse_router_options(args.router_options),
                                      **retriever_kwargs(args))
    if args.query is not None:
        result = searcher.batch_search({"q": args.query}, k=args.k)["q"]
        if args.output:
            write_run({"q": [(h.doc_id, h.score) for h in result.hits]}, args.output, tag=args.tag or str(spec))
        else:
            width = max([6, *[len(h.doc_id) for h in result.hits]])
            print(f"{'rank':>4}  {'doc_id':<{width}}  {'score':>9}  shard")
            for rank, hit in enumerate(result.hits, 1):
                print(f"{rank:>4}  {hit.doc_id:<{width}}  {hit.score:>9.4f}  {hit.shard_id:>5}")
        print(json.dumps(result.trace.to_json()), file=sys.stderr if not args.trace else sys.stdout)
        if args.trace:
            with open(args.trace, "w") as f:
                f.write(json.dumps(result.trace.to_json()) + "\n")
        return 0
    queries = load_queries(args.queries, split=args.split)
    if not queries:
        raise SelectSearchError(f"no queries in {args.queries}" + (f" for split {args.split}" if args.split else ""))
    results = searcher.batch_search(queries, k=args.k)
    run = {qid: [(h.doc_id, h.score) for h in r.hits] for qid, r in results.items()}
    if args.output:
        write_run(run, args.output, tag=args.tag or str(spec))
    else:
        tag = args.tag or str(spec)
        for qid, hits in run.items():
            for rank, (doc_id, score) in enumerate(hits, 1):
                sys.stdout.write(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")
    if args.trace:
        with open(args.trace, "w") as f:
            for r in results.values():
                f.write(json.dumps(r.trace.to_json()) + "\n")
    return 0
