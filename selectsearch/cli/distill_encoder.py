"""Distil a transformer encoder into a static (model2vec) query encoder for the learned routers.

Every token of the transformer's vocabulary goes through it once; a query is then the mean of
its tokens' vectors — a table lookup instead of a forward pass (microseconds instead of
milliseconds per query). Nothing is downloaded: the source is the packaged all-MiniLM-L6-v2 or a
local model folder. Without --out the cached `minilm-static` is built (what its first use does
anyway). Use the result wherever an encoder is taken: --router-option knn.encoder=DIR (or
minilm-static), train-mico --encoder DIR --mode frozen.

With --index, `minilm-static` adapted to that index is built instead (the `knn` router's default
query encoder, `knn.encoder=adapted`: the table refitted on a sample of the index's documents to
reproduce the transformer's embeddings; see selectsearch.models.adapted_encoder) — what the first
`tune-route` or knn search on the index does anyway, a minute or two of CPU.

examples:
  selectsearch distill-encoder                                   # build the cached minilm-static now
  selectsearch distill-encoder --index indexes/scifact-k16       # build knn's default encoder for this index
  selectsearch distill-encoder --out models/minilm-static-384 --pca-dims 384
  selectsearch eval indexes/scifact-k16 --data ../shared/data/scifact --route knn@1:4 \\
      --router-option knn.encoder=models/minilm-static-384
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _pca_dims(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--pca-dims takes a positive integer or 'none', got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"--pca-dims must be positive, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``distill-encoder``."""
    parser.add_argument("--out", type=Path,
                        help="folder to write (default: the cached minilm-static, rebuilt only if missing or stale)")
    parser.add_argument("--source", default="all-MiniLM-L6-v2",
                        help="transformer to distil: all-MiniLM-L6-v2 (packaged, default) or a local model folder")
    parser.add_argument("--pca-dims", type=_pca_dims, default=256, metavar="N|none",
                        help="dimensions kept by PCA over the token vectors (default 256; 'none': no PCA)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the forward passes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--index", type=Path, help="build minilm-static adapted to this index (knn.encoder=adapted) "
                                                   "into the cache instead")


def execute(args: argparse.Namespace) -> int:
    """Run ``distill-encoder``."""
    from selectsearch.cli._common import progress_enabled
    from selectsearch.errors import SelectSearchError
    from selectsearch.models.static_encoder import (
        DEFAULT_RECIPE,
        StaticEncoder,
        StaticRecipe,
        distill_static_encoder,
        static_encoder_folder,
    )

    if args.threads < 1:
        raise SelectSearchError(f"--threads must be at least 1, got {args.threads}")
    if args.index is not None:
        from selectsearch.index.sharded import ShardedIndex
        from selectsearch.route.knn import adapted_encoder_folder

        if args.out is not None:
            raise SelectSearchError("--index builds the adapted encoder into the cache; it takes no --out")
        folder = adapted_encoder_folder(ShardedIndex.open(args.index), progress=progress_enabled(args))
        encoder = StaticEncoder(folder)
        print(f"{folder}: static encoder adapted to {args.index}, {encoder.dim} dims")
        print("the knn router uses it on this index by default (knn.encoder=adapted)")
        return 0
    recipe = StaticRecipe(source=args.source, pca_dims=args.pca_dims)
    if args.out is None:
        if recipe != DEFAULT_RECIPE:
            raise SelectSearchError("--source and --pca-dims make another encoder than minilm-static: pass --out DIR")
        folder = static_encoder_folder("minilm-static", progress=progress_enabled(args))
    else:
        folder = distill_static_encoder(args.out, recipe, overwrite=args.overwrite, threads=args.threads,
                                        progress=progress_enabled(args))
    encoder = StaticEncoder(folder)
    print(f"{folder}: static encoder, {encoder.dim} dims, {len(encoder.table.tokens)} tokens, from {recipe.source}")
    print(f"use it with: --router-option knn.encoder={'minilm-static' if args.out is None else folder}")
    return 0
