"""Fit the weights of the fused router hybrid@m on held-out logged queries; store them with the index.

Held-out logged queries score every weight vector on a grid by coverage AUC, the area under the
coverage-cost curve of their clicked documents. Two validation splits of the logs are scored side
by side; --validation says which one chooses the weights:

  topics (default)  whole topic clusters of logged queries are held out (spherical k-means of
                    their embeddings; about --topic-fraction 0.15 of the queries, seed 0), so the
                    validation queries are unlike the logs, as new kinds of queries are. Weights
                    chosen here do not trust a log-reading router (knn, mico) beyond what it
                    shows on unfamiliar queries. For a MICO index trained with --val-split topics,
                    MICO's own topic split is used.
  random            the seeded split by query MICO training held out (for an index that is not
                    MICO-partitioned, 10% of the logged queries, seed 0): routers are scored on
                    queries that have near paraphrases in the logs, which cannot show a shift.

Each split is drawn --folds times (default 10; 1 on a MICO index) and the draws stacked: every
logged query is validated once by the random folds, so the weights depend little on which queries
one draw happened to hold out (on SciFact one draw moved the shifted test cells by up to 6 nDCG@10
points, ten draws by at most 1.3).

Then a shard ranker is fitted on both splits stacked: a small network that reads every router's
standardised score and rank position, the shard's size and the query's familiarity. It is kept
(and hybrid@M ranks with it) only when its coverage AUC out of sample (5 folds by query) beats
that of the weights and gate above, refitted on the same folds, by more than the standard error of
the gain (bootstrap over the logged queries); --no-ranker skips it.

The table (and --json, and INDEX/routing.json) gives every router's AUC and the chosen fusion's on
both splits; a fusion that is much better on random than on topics relies on the logs' topics.
The best weights are written to INDEX/routing.json; from then on `--route hybrid@M` without
--router-option hybrid.routers/weights uses them. The knn router's knowledge base during tuning is
the training part of the split only; at search time it reads all of --logs.

Paths are stored absolute (--data, a --logs file), so the tuned index works from any folder. When
the data move, --router-option knn.data=DIR overrides the stored folder, and so does
$SELECTSEARCH_DATA when --data was inside the data folder at tuning time ($SELECTSEARCH_DATA/<name>).
--router-option must be ROUTER.KEY=VALUE for one of --routers, with a KEY that router takes.

examples:
  selectsearch tune-route indexes/scifact-k16 --data ../shared/data/scifact --routers centroid,cori,knn --overwrite
  selectsearch tune-route indexes/hd-mico16 --data ../shared/data/homedepot --logs train \\
      --routers mico,cori,taily,knn
  selectsearch eval indexes/hd-mico16 --data ../shared/data/homedepot --split test --route hybrid@1:4
  selectsearch tune-route indexes/scifact-k16 --data ../shared/data/scifact --routers centroid,cori,knn \\
      --validation random --overwrite            # as before issue 19: weights from the random split
  selectsearch tune-route indexes/scifact-k16 --data ../shared/data/scifact --routers centroid,cori,knn \\
      --topic-by both --topic-fraction 0.2 --overwrite   # topics by embedding and clicked shards
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

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
    parser.add_argument("--validation", choices=("topics", "random"), default="topics",
                        help="the held-out split that chooses the weights (default topics; both are reported)")
    parser.add_argument("--topic-fraction", type=float, default=None, metavar="F",
                        help="share of the logged queries whose topics are held out (default 0.15, or the MICO "
                             "model's topic split)")
    parser.add_argument("--topics", type=int, default=0, metavar="N",
                        help="topic clusters of the logged queries (default 0: one per 10 queries, 2 to 32)")
    parser.add_argument("--topic-by", choices=("embedding", "shards", "both"), default="embedding",
                        help="cluster logged queries by their embedding (default), by the shards of their clicked "
                             "documents, or both")
    parser.add_argument("--topic-seed", type=int, default=None, help="seed of the topic split (default 0)")
    parser.add_argument("--folds", type=int, default=None, metavar="F",
                        help="draws of each validation split, stacked (default 10: ten random folds by query and "
                             "ten topic draws; 1 on a MICO index); 1 is one split each, as before")
    parser.add_argument("--no-ranker", dest="ranker", action="store_false",
                        help="do not fit the shard ranker (a small network over the routers' scores and ranks, "
                             "kept only when it beats the gated fusion out of sample); rank with the weights")
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
    if args.topic_fraction is not None and not 0.0 < args.topic_fraction < 1.0:
        raise RouteSpecError(f"--topic-fraction must be in (0, 1), got {args.topic_fraction}")
    if args.topics < 0 or args.topics == 1:
        raise RouteSpecError(f"--topics must be 0 (automatic) or at least 2, got {args.topics}")
    if args.folds is not None and args.folds < 1:
        raise RouteSpecError(f"--folds must be at least 1, got {args.folds}")
    tuned = tune_hybrid(index, args.data, args.logs, names, step=args.step, options=options,
                        validation=args.validation, topic_fraction=args.topic_fraction, topic_seed=args.topic_seed,
                        n_topics=args.topics or None, topic_by=args.topic_by, folds=args.folds,
                        ranker=args.ranker)
    path = write_routing(index.path, tuned, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(tuned, indent=1))
        return 0
    print("\n".join(format_tuning(tuned)))
    print(f"wrote {path}; `--route hybrid@M` on this index now uses these weights", file=sys.stderr)
    return 0


def format_tuning(tuned: dict[str, Any]) -> list[str]:
    """The printed report of :func:`~selectsearch.route.tuning.tune_hybrid`: the two validation
    splits, then every router's coverage AUC on each, side by side."""
    names = tuned["routers"]
    splits = tuned.get("splits", {})
    auc = tuned.get("auc", {"random": {**tuned["single_auc"], "hybrid": tuned["val_auc"]}})
    kinds = [k for k in ("random", "topics") if k in auc]
    lines = []
    for kind in ("random", "topics"):
        info = splits.get(kind, {})
        mark = "  <- chooses the weights" if kind == tuned.get("validation", "random") else ""
        if "error" in info:
            lines.append(f"{kind:<7} validation: not drawn ({info['error']})")
        elif info.get("folds", 1) > 1:
            how = (f"{info['folds']} folds by query, each query held out once" if kind == "random" else
                   f"{info['folds']} draws of topic clusters held out (by {info['by']}), stacked")
            lines.append(f"{kind:<7} validation: {info['n_val_queries']} logged queries, {info['n_val_pairs']} pairs, "
                         f"{how}{mark}")
        elif kind == "topics" and info:
            lines.append(f"topics  validation: {info['n_val_queries']} logged queries, {info['n_val_pairs']} pairs, in "
                         f"{len(info['held_topics'])} of {info['n_nonempty_topics']} topic clusters held out (by "
                         f"{info['by']}, {100 * info['held_fraction']:.0f}% of the queries){mark}")
        elif info:
            lines.append(f"random  validation: {info['n_val_queries']} logged queries, {info['n_val_pairs']} pairs, "
                         f"split by query ({100 * info['fraction']:.0f}%){mark}")
    lines.append("coverage AUC  " + "".join(f"{k:>8}" for k in kinds))
    for name in [*names, "hybrid"]:
        lines.append(f"  {name:<11} " + "".join(f"{auc[k][name]:8.2f}" for k in kinds))
    fused = " + ".join(f"{w:g} {n}" for w, n in zip(tuned["weights"], names, strict=True))
    lines.append(f"  hybrid = {fused}   (chosen on {tuned.get('validation', 'random')})")
    for kind, fit in tuned.get("fits", {}).items():
        if kind != tuned.get("validation") and fit["weights"] != tuned["weights"]:
            other = " + ".join(f"{w:g} {n}" for w, n in zip(fit["weights"], names, strict=True))
            lines.append(f"  ({kind} would choose {other}: AUC {fit['auc']:.2f} on {kind})")
    gate = tuned.get("gating")
    if gate:
        fit = gate.get("fit", {})
        aucs = "  ".join(f"{k} {auc[k]['hybrid_gated']:.2f}" for k in kinds if "hybrid_gated" in auc.get(k, {}))
        if abs(gate["centre"]) >= 1e8:
            which = "familiar (random-split) weights" if gate["centre"] < 0 else "unfamiliar (topic-split) weights"
            lines.append(f"  per-query gating: none helps on both splits stacked; always the {which} ({aucs})")
        else:
            nan = float("nan")
            lines.append(f"  per-query gating on query familiarity (centre {gate['centre']:.3f}, width "
                         f"{gate['width']:.3f}): coverage AUC {fit.get('auc', nan):.2f} on both splits stacked vs "
                         f"{fit.get('auc_familiar', nan):.2f} / {fit.get('auc_unfamiliar', nan):.2f} with one weight "
                         f"vector; per split: {aucs}")
    elif tuned.get("gating_skipped"):
        lines.append(f"  per-query gating not fitted: {tuned['gating_skipped']}")
    ranker = tuned.get("ranker_fit") or {}
    if ranker.get("kept"):
        lines.append(f"  shard ranker: coverage AUC {ranker['cv_auc']:.2f} out of sample (5 folds by query) vs "
                     f"{ranker['baseline_auc']:.2f} for the fusion above, cross-validated on the same folds "
                     f"(standard error of the gain {ranker['se']:.2f}); hybrid@M ranks with it "
                     "(hybrid.ranker=off: with the weights)")
    elif ranker:
        lines.append(f"  shard ranker not kept: {ranker.get('why')}")
    return lines
