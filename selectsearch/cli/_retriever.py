"""``--retriever``, fusion and ``--rerank`` options shared by ``search`` and ``eval``."""

from __future__ import annotations

import argparse
from typing import Any

from selectsearch.cli._common import add_help_section
from selectsearch.errors import SelectSearchError

__all__ = ["add_retriever_options", "retriever_kwargs"]


def _retrievers_help() -> str:
    from selectsearch.pipeline.shards import RETRIEVERS

    return "retrievers (--retriever NAME; add yours with selectsearch.pipeline.register_retriever):\n" + \
        RETRIEVERS.help_text()


def add_retriever_options(parser: argparse.ArgumentParser) -> None:
    """``--retriever NAME`` (the registered shard searchers) plus fusion and dense-search options."""
    group = parser.add_argument_group("retrieval")
    group.add_argument("--retriever", default=None, metavar="NAME",
                       help="what searches the selected shards, one of the retrievers listed below: bm25 (Lucene), "
                            "dense (FAISS), hybrid (both, fused), or one you registered; default bm25, or dense "
                            "for a FAISS-only index")
    add_help_section(parser, _retrievers_help)
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
    rerank = parser.add_argument_group("reranking")
    rerank.add_argument("--rerank", metavar="MODEL",
                        help="rerank the top --depth hits with this model folder: a cross-encoder from "
                             "`selectsearch train-reranker --teacher` or its distilled student")
    rerank.add_argument("--depth", type=int, default=100, metavar="N", help="hits reranked per query (default 100)")
    rerank.add_argument("--rerank-weight", type=float, default=0.0, metavar="W",
                        help="mix the first-stage score into the reranker's: z(model) + W * z(first stage) "
                             "(default 0: the model alone)")
    rerank.add_argument("--rerank-max-length", type=int, metavar="TOKENS",
                        help="read at most TOKENS tokens of each (query, document) pair (default: the length "
                             "the reranker was trained with); fewer tokens cost less")
    rerank.add_argument("--no-kb", action="store_true",
                        help="distilled reranker: the student alone, without its knowledge-base neighbours")


def retriever_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword options of :class:`selectsearch.search.SelectiveSearcher` from the parsed options."""
    from selectsearch.fusion import FusionConfig

    dense = {"encoder": args.query_encoder, "nprobe": args.nprobe, "efsearch": args.efsearch}
    rerank: dict[str, Any] = {}
    if args.rerank:
        if args.depth < 1:
            raise SelectSearchError(f"--depth must be at least 1, got {args.depth}")
        from selectsearch.rerank import load_reranker

        rerank = {"reranker": load_reranker(args.rerank, retrieval=not args.no_kb,
                                            first_stage_weight=args.rerank_weight,
                                            max_length=args.rerank_max_length),
                  "rerank_depth": args.depth}
    return {
        **rerank,
        "retriever": args.retriever,
        "fusion": FusionConfig(args.fusion, rrf_k=args.rrf_k, alpha=args.alpha, norm=args.norm,
                               depth=args.fusion_depth),
        "dense_options": {k: v for k, v in dense.items() if v is not None},
    }
