"""Distil a MICO query router into a small ReAugKD student: the `distilled@m` router.

Teacher: the MICO model of --index (built with --partitioner mico) or --mico-model DIR. The
knowledge base holds the logged training queries (--logs: a qrels split of DATA or a click-log
file) with the teacher's routing distributions; the student is the first --layers layers of the
MICO encoder with a K-way head. --dev-fraction of the distinct logged queries (seeded) is held
out to choose k and the mixing weight. The student goes to --out (default INDEX/distilled-router,
where `--route distilled@M` finds it; elsewhere pass --router-option model=DIR).

examples:
  selectsearch distill-router ../shared/data/homedepot --logs train --index indexes/homedepot-mico16
  selectsearch eval indexes/homedepot-mico16 --data ../shared/data/homedepot --split test \\
      --route distilled@1:16
  selectsearch distill-router ../shared/data/homedepot --logs train --mico-model /work/models/hd-mico16 \\
      --out /work/models/hd-router-l1 --layers 1 --epochs 4
  selectsearch eval indexes/homedepot-kmeans16 --data ../shared/data/homedepot --route distilled@2 \\
      --router-option model=/work/models/hd-router-l1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from selectsearch.cli._common import progress_enabled


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``distill-router``."""
    parser.add_argument("data", metavar="DATA", help="BEIR folder whose --logs split holds the logged queries")
    parser.add_argument("--logs", default="train", help="qrels split name (default train) or a click-log file")
    parser.add_argument("--index", type=Path, help="index partitioned by MICO (its model is the teacher)")
    parser.add_argument("--mico-model", type=Path, help="MICO model folder (teacher) instead of the index's")
    parser.add_argument("--out", type=Path, help="student folder (default INDEX/distilled-router)")
    parser.add_argument("--layers", type=int, default=2, help="MICO encoder layers the student keeps (default 2)")
    parser.add_argument("--max-length", type=int, default=32, help="tokens per query (default 32)")
    parser.add_argument("--epochs", type=float, default=3.0, help="passes over the logged queries (default 3)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float, default=1e-4,
                        help="student encoder learning rate")
    parser.add_argument("--lambda-rel", type=float, default=1.0, help="weight of the relational loss")
    parser.add_argument("--temperature", type=float, default=2.0, help="distillation temperature")
    parser.add_argument("--dev-fraction", type=float, default=0.1, help="logged queries held out for k/alpha")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--log-file", type=Path, help="JSON lines of training progress")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing student")


def execute(args: argparse.Namespace) -> int:
    """Run ``distill-router``."""
    from selectsearch.errors import ModelError, SelectSearchError
    from selectsearch.mico.logs import read_log_records
    from selectsearch.route.distilled import DEFAULT_FOLDER, default_router_config, train_distilled_router
    from selectsearch.train.callbacks import JsonLogCallback, ProgressCallback

    if args.index is None and args.mico_model is None:
        raise SelectSearchError("pass --index INDEX (a MICO-partitioned index) or --mico-model DIR")
    if args.mico_model is not None:
        teacher_dir = args.mico_model
    else:
        from selectsearch.index.sharded import ShardedIndex
        from selectsearch.route.mico import mico_model_dir

        teacher_dir = mico_model_dir(ShardedIndex.open(args.index))
    if args.out is None and args.index is None:
        raise SelectSearchError("pass --out DIR (or --index INDEX to write INDEX/distilled-router)")
    out: Path = args.out if args.out is not None else args.index / DEFAULT_FOLDER
    if out.exists() and not args.overwrite:
        raise ModelError(f"{out} exists; pass --overwrite or another --out")
    queries = [q for q, _, _ in read_log_records(args.data, args.logs)]
    config = default_router_config(layers=args.layers, max_length=args.max_length, epochs=args.epochs,
                                   batch_size=args.batch_size, learning_rate=args.learning_rate,
                                   lambda_rel=args.lambda_rel,
                                   temperature=args.temperature, seed=args.seed, threads=max(1, args.threads))
    callbacks: list[object] = [ProgressCallback(disable=not progress_enabled(args), desc="student")]
    if args.log_file:
        callbacks.append(JsonLogCallback(args.log_file, every=20))
    start = time.perf_counter()
    student = train_distilled_router(teacher_dir, queries, config=config, dev_fraction=args.dev_fraction,
                                     seed=args.seed, out=out, callbacks=callbacks,
                                     extra={"data": str(args.data), "logs": args.logs})
    summary = {"out": str(out), "teacher": str(teacher_dir), "k": student.k, "alpha": student.alpha,
               "kb": len(student.kb) if student.kb is not None else 0,
               "dev_best": student.extra.get("dev_best"), "dev_student_alone": student.extra.get("dev_student_alone"),
               "seconds": round(time.perf_counter() - start, 1)}
    if not getattr(args, "quiet", False):
        print(json.dumps(summary), file=sys.stdout)
    return 0
