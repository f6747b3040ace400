"""Explain how a query is routed: per shard, every router's score and rank; the shards chosen at
each budget; shard sizes; and, with judgements, where the query's relevant documents lie.

Give the query as --query TEXT, or as --qid Q with --data BEIR (its text from the folder's
queries, its judgements from qrels/--split; judgements also come with --query when --qid names
a judged query). Routers: --route NAME (repeatable; NAME@auto[:T][/M] shows a per-query cut-off
too). By default, every router of centroid, redde, ranks, taily, cori, mico, knn and hybrid that
this index can serve (one it cannot is left out, with a note on stderr). A fused router (hybrid)
also shows its components' scores (hybrid/cori ...). Routers that need the central sample index
or term statistics build them inside the index folder on first use, as search does.

The table lists every shard; `*` marks the shards chosen at the largest budget, `!` when that
shard holds relevant documents. --json prints all of it as JSON (the data structure of
selectsearch.pipeline.explain.explain_routing).

examples:
  selectsearch explain indexes/scifact-k16 --query "vitamin D deficiency and fractures"
  selectsearch explain indexes/scifact-k16 --data ../shared/data/scifact --qid 1 --budgets 1,2,4
  selectsearch explain indexes/hd-mico16 --data ../shared/data/homedepot --qid 1001 --route mico --route cori \\
      --route hybrid@auto:0.9 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from selectsearch.cli._common import add_router_options, parse_router_options
from selectsearch.errors import DataNotFoundError, SelectSearchError

log = logging.getLogger(__name__)

#: routers tried when no --route is given (those the index cannot serve are left out)
DEFAULT_ROUTERS = ("centroid", "redde", "ranks", "taily", "cori", "mico", "knn", "hybrid")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", help="index folder")
    parser.add_argument("--query", help="query text")
    parser.add_argument("--qid", help="query id: its text from --data (unless --query), its judgements from --split")
    parser.add_argument("--data", metavar="BEIR", help="BEIR folder with the query and its judgements")
    parser.add_argument("--split", default="test", help="qrels split of --data (default test)")
    parser.add_argument("--route", action="append", dest="routes", metavar="NAME",
                        help="router to explain, repeatable: NAME, or NAME@auto[:T][/M] (default: those of "
                             f"{', '.join(DEFAULT_ROUTERS)} the index can serve)")
    parser.add_argument("--budgets", default="1,2,4,8", metavar="M,M,...",
                        help="budgets to show the chosen shards of (default 1,2,4,8; those above the shard count "
                             "are left out)")
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON")
    add_router_options(parser)


def _budgets(text: str, n_shards: int) -> list[int]:
    try:
        budgets = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError as exc:
        raise SelectSearchError(f"--budgets {text!r}: write comma-separated shard counts, e.g. 1,2,4") from exc
    if not budgets or budgets[0] < 1:
        raise SelectSearchError(f"--budgets {text!r}: budgets are shard counts of at least 1, e.g. 1,2,4")
    kept = [m for m in budgets if m <= n_shards]
    return kept or [n_shards]


def _query_and_qrels(args: argparse.Namespace) -> tuple[Any, dict[str, int] | None]:
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.types import Query

    if args.query is None and args.qid is None:
        raise SelectSearchError("pass --query TEXT, or --qid Q with --data BEIR_FOLDER")
    if args.qid is not None and args.data is None:
        raise SelectSearchError("--qid needs --data BEIR_FOLDER (where the query and its judgements are)")
    if args.data is not None and args.qid is None:
        raise SelectSearchError("--data needs --qid Q (which query of the folder to explain)")
    if args.qid is None:
        return Query("q", args.query), None
    qrels = load_qrels(args.data, split=args.split)
    text = args.query
    if text is None:
        queries = dict(load_queries(args.data))
        if args.qid not in queries:
            raise DataNotFoundError(f"query {args.qid!r} is not in {args.data}'s queries ({len(queries)} queries)")
        text = queries[args.qid]
    judged = qrels.get(args.qid)
    if judged is None:
        log.warning("query %s has no judgements in %s (split %s): relevant documents are not shown", args.qid,
                    args.data, args.split)
    return Query(args.qid, text), judged


def _routers(args: argparse.Namespace, index: Any) -> dict[str, Any]:
    from selectsearch.route import make_router, parse_route

    options: dict[str, Any] = parse_router_options(args.router_options)
    if args.routes:
        from selectsearch.route import ROUTERS

        # a bare NAME is built with a budget it takes (the budgets shown come from --budgets)
        specs = [parse_route(_one(r.strip().lower()) if r.strip().lower() in ROUTERS else r) for r in args.routes]
        for spec in specs:
            if spec.is_sweep:
                raise SelectSearchError(f"--route {spec}: explain takes one router per --route (budgets come from "
                                        "--budgets)")
        names = [spec.name for spec in specs]
        return {str(spec) if spec.auto is not None else spec.name: make_router(spec, index, run=names, **options)
                for spec in specs}
    out: dict[str, Any] = {}
    for name in DEFAULT_ROUTERS:
        try:
            out[name] = make_router(_one(name), index, run=DEFAULT_ROUTERS, **options)
        except SelectSearchError as exc:  # a router this index cannot serve: say so and go on
            print(f"selectsearch explain: {name} left out: {exc}", file=sys.stderr)
    if not out:
        raise SelectSearchError("no router of " + ", ".join(DEFAULT_ROUTERS) + " can serve this index; name one "
                                "with --route")
    return out


def _one(name: str) -> str:
    """``NAME@1``: a router built with a budget it can take (budgets come from --budgets)."""
    from selectsearch.route import ROUTERS

    return name if ROUTERS[name].meta.get("budget", "required") == "none" else f"{name}@1"


def execute(args: argparse.Namespace) -> int:
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.pipeline.explain import explain_routing

    query, qrels = _query_and_qrels(args)
    index = ShardedIndex.open(args.index)
    budgets = _budgets(args.budgets, index.n_shards)
    routers = _routers(args, index)
    out = explain_routing(index, routers, query, budgets=budgets, qrels=qrels)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print("\n".join(format_explanation(out)))
    return 0


def _fmt(score: float | None) -> str:
    return "-" if score is None else f"{score:.4g}"


def format_explanation(out: dict[str, Any]) -> list[str]:
    """The text report of :func:`~selectsearch.pipeline.explain.explain_routing`'s output."""
    q = out["query"]
    lines = [f"query {q['query_id']}: {q['text']!r}", f"{out['n_shards']} shards, {out['n_docs']} documents"]
    rel = out.get("relevant")
    if rel is not None:
        lines[-1] += (f"; {rel['judged_relevant']} relevant documents ({rel['in_index']} in the index) in "
                      f"{rel['shards_holding']} shards")
    names = [r["name"] for r in out["routers"]]
    top = str(out["budgets"][-1])
    chosen = {r["name"]: set(r["chosen"][top]) for r in out["routers"]}
    header = ["shard", "docs", "frac", *(["relevant"] if rel is not None else []),
              *[f"{n} score (rank)" for n in names]]
    rows = []
    for shard in out["shards"]:
        cells = [str(shard["shard_id"]), str(shard["size"]), f"{shard['fraction']:.3f}"]
        if rel is not None:
            cells.append(str(shard["relevant"]) + ("!" if shard["relevant"] else ""))
        for n in names:
            r = shard["routers"][n]
            mark = "*" if shard["shard_id"] in chosen[n] else " "
            cells.append(f"{_fmt(r['score'])} ({r['rank']}){mark}")
        rows.append(cells)
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    lines.append("")
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines += ["", f"* = chosen at m={top}" + ("; ! = holds relevant documents" if rel is not None else ""), "",
              "shards chosen" + (" (relevant documents found)" if rel is not None else "") + ":"]
    for r in out["routers"]:
        parts = []
        for m, shards in r["chosen"].items():
            found = f" ({r['relevant_found'][m]})" if rel is not None else ""
            parts.append(f"m={m}: {','.join(map(str, shards))}{found}")
        if "own_cutoff" in r:
            found = f" ({r['own_cutoff_relevant_found']})" if rel is not None else ""
            parts.append(f"own cut-off: {','.join(map(str, r['own_cutoff']))}{found}")
        weight = f" (weight {r['weight']:g} in {r['component_of']})" if "component_of" in r else ""
        lines.append(f"  {r['name']}{weight}  " + "  ".join(parts))
    return lines
