"""Build a sharded index from a corpus.

SOURCE is a BEIR folder, a corpus file (.jsonl, .jsonl.gz, TREC SGML), a folder of such files,
or irds:<ir_datasets id>; several SOURCEs are indexed as one collection.

Each shard gets its own Lucene index (Anserini, positions and document vectors stored), a
document store and doc_ids.txt; the manifest is written last and the folder appears only when
the build is complete. An existing index is never replaced without --overwrite.

examples:
  selectsearch index ../shared/data/scifact --out indexes/scifact-k16 --shards 16 --partitioner kmeans
  selectsearch index ../shared/data/scifact ../shared/data/wikipedia --out indexes/sfwiki-k32 --shards 32
  selectsearch index corpus.jsonl.gz --out indexes/c-rand8 --shards 8 --partitioner random --seed 1
"""

from __future__ import annotations

import argparse
import json
import time

from selectsearch.cli._common import progress_enabled


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="corpus source(s)")
    parser.add_argument("--out", required=True, help="output index folder (e.g. indexes/scifact-k16)")
    parser.add_argument("--shards", type=int, default=16, metavar="K", help="number of shards (default 16)")
    parser.add_argument("--partitioner", choices=["random", "kmeans", "mico"], default="kmeans",
                        help="how documents are split into shards (default kmeans)")
    parser.add_argument("--space", choices=["lexical", "dense"], default="lexical",
                        help="k-means feature space: lexical TF-IDF (fast) or dense all-MiniLM-L6-v2 embeddings")
    parser.add_argument("--mico-model", metavar="DIR", help="trained MICO model folder (with --partitioner mico)")
    parser.add_argument("--sample-size", type=int, metavar="N",
                        help="documents sampled to fit lexical k-means (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling, k-means and random shards")
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="shards indexed in parallel (default 2)")
    parser.add_argument("--dedupe", choices=["error", "first", "last"], default="error",
                        help="repeated doc ids: fail (default) or keep the first/last occurrence")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index at --out")


def execute(args: argparse.Namespace) -> int:
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index
    from selectsearch.index.sharded import ShardedIndex

    options: dict[str, object] = {}
    if args.sample_size:
        options["sample_size"] = args.sample_size
    if args.partitioner == "mico":
        if not args.mico_model:
            from selectsearch.errors import SelectSearchError

            raise SelectSearchError(
                "--partitioner mico needs --mico-model DIR (train one with `selectsearch train-mico`)"
            )
        options["model"] = args.mico_model
    config = BuildConfig(n_shards=args.shards, partitioner=args.partitioner, space=args.space, seed=args.seed,
                         threads=args.threads, dedupe=args.dedupe, overwrite=args.overwrite,
                         partitioner_options=options)
    corpus = open_corpus(args.sources)
    started = time.time()
    out = build_index(corpus, args.out, config, progress=progress_enabled(args))
    index = ShardedIndex.open(out)
    part = index.manifest["partition"]
    print(json.dumps({"index": str(out), "documents": index.n_docs, "shards": index.n_shards,
                      "partition": part["kind"], "max_over_mean": round(part["balance"]["max_over_mean"], 3),
                      "seconds": round(time.time() - started, 1)}))
    return 0
