"""Build a sharded index from a corpus.

SOURCE is a BEIR folder, a corpus file (.jsonl, .jsonl.gz, TREC SGML), a folder of such files,
or irds:<ir_datasets id>; several SOURCEs are indexed as one collection.

Each shard gets its own Lucene index (Anserini, positions and document vectors stored), a
document store and doc_ids.txt; the manifest is written last and the folder appears only when
the build is complete. An existing index is never replaced without --overwrite, and --overwrite
replaces only a selectsearch index (or an empty folder): a folder of other files, a file, or an
--out that contains a SOURCE is refused. Ctrl-C and SIGTERM stop the build and remove its
<out>.partial folder; leftovers of a killed build (<out>.partial, <out>.old-<pid>) are cleaned,
and reported, by the next build at the same --out (an old index is restored, never deleted, when
the kill came half-way through replacing it).

--backend lucene,faiss (or faiss alone) also gives every shard a FAISS index of its documents'
embeddings (--encoder, default all-MiniLM-L6-v2; rows aligned with the shard's doc_ids.txt),
exact inner product by default (--faiss-index Flat) or IVF/HNSW/PQ for large shards
(--faiss-large-index IVF1024,Flat --faiss-large-threshold 200000). Embeddings come from the
embedding cache, so a corpus is encoded once for dense partitioning, MICO and FAISS.
--add-backend faiss adds FAISS to an existing index at --out (same SOURCEs; atomic, the manifest
is rewritten last; --overwrite replaces an existing FAISS backend).

--lucene-ranges also merges the shards' Lucene indexes into ONE Lucene index (<out>/lucene), each
shard a range of its doc ids: a query over many shards then looks each term up once instead of
once per shard, so searching every shard costs what one unsharded index costs (same hits and
scores); queries over a few shards keep using the shard indexes, which serve them as cheaply. It
takes a second copy of the postings on disk and a merge after the build (about 5 s at 200k
documents, 95 s at 5M); the shard indexes stay (Ray distributes them). --add-backend lucene-ranges
adds it to an existing index at --out (the SOURCEs are not read).

--ray local|auto|ADDRESS builds on Ray: the partitioner is fitted here, documents are assigned and every
shard is indexed by Ray tasks (the same per-shard code as a local build, hence the same index).
--ray local starts a private Ray instance on this machine — every port on 127.0.0.1, no dashboard —
and stops it when the command ends; --ray ADDRESS (HOST:PORT of a running cluster's head, run this
command on one of its nodes; 'auto': the cluster this machine belongs to, as in Ray and in
`selectsearch serve --ray`) joins a cluster made with `ray start` on a network you trust. Shards
are sent to the nodes and gathered back into --out, or with --ray-shared written in place by the
nodes when --out is on a file system every node mounts at the same path. A task whose worker or
node dies is retried (--ray-retries); a build that fails publishes nothing.

examples:
  selectsearch index ../shared/data/scifact --out indexes/scifact-k16 --shards 16 --partitioner kmeans
  selectsearch index ../shared/data/scifact ../shared/data/wikipedia --out indexes/sfwiki-k32 --shards 32
  selectsearch index corpus.jsonl.gz --out indexes/c-rand8 --shards 8 --partitioner random --seed 1
  selectsearch index ../shared/data/scifact --out indexes/scifact-k16 --shards 16 --ray local
  selectsearch index ../shared/data/scifact ../shared/data/wikipedia --out /mnt/shared/sfwiki-k32 --shards 32 \\
      --ray 10.0.0.5:6379 --ray-shared
  selectsearch index ../shared/data/scifact --out indexes/sf-dense16 --shards 16 --space dense \\
      --backend lucene,faiss
  selectsearch index ../shared/data/scifact ../shared/data/wikipedia --out indexes/sfwiki-dense32 \\
      --add-backend faiss
  selectsearch index ../shared/data/scifact ../shared/data/wikipedia --out indexes/sfwiki-k32 --shards 32 \\
      --lucene-ranges
  selectsearch index ../shared/data/scifact --out indexes/scifact-k16 --add-backend lucene-ranges
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selectsearch.cli._common import (
    add_encoder_precision,
    add_help_section,
    apply_encoder_precision,
    partitioners_help,
    progress_enabled,
)
from selectsearch.partition.registry import SPACES, partitioner_choices

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.build import BuildConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="corpus source(s)")
    parser.add_argument("--out", required=True, help="output index folder (e.g. indexes/scifact-k16)")
    parser.add_argument("--shards", type=int, default=None, metavar="K",
                        help="number of shards (default 16; with --partitioner mico the model's cluster count)")
    parser.add_argument("--partitioner", choices=partitioner_choices(), default="kmeans",
                        help="how documents are split into shards (default kmeans; listed at the end of this help)")
    parser.add_argument("--space", choices=SPACES, default="lexical",
                        help="k-means feature space: lexical TF-IDF (fast) or dense all-MiniLM-L6-v2 embeddings")
    parser.add_argument("--mico-model", metavar="DIR", help="trained MICO model folder (with --partitioner mico)")
    parser.add_argument("--sample-size", type=int, metavar="N",
                        help="documents sampled to fit lexical k-means (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling, k-means and random shards")
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="shards indexed in parallel (default 2)")
    parser.add_argument("--dedupe", choices=["error", "first", "last"], default="error",
                        help="repeated doc ids: fail (default) or keep the first/last occurrence")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing index at --out (with --add-backend: that backend)")
    parser.add_argument("--lucene-ranges", action="store_true",
                        help="also merge the shards into one Lucene index, a shard per doc id range: faster search "
                             "on one machine, twice the Lucene disk space (see above)")
    dense = parser.add_argument_group("dense backend")
    dense.add_argument("--backend", action="append", default=None, metavar="LIST",
                       help="per-shard backends, given once: lucene (default), faiss, or lucene,faiss (a second "
                            "--backend is refused: list both in one)")
    dense.add_argument("--add-backend", choices=["faiss", "lucene-ranges"], metavar="faiss|lucene-ranges",
                       help="add the FAISS backend, or the shards' one Lucene index, to the existing index at --out "
                            "instead of building one")
    dense.add_argument("--encoder", default="all-MiniLM-L6-v2", metavar="MODEL",
                       help="encoder of the FAISS backend and of --space dense: all-MiniLM-L6-v2 (packaged, "
                            "default) or a local sentence-transformers/transformers folder")
    dense.add_argument("--max-length", type=int, default=256, metavar="N", help="tokens per document (default 256)")
    add_encoder_precision(dense)
    dense.add_argument("--faiss-index", default="Flat", metavar="FACTORY",
                       help="FAISS index_factory string of every shard (default Flat: exact inner product)")
    dense.add_argument("--faiss-large-index", metavar="FACTORY",
                       help="FAISS index for shards of at least --faiss-large-threshold vectors (e.g. IVF1024,Flat, "
                            "HNSW32, IVF1024,PQ32)")
    dense.add_argument("--faiss-large-threshold", type=int, default=100_000, metavar="N",
                       help="shard size from which --faiss-large-index applies (default 100000)")
    dense.add_argument("--nprobe", type=int, default=16, metavar="N", help="default IVF lists probed (default 16)")
    dense.add_argument("--efsearch", type=int, default=64, metavar="N", help="default HNSW efSearch (default 64)")
    ray = parser.add_argument_group("distributed build")
    ray.add_argument("--ray", metavar="local|auto|ADDRESS",
                     help="assign documents and index shards with Ray tasks: 'local' starts a private loopback-only "
                          "Ray instance for this command; HOST:PORT (or 'auto', the cluster of this machine) joins a "
                          "running cluster")
    ray.add_argument("--ray-shared", action="store_true",
                     help="--out is on a file system every Ray node mounts at the same path: nodes write their "
                          "shards there (default: shards are gathered into --out through Ray)")
    ray.add_argument("--ray-retries", type=int, default=3, metavar="N",
                     help="times a task is run again after its worker or node died (default 3; 0: fail at once)")
    add_help_section(parser, partitioners_help)


def execute(args: argparse.Namespace) -> int:
    import sys

    from selectsearch.atomic import Terminated, interrupt_on_sigterm

    try:
        with interrupt_on_sigterm():  # SIGTERM cleans up like Ctrl-C
            return _execute(args)
    except Terminated:
        print("selectsearch index: terminated (SIGTERM); nothing was published", file=sys.stderr)
        return 143


def _execute(args: argparse.Namespace) -> int:
    apply_encoder_precision(args)  # partitioner, FAISS backend and MICO assignment all encode with it
    from selectsearch.data import open_corpus
    from selectsearch.dense.config import DenseConfig, parse_backends
    from selectsearch.errors import SelectSearchError
    from selectsearch.index.build import BuildConfig, build_index
    from selectsearch.index.sharded import ShardedIndex

    if args.ray is None and (args.ray_shared or args.ray_retries != 3):
        raise SelectSearchError("--ray-shared and --ray-retries apply to a distributed build: add --ray local (or "
                                "--ray HOST:PORT)")
    if args.ray_retries < 0:
        raise SelectSearchError(f"--ray-retries must be 0 or more, got {args.ray_retries}")
    if args.ray is not None and args.add_backend:
        raise SelectSearchError("--add-backend runs on this machine; drop --ray")
    if args.lucene_ranges and args.add_backend:
        raise SelectSearchError("--lucene-ranges applies to a new build; to add the merged index to an existing one, "
                                "use --add-backend lucene-ranges")
    if args.backend is not None and len(args.backend) > 1:
        raise SelectSearchError(f"--backend given {len(args.backend)} times ({' '.join(args.backend)}); give it "
                                f"once with a comma-separated list: --backend {','.join(args.backend)}")
    backends = args.backend[0] if args.backend else "lucene"
    if args.lucene_ranges and "lucene" not in parse_backends(backends):
        raise SelectSearchError(f"--lucene-ranges merges Lucene shards, and --backend {backends} builds none: add "
                                "lucene to --backend, or drop --lucene-ranges")
    dense = DenseConfig(model=args.encoder, max_length=args.max_length, factory=args.faiss_index,
                        large_factory=args.faiss_large_index, large_threshold=args.faiss_large_threshold,
                        nprobe=args.nprobe, efsearch=args.efsearch, seed=args.seed)
    if args.add_backend == "lucene-ranges":
        from selectsearch.index.ranges import add_lucene_ranges

        started = time.time()
        out = add_lucene_ranges(args.out, overwrite=args.overwrite)
        print(json.dumps({"index": str(out), "added": "lucene-ranges", "seconds": round(time.time() - started, 1)}))
        return 0
    if args.add_backend:
        from selectsearch.dense.build import add_faiss_backend

        started = time.time()
        out = add_faiss_backend(args.out, open_corpus(args.sources), dense, overwrite=args.overwrite,
                                progress=progress_enabled(args))
        index = ShardedIndex.open(out)
        added = index.manifest.dense
        assert added is not None
        print(json.dumps({"index": str(out), "added": "faiss", "model": added.model,
                          "dim": added.dim, "seconds": round(time.time() - started, 1)}))
        return 0
    options: dict[str, object] = {}
    if args.sample_size:
        options["sample_size"] = args.sample_size
    if args.space == "dense" and args.partitioner == "kmeans":
        options.update({"model": args.encoder, "max_length": args.max_length})
    shards = args.shards
    if args.partitioner == "mico":
        if not args.mico_model:
            raise SelectSearchError(
                "--partitioner mico needs --mico-model DIR (train one with `selectsearch train-mico`)"
            )
        options["model"] = args.mico_model
        if shards is None:  # the model decides K
            from selectsearch.mico.model import MicoModelFolder

            shards = MicoModelFolder(args.mico_model).n_clusters
    config = BuildConfig(n_shards=16 if shards is None else shards, partitioner=args.partitioner, space=args.space,
                         seed=args.seed, threads=args.threads, dedupe=args.dedupe, overwrite=args.overwrite,
                         partitioner_options=options, backends=parse_backends(backends), dense=dense)
    corpus = open_corpus(args.sources)
    started = time.time()
    if args.ray is None:
        out = build_index(corpus, args.out, config, progress=progress_enabled(args))
    else:
        out = _build_on_ray(args, corpus, config)
    if args.lucene_ranges:
        from selectsearch.index.ranges import add_lucene_ranges

        add_lucene_ranges(out)  # the index is complete without it: a kill here loses only the merge
    index = ShardedIndex.open(out)
    part = index.manifest.partition
    assert part is not None
    print(json.dumps({"index": str(out), "documents": index.n_docs, "shards": index.n_shards,
                      "partition": part.kind, "max_over_mean": round(part.balance["max_over_mean"], 3),
                      "backends": list(index.backends),
                      "lucene_ranges": index.manifest.lucene_ranges is not None,
                      "duplicates_dropped": index.manifest.corpus.duplicates_dropped,
                      "seconds": round(time.time() - started, 1)}))
    return 0


def _build_on_ray(args: argparse.Namespace, corpus: Any, config: BuildConfig) -> Path:
    """``build_index`` with a :class:`RayExecutor`, Ray started (``auto``) or joined for it and
    stopped (or left) when the build ends, however it ends."""
    from selectsearch.errors import SelectSearchError
    from selectsearch.index.build import build_index
    from selectsearch.index.distributed import RayExecutor
    from selectsearch.serve.config import ServeError
    from selectsearch.serve.coordinator import connect_ray

    address = None if args.ray == "local" else args.ray
    try:
        connect_ray(address)
    except ServeError as exc:  # its message speaks of `serve`'s options
        if address is None:
            raise SelectSearchError(f"cannot start a local Ray instance: {exc}") from exc
        raise SelectSearchError(f"cannot reach the Ray cluster at {address!r}; start it with `ray start --head` on "
                                "that machine, or use --ray local for a private one") from exc
    import ray

    try:
        executor = RayExecutor(shared=args.ray_shared, retries=args.ray_retries)
        return build_index(corpus, args.out, config, progress=progress_enabled(args), executor=executor)
    finally:
        ray.shutdown()  # a local instance stops with it; a cluster only loses this driver
