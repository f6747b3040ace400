"""Train MICO from search logs: shards and a query router learned together.

--logs is a qrels split of the BEIR folder DATA (pairs with relevance > 0) or a click-log file:
TSV `query<TAB>doc_id[<TAB>clicks]` or JSONL {"query", "doc_id", "clicks"}. Logged documents must
be in the corpus (all DATA sources); queries need not be in the query file. Extra DATA sources
join the corpus (documents never logged are still clustered by the assignment head).

--mode frozen (default) trains the two heads on cached embeddings (minutes on CPU); --mode full
also fine-tunes the encoder (faithful to the paper, slow on CPU: bound it with --max-steps).
The best model by validation AUC is written to --out, whole or not at all (built in OUT.partial,
then swapped in); --overwrite replaces an existing MICO model there, and a folder holding anything
else is refused. Checkpoints go to --checkpoint (default OUT.checkpoint) and --resume continues from
there (loading tensors only, never arbitrary pickled objects). A rerun without --resume refuses to
discard an existing checkpoint unless --overwrite is given (then it says so and starts over).
Without a terminal (stderr redirected) progress is logged as lines every 30 s; -q silences it.

examples:
  selectsearch train-mico ../shared/data/homedepot --logs train --shards 16 --out models/hd-mico16
  selectsearch index ../shared/data/homedepot --partitioner mico --mico-model models/hd-mico16 --out indexes/hd-mico16
  selectsearch eval indexes/hd-mico16 --data ../shared/data/homedepot --split test --route mico@1:16
  selectsearch train-mico ../shared/data/scifact --logs train --shards 16 --mode full --max-steps 200 \\
      --out models/sf-mico16-full
  selectsearch train-mico ../shared/data/homedepot --logs train --shards 16 --mode full --init-model models/hd-mico16 \\
      --max-steps 300 --out models/hd-mico16-full      # warm start from the frozen-mode model
  selectsearch train-mico ../shared/data/scifact ../shared/data/wikipedia --logs train --shards 32 --out models/sfw
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from selectsearch.cli._common import add_encoder_precision, apply_encoder_precision, progress_enabled

_DEFAULTS = {"head_learning_rate": 1e-2, "learning_rate": 5e-6, "beta": 2.0, "warmup_steps": 50, "batch_size": 64,
             "epochs": 20, "init_scale": 0.0, "val_fraction": 0.1, "patience": 3, "max_length": 256}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``train-mico``."""
    parser.add_argument("data", nargs="+", metavar="DATA",
                        help="BEIR folder with the logs' qrels (+ extra corpus sources)")
    parser.add_argument("--logs", required=True, help="qrels split name (e.g. train) or a TSV/JSONL click-log file")
    parser.add_argument("--shards", type=int, default=16, metavar="K", help="number of clusters/shards (default 16)")
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument("--mode", choices=("frozen", "full"), default="frozen",
                        help="frozen: heads on cached embeddings (default); full: fine-tune the encoder too")
    parser.add_argument("--encoder", default="all-MiniLM-L6-v2", help="all-MiniLM-L6-v2 or a local model folder")
    parser.add_argument("--max-length", type=int, default=_DEFAULTS["max_length"], help="tokens per text")
    add_encoder_precision(parser)
    parser.add_argument("--epochs", type=int, default=_DEFAULTS["epochs"])
    parser.add_argument("--max-steps", type=int, default=0, help="stop after N steps (0: no limit)")
    parser.add_argument("--batch-size", type=int, default=_DEFAULTS["batch_size"])
    parser.add_argument("--beta", type=float, default=_DEFAULTS["beta"], help="entropy weight (default 2; reference 5)")
    parser.add_argument("--head-learning-rate", "--head-lr", dest="head_learning_rate", type=float,
                        default=_DEFAULTS["head_learning_rate"], help="learning rate of both heads")
    parser.add_argument("--learning-rate", "--encoder-lr", dest="learning_rate", type=float,
                        default=_DEFAULTS["learning_rate"], help="full mode: learning rate of the encoder")
    parser.add_argument("--warmup-steps", type=int, default=_DEFAULTS["warmup_steps"])
    parser.add_argument("--init", choices=("kmeans", "random"), default="kmeans",
                        help="start both heads at k-means centroids (default) or at random")
    parser.add_argument("--init-model", metavar="DIR", default="",
                        help="warm start: heads and marginal from this trained MICO model (same --shards), e.g. a "
                             "frozen-mode model starting a --mode full run")
    parser.add_argument("--init-scale", type=float, default=_DEFAULTS["init_scale"],
                        help="logit scale of centroid-initialised heads (0: from the data)")
    parser.add_argument("--val-fraction", type=float, default=_DEFAULTS["val_fraction"],
                        help="logged queries held out for validation AUC")
    parser.add_argument("--val-split", choices=("random", "topics"), default="random",
                        help="hold out random logged queries (default) or whole topic clusters of them, which selects "
                             "the model that generalises to kinds of queries the logs do not show")
    parser.add_argument("--val-topics", type=int, default=0, metavar="N",
                        help="topic clusters of --val-split topics (default 0: one per 10 queries, 2 to 32)")
    parser.add_argument("--eval-steps", "--eval-every", dest="eval_steps", type=int, default=0,
                        help="validate every N steps (0: each epoch)")
    parser.add_argument("--patience", type=int, default=_DEFAULTS["patience"],
                        help="stop after N validations without improvement (0: never)")
    parser.add_argument("--size-sample", type=int, default=2048,
                        help="full mode: corpus documents whose assignment estimates shard sizes in validation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--checkpoint", type=Path, help="checkpoint folder (default OUT.checkpoint)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint when there is one")
    parser.add_argument("--cache-dir", help="embedding cache root (default ~/.cache/selectsearch/embeddings)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out model, and start over from scratch even when --checkpoint "
                             "holds a checkpoint of an earlier run (without --resume)")


def execute(args: argparse.Namespace) -> int:
    """Run ``train-mico`` (SIGTERM cleans up like Ctrl-C)."""
    from selectsearch.atomic import Terminated, interrupt_on_sigterm

    try:
        with interrupt_on_sigterm():
            return _execute(args)
    except Terminated:
        print("selectsearch train-mico: terminated (SIGTERM); no model was written", file=sys.stderr)
        return 143


def _execute(args: argparse.Namespace) -> int:
    apply_encoder_precision(args)  # frozen mode encodes the corpus once (the cache `index` shares)
    from selectsearch.errors import ModelError
    from selectsearch.mico.config import MicoConfig
    from selectsearch.mico.trainer import check_model_out, checkpoint_summary

    out: Path = args.out
    if (out / "config.json").exists() and not args.overwrite:
        raise ModelError(f"{out} already holds a model; pass --overwrite or another --out")
    check_model_out(out)  # before minutes of work: never replace a folder that is not a model
    checkpoint: Path = args.checkpoint or out.with_name(out.name + ".checkpoint")
    if (checkpoint / "checkpoint.pt").exists() and not args.resume and not args.overwrite:
        raise ModelError(f"{checkpoint} holds a checkpoint of an earlier run ({checkpoint_summary(checkpoint)}); "
                         "pass --resume to continue it, or --overwrite to discard it and start over")
    config = MicoConfig(n_clusters=args.shards, mode=args.mode, encoder=args.encoder, max_length=args.max_length,
                        beta=args.beta, head_learning_rate=args.head_learning_rate,
                        learning_rate=args.learning_rate,
                        warmup_steps=args.warmup_steps, batch_size=args.batch_size, epochs=args.epochs,
                        max_steps=args.max_steps, init="model" if args.init_model else args.init,
                        init_model=args.init_model, init_scale=args.init_scale,
                        val_fraction=args.val_fraction, val_split=args.val_split, val_topics=args.val_topics,
                        eval_steps=args.eval_steps, patience=args.patience,
                        seed=args.seed, threads=args.threads, size_sample=args.size_sample)
    from selectsearch.mico.run import train_from_data

    result = train_from_data(args.data, args.logs, config, out=out,
                          checkpoint=checkpoint,
                          resume=args.resume, cache_dir=args.cache_dir, progress=progress_enabled(args))
    summary = {"out": str(out), "initial_val_auc": round(result.initial_auc, 3),
               "best_val_auc": round(result.best_auc, 3),
               "best_step": result.state.best_step, "steps": result.state.step,
               "train_seconds": round(result.wall_seconds, 1)}
    if not getattr(args, "quiet", False):
        print(json.dumps(summary), file=sys.stdout)
    return 0

