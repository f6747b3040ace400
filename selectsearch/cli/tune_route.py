"""Fit the weights of the fused router hybrid@m on held-out logged queries; store them with the index.

The logged queries MICO training held out for validation (the same seeded split by query; for an
index that is not MICO-partitioned, 10% of the logged queries, seed 0) score every weight vector
on a grid by coverage AUC, the area under the coverage-cost curve of their clicked documents.
The best is written to INDEX/routing.json; from then on `--route hybrid@M` without
--router-option hybrid.routers/weights uses it. The knn router's knowledge base during tuning is
the training part of the logs only; at search time it reads all of --logs.

Paths are stored absolute (--data, a --logs file), so the tuned index works from any folder. When
the data move, --router-option knn.data=DIR overrides the stored folder, and so does
$SELECTSEARCH_DATA when --data was inside the data folder at tuning time ($SELECTSEARCH_DATA/<name>).
--router-option must be ROUTER.KEY=VALUE for one of --routers, with a KEY that router takes.

examples:
  selectsearch tune-route indexes/hd-mico16 --data ../shared/data/homedepot --logs train \\
      --routers mico,cori,taily,knn
  selectsearch eval indexes/hd-mico16 --data ../shared/data/homedepot --split test --route hybrid@1:4
  selectsearch tune-route indexes/scifact-k16 --data ../shared/data/scifact --routers centroid,cori,knn --overwrite
"""

from __future__ import annotations

import argparse
import json
import sys

from selectsearch.cli._common import add_help_section


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tune-route``."""
    parser.add_argument("index", help="sharded index folder (routing.json is written into it)")
    parser.add_argument("--data", required=True, help="BEIR folder whose qrels split (--logs) is the search log")
    parser.add_argument("--logs", default="train",
                        help="qrels split of --data, or a click-log file (TSV/JSONL query, doc_id[, clicks]); "
                             "default train. Never the split you evaluate on")
    parser.add_argument("--routers", default="mico,cori,taily,knn",
                        help="comma-separated scoring routers to fuse (default mico,cori,taily,knn; on an index "
                             "without a MICO model use centroid in place of mico)")
    parser.add_argument("--step", type=float, default=0.1, help="weight grid resolution (default 0.1)")
    parser.add_argument("--router-option", action="append", default=[], metavar="ROUTER.KEY=VALUE",
                        help="option of one fused router, e.g. mico.mico_model=DIR or knn.k=50 (stored)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing routing.json")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_help_section(parser, _fusable_help)


def _fusable_help() -> str:
    from selectsearch.route.registry import ROUTERS, fusable

    return ("routers --routers can fuse and their --router-option ROUTER.KEY=VALUE parameters:\n"
            + ROUTERS.help_text([n for n in sorted(ROUTERS) if fusable(n)]))


def execute(args: argparse.Namespace) -> int:
    """Run ``tune-route``."""
    from selectsearch.errors import RouteSpecError
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route.tuning import ROUTING_FILE, tune_hybrid, write_routing

    index = ShardedIndex.open(args.index)
    if (index.path / ROUTING_FILE).exists() and not args.overwrite:
        raise RouteSpecError(f"{index.path / ROUTING_FILE} exists (tuned before); pass --overwrite to replace it")
    options = {}
    for item in args.router_option:
        key, eq, value = item.partition("=")
        if not eq or "." not in key:
            raise RouteSpecError(f"--router-option wants ROUTER.KEY=VALUE, got {item!r}")
        options[key] = value
    names = [n.strip() for n in args.routers.split(",") if n.strip()]
    tuned = tune_hybrid(index, args.data, args.logs, names, step=args.step, options=options)
    path = write_routing(index.path, tuned, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(tuned, indent=1))
        return 0
    print(f"validation: {tuned['n_val_queries']} held-out logged queries, {tuned['n_val_pairs']} (query, document) "
          f"pairs; coverage AUC")
    for name in names:
        print(f"  {name:<10} {tuned['single_auc'][name]:6.2f}")
    fused = " + ".join(f"{w:g} {n}" for w, n in zip(tuned["weights"], names, strict=True))
    print(f"  hybrid     {tuned['val_auc']:6.2f}   = {fused}")
    print(f"wrote {path}; `--route hybrid@M` on this index now uses these weights", file=sys.stderr)
    return 0
