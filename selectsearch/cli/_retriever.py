"""``--retriever`` and fusion options shared by ``search`` and ``eval``."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_retriever_options", "retriever_kwargs"]


def add_retriever_options(parser: argparse.ArgumentParser) -> None:
    """``--retriever bm25|dense|hybrid`` plus fusion and dense-search options."""
    group = parser.add_argument_group("retrieval")
    group.add_argument("--retriever", choices=["bm25", "dense", "hybrid"], default=None,
                       help="what searches the selected shards: bm25 (Lucene), dense (FAISS) or hybrid (both, "
                            "fused); default bm25, or dense for a FAISS-only index")
    group.add_argument("--fusion", choices=["rrf", "convex"], default="rrf",
                       help="hybrid fusion: reciprocal rank fusion (default) or convex combination of normalised "
                            "scores")
    group.add_argument("--rrf-k", type=float, default=60.0, metavar="K", help="RRF rank constant (default 60)")
    group.add_argument("--alpha", type=float, default=0.5,
                       help="convex: weight of the dense list, BM25 gets 1-alpha (default 0.5)")
    group.add_argument("--norm", choices=["minmax", "zscore"], default="minmax",
                       help="convex: per-query score normalisation (default minmax)")
    group.add_argument("--fusion-depth", type=int, default=1000, metavar="N",
                       help="hybrid: candidates taken from each list (default 1000, at least --k)")
    group.add_argument("--encoder", dest="query_encoder", metavar="MODEL",
                       help="dense query encoder (default: the index's); its dimension must match the index")
    group.add_argument("--nprobe", type=int, metavar="N", help="lists probed in IVF shards (default: the index's)")
    group.add_argument("--efsearch", type=int, metavar="N", help="HNSW efSearch (default: the index's)")


def retriever_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword options of :class:`selectsearch.search.SelectiveSearcher` from the parsed options."""
    from selectsearch.fusion import FusionConfig

    dense = {"encoder": args.query_encoder, "nprobe": args.nprobe, "efsearch": args.efsearch}
    return {
        "retriever": args.retriever,
        "fusion": FusionConfig(args.fusion, rrf_k=args.rrf_k, alpha=args.alpha, norm=args.norm,
                               depth=args.fusion_depth),
        "dense_options": {k: v for k, v in dense.items() if v is not None},
    }
