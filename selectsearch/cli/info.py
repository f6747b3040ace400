"""Describe a built index: corpus, partition and balance, shard sizes, versions, build command.

The index is checked first with the cheap checks every open runs (shard folders, doc_ids.txt
rows, offsets, file sizes): a damaged index gets a one-line error naming shard and file and
exit 2, never a healthy summary. `selectsearch verify INDEX` runs every check.

examples:
  selectsearch info indexes/scifact-k16
  selectsearch info indexes/scifact-k16 --json
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", help="index folder")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def execute(args: argparse.Namespace) -> int:
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route.tuning import read_routing

    index = ShardedIndex.open(args.index)
    info = index.describe()
    tuned = read_routing(index.path)
    info["routing"] = tuned
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    part = info["partition"]
    balance = part.get("balance", {})
    sizes = info["shard_sizes"] or []
    print(f"index       {info['path']}  (format {info['format_version']}, built {info['created']})")
    print(f"corpus      {info['corpus']['n_docs']} documents from {', '.join(info['corpus']['sources'] or [])}")
    print(f"fingerprint {info['corpus']['fingerprint']}")
    print(f"partition   {part.get('kind')}  {len(sizes)} shards  seed {part.get('seed')}")
    if balance:
        print(f"balance     max/mean {balance['max_over_mean']:.2f}  min/mean {balance['min_over_mean']:.2f}  "
              f"entropy {balance['entropy_normalised']:.3f} (1 = perfectly even)  empty {balance['empty_shards']}")
    print(f"shard sizes {' '.join(str(s) for s in sizes)}")
    dense = info.get("dense")
    print(f"backends    {', '.join(info.get('backends', []))}" + (
        f"  (faiss: {dense['model']}, {dense['dim']}-d {dense['metric']}, {dense['config']['factory']})"
        if dense else ""))
    ranges = info.get("lucene_ranges")
    if ranges:
        print(f"one index   {ranges['path']}/: the {ranges['shards']} Lucene shards merged, a shard per doc id range "
              f"(searched for queries over more than a few shards; merged in {ranges['seconds']} s)")
    print(f"built by    {info['command']}  in {info['build_seconds']} s")
    print("checks      open checks passed (`selectsearch verify` also checks checksums and Lucene's files)")
    if tuned is not None:
        fused = " + ".join(f"{w:g} {n}" for w, n in zip(tuned["weights"], tuned["routers"], strict=True))
        print(f"routing     hybrid@M = {fused}  (validation AUC {tuned['val_auc']:.2f}, logs {tuned['logs']})")
        fit = tuned.get("ranker_fit") or {}
        if tuned.get("ranker"):
            print(f"            ranked by the shard ranker over these routers (coverage AUC {fit.get('cv_auc', 0):.2f} "
                  f"out of sample vs {fit.get('baseline_auc', 0):.2f}; hybrid.ranker=off: the weights)")
    versions = info.get("versions") or {}
    print("versions    " + "  ".join(f"{k} {v}" for k, v in versions.items()))
    return 0
