"""Train a reranker: the cross-encoder teacher, or (with --teacher) its ReAugKD student.

Teacher: all-MiniLM-L6-v2 (or --encoder) with a relevance head, fine-tuned pointwise on the
--split qrels of DATA: every judged pair keeps its grade and unjudged BM25 top---depth candidates
from INDEX (exhaustive BM25, collection-wide statistics) are added as grade-0 negatives. Queries
and pairs are subsampled with --seed (--max-queries, --max-positives, --judged-negatives,
--bm25-negatives). A document's reranking score is its expected grade.

Student (--teacher DIR): the first --layers layers of the teacher, trained by ReAugKD
(selectsearch.distill) on the teacher's predictions for training pairs plus unlabelled BM25
candidates of the training queries; the knowledge base (teacher embeddings and predictions of
those pairs) is saved with the student, and k / the mixing weight are chosen on held-out
training queries.

--method dynamar trains the DynaMaR relevance model in place of the cross-encoder: the same pairs
and budget, the [MASK] state of a (query, document) template into a regression head on the grade.

Either folder works with `--rerank DIR` of search/eval and with selectsearch.rerank.load_reranker.

examples:
  selectsearch train-reranker ../shared/data/homedepot --index indexes/homedepot-mico16 \\
      --out /work/models/hd-rerank-teacher --max-queries 2500 --steps 360
  selectsearch train-reranker ../shared/data/homedepot --index indexes/homedepot-mico16 \\
      --teacher /work/models/hd-rerank-teacher --out /work/models/hd-rerank-student --layers 2
  selectsearch train-reranker ../shared/data/homedepot --index indexes/homedepot-mico16 \\
      --method dynamar --out /work/models/hd-dynamar-relevance --steps 1500
  selectsearch train-reranker ../shared/data/scifact --index indexes/scifact-kmeans16 \\
      --out /work/models/sf-rerank-teacher --max-length 256 --steps 200
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from selectsearch.cli._common import progress_enabled

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.rerank.candidates import PairConfig

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``train-reranker``."""
    parser.add_argument("data", metavar="DATA", help="BEIR folder with queries and qrels")
    parser.add_argument("--index", required=True, help="sharded index of DATA's corpus (BM25 candidates, texts)")
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument("--split", default="train", help="qrels split to train on (default train)")
    parser.add_argument("--teacher", type=Path, help="distil this cross-encoder into a ReAugKD student")
    parser.add_argument("--method", choices=("finetune", "dynamar"), default="finetune",
                        help="teacher model: finetune = cross-encoder (mean pooling, one class per grade); "
                             "dynamar = prompt + [MASK] regression on the grade (default finetune)")
    parser.add_argument("--pool-size", type=int, default=4, help="--method dynamar: templates in the pool (M)")
    parser.add_argument("--encoder", default="all-MiniLM-L6-v2", help="teacher start: all-MiniLM-L6-v2 or a folder")
    parser.add_argument("--max-length", type=int, default=None,
                        help="tokens of query + document the model reads (default 64; with --teacher: the "
                             "teacher's length; a shorter student costs less per pair)")
    parser.add_argument("--depth", type=int, default=100, help="BM25 candidates per query (default 100)")
    parser.add_argument("--max-queries", type=int, default=2500, help="training queries sampled (0: all)")
    parser.add_argument("--max-positives", type=int, default=2, help="relevant pairs per query (0: all)")
    parser.add_argument("--judged-negatives", type=int, default=1, help="judged grade-0 pairs per query")
    parser.add_argument("--bm25-negatives", type=int, default=2, help="unjudged BM25 candidates per query")
    parser.add_argument("--max-steps", "--steps", dest="max_steps", type=int, default=360,
                        help="optimiser steps (default 360)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float, default=5e-5,
                        help="encoder learning rate")
    parser.add_argument("--head-learning-rate", "--head-lr", dest="head_learning_rate", type=float, default=1e-3,
                        help="head learning rate")
    parser.add_argument("--layers", type=int, default=2, help="student: teacher layers kept (default 2)")
    parser.add_argument("--unlabelled", type=int, default=4,
                        help="student: extra unlabelled BM25 candidates per training query (default 4)")
    parser.add_argument("--dev-queries", type=int, default=200,
                        help="student: training queries held out to choose k and alpha (default 200)")
    parser.add_argument("--epochs", type=float, default=1.0, help="student: passes over its training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--cache-dir", type=Path, help="BM25 candidate cache (default OUT.cache)")
    parser.add_argument("--log-file", type=Path, help="JSON lines of training progress")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out model")


def execute(args: argparse.Namespace) -> int:
    """Run ``train-reranker``."""
    import torch

    from selectsearch.data import load_qrels, load_queries
    from selectsearch.errors import ModelError
    from selectsearch.rerank.candidates import PairConfig

    torch.set_num_threads(max(1, args.threads))
    if args.teacher is not None and args.method != "finetune":
        raise ModelError("--method dynamar trains a relevance model of its own; --teacher distils a cross-encoder "
                         "(drop one of the two)")
    if args.max_length is not None and args.max_length < 8:
        raise ModelError(f"--max-length must be at least 8 tokens, got {args.max_length}")
    out: Path = args.out
    if out.exists() and not args.overwrite:
        raise ModelError(f"{out} exists; pass --overwrite or another --out")
    queries = load_queries(args.data, split=args.split)
    qrels = load_qrels(args.data, split=args.split)
    pairs = PairConfig(depth=args.depth, max_queries=args.max_queries, max_positives=args.max_positives,
                       max_judged_negatives=args.judged_negatives, bm25_negatives=args.bm25_negatives, seed=args.seed)
    cache = args.cache_dir or out.with_name(out.name + ".cache")
    start = time.perf_counter()
    if args.teacher is None:
        summary = _train_teacher(args, queries, qrels, pairs, cache)
    else:
        summary = _train_student(args, queries, qrels, pairs, cache)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    if not getattr(args, "quiet", False):
        print(json.dumps(summary), file=sys.stdout)
    return 0


def _callbacks(args: argparse.Namespace, desc: str) -> list[object]:
    from selectsearch.train.callbacks import JsonLogCallback, ProgressCallback

    cbs: list[object] = [ProgressCallback(disable=not progress_enabled(args), desc=desc)]
    if args.log_file:
        cbs.append(JsonLogCallback(args.log_file, every=10))
    return cbs


def _train_teacher(args: argparse.Namespace, queries: dict[str, str], qrels: dict[str, dict[str, int]],
                   pairs_config: PairConfig, cache: Path) -> dict[str, object]:
    from selectsearch.rerank.candidates import training_pairs
    from selectsearch.rerank.teacher import CrossEncoderConfig, train_cross_encoder

    pairs = training_pairs(args.index, queries, qrels, pairs_config, cache_dir=cache, progress=progress_enabled(args))
    config = CrossEncoderConfig(method=args.method, pool_size=args.pool_size, encoder=args.encoder,
                                max_length=args.max_length or 64, max_steps=args.max_steps,
                                batch_size=args.batch_size, learning_rate=args.learning_rate,
                                head_learning_rate=args.head_learning_rate,
                                seed=args.seed)
    model = train_cross_encoder(pairs, config, callbacks=_callbacks(args, "teacher"),
                                extra={"data": str(args.data), "split": args.split, "index": str(args.index),
                                       "pairs": pairs_config.to_dict()})
    model.save(args.out, overwrite=args.overwrite)
    grades: dict[int, int] = {}
    for p in pairs:
        grades[p.grade] = grades.get(p.grade, 0) + 1
    kind = "dynamar" if args.method == "dynamar" else "cross-encoder"
    return {"out": str(args.out), "kind": kind, "pairs": len(pairs),
            "grades": {str(k): v for k, v in sorted(grades.items())}}


def _train_student(args: argparse.Namespace, queries: dict[str, str], qrels: dict[str, dict[str, int]],
                   pairs_config: PairConfig, cache: Path) -> dict[str, object]:
    from selectsearch.rerank.student import StudentConfig, distill_reranker

    config = StudentConfig(layers=args.layers, unlabelled=args.unlabelled, dev_queries=args.dev_queries,
                           epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, max_length=args.max_length)
    result = distill_reranker(args.teacher, args.index, queries, qrels, pairs_config, config,
                              out=args.out, cache_dir=cache, progress=progress_enabled(args), log_file=args.log_file)
    return {"out": str(args.out), "kind": "student", **result}
