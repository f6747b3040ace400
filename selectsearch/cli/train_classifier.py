"""Train a text classifier or regressor: DynaMaR (prompt + mask token) or standard fine-tuning.

Both methods share the trainer, encoder and budget; only --method differs. Training data comes
from a named task in the shared data (--task, optionally --k-shot K per class) or from a JSON
lines file (--train) with "text" (or "text_a"/"text_b", or "query"/"doc") and "label".

Examples:
  selectsearch train-classifier --method dynamar --task trec-coarse --k-shot 16 \\
      --steps 60 --output models/trec-dynamar --eval
  selectsearch train-classifier --method finetune --task stsb --k-shot 32 --output models/stsb-ft
  selectsearch train-classifier --method dynamar --train queries.jsonl --output models/qtype \\
      --template "{text} Question type : {mask} ." --pool-size 4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from selectsearch.errors import DataFormatError, DataNotFoundError, SelectSearchError

_PAIR_KEYS = (("text",), ("text_a", "text_b"), ("query", "doc"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``train-classifier``."""
    src = parser.add_argument_group("data")
    one = src.add_mutually_exclusive_group(required=True)
    one.add_argument(
        "--task", help="task name from the shared data (sst2, mr, trec-coarse, stsb, ...)"
    )
    one.add_argument("--train", type=Path, help="JSON lines with text fields and 'label'")
    src.add_argument(
        "--regression",
        action="store_true",
        help="--train labels are numbers to regress (default: class names)",
    )
    src.add_argument(
        "--data", help="shared data folder (default $SELECTSEARCH_DATA or ../shared/data)"
    )
    src.add_argument(
        "--k-shot", type=int, help="sample K training examples per class (K for regression)"
    )
    src.add_argument("--sample-seed", type=int, help="seed of the --k-shot sample (default --seed)")
    m = parser.add_argument_group("model")
    m.add_argument("--method", choices=("dynamar", "finetune"), required=True)
    m.add_argument(
        "--encoder", default="all-MiniLM-L6-v2", help="local model folder or all-MiniLM-L6-v2"
    )
    m.add_argument("--max-length", type=int, default=128)
    m.add_argument("--dropout", type=float, default=0.1)
    m.add_argument("--pooling", choices=("mean", "cls"), default="mean", help="finetune only")
    m.add_argument("--pool-size", type=int, default=4, help="dynamar: templates in the pool (M)")
    m.add_argument(
        "--template",
        action="append",
        default=[],
        help="dynamar: seed template, repeatable (default: built-in seeds)",
    )
    m.add_argument("--no-variants", action="store_true", help="dynamar: only the seed templates")
    m.add_argument(
        "--inference",
        choices=("pool", "single"),
        default="pool",
        help="dynamar: default inference (mean over the pool or the first template)",
    )
    t = parser.add_argument_group("training")
    t.add_argument("--max-steps", "--steps", dest="max_steps", type=int, default=100, help="optimiser steps")
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float, default=1e-4,
                   help="encoder learning rate")
    t.add_argument("--head-learning-rate", "--head-lr", dest="head_learning_rate", type=float, default=1e-2,
                   help="head learning rate")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    o = parser.add_argument_group("output")
    o.add_argument("--output", type=Path, required=True, help="model folder to write")
    o.add_argument("--overwrite", action="store_true")
    o.add_argument("--log", type=Path, help="JSON lines training log (one line per step)")
    o.add_argument("--eval", action="store_true", help="--task only: print test metrics as JSON")
    o.add_argument("--max-test", type=int, help="evaluate on a seeded sample of this many")


def _read_jsonl(path: Path, regression: bool) -> tuple[list[Any], tuple[str, ...], list[str]]:
    from selectsearch.data.classification import TextExample

    if not path.exists():
        raise DataNotFoundError(f"{path} not found")
    rows: list[tuple[tuple[str, ...], dict[str, Any], int]] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(path, n, f"not JSON ({exc})") from exc
            keys = next((k for k in _PAIR_KEYS[::-1] if all(x in obj for x in k)), None)
            if keys is None or "label" not in obj:
                raise DataFormatError(
                    path, n, "needs 'label' and 'text' (or text_a/text_b, query/doc)"
                )
            rows.append((keys, obj, n))
    if not rows:
        raise DataFormatError(path, None, "no examples")
    slots = rows[0][0]
    if any(r[0] != slots for r in rows):
        raise DataFormatError(
            path, None, f"every line must have the same fields as line 1: {slots}"
        )
    if regression:
        names = ["score"]
        examples = [
            TextExample(o[slots[0]], float(o["label"]), o[slots[1]] if len(slots) > 1 else None)
            for _, o, _ in rows
        ]
    else:
        names = sorted({str(o["label"]) for _, o, _ in rows})
        index = {lab: i for i, lab in enumerate(names)}
        examples = [
            TextExample(
                o[slots[0]], index[str(o["label"])], o[slots[1]] if len(slots) > 1 else None
            )
            for _, o, _ in rows
        ]
    return examples, slots, names


def execute(args: argparse.Namespace) -> int:
    """Train, save the model folder, optionally evaluate; print a JSON summary on stdout."""
    import random
    import shlex

    import torch

    from selectsearch.data.classification import compute_metrics, load_task
    from selectsearch.models.classifier_config import ModelConfig, TrainConfig
    from selectsearch.models.classifier_training import sample_few_shot, train_classifier
    from selectsearch.models.text_classifier import TextClassifier
    from selectsearch.train.callbacks import JsonLogCallback, ProgressCallback

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.output.exists() and not args.overwrite:
        raise SelectSearchError(
            f"{args.output} exists; choose another --output or pass --overwrite"
        )
    task = None
    if args.task:
        task = load_task(args.task, args.data)
        examples, kind, names = list(task.train), task.kind, list(task.label_names)
        slots: tuple[str, ...] = ("text_a", "text_b") if task.pair else ("text",)
    else:
        if args.eval:
            raise SelectSearchError("--eval needs --task (a test split)")
        examples, slots, names = _read_jsonl(args.train, args.regression)
        kind = "regression" if args.regression else "classification"
    if args.k_shot:
        seed = args.seed if args.sample_seed is None else args.sample_seed
        examples = sample_few_shot(examples, k=args.k_shot, kind=kind, seed=seed)
    config = ModelConfig(
        method=args.method,
        kind=kind,
        label_names=tuple(names),
        slots=slots,
        encoder=args.encoder,
        max_length=args.max_length,
        dropout=args.dropout,
        pooling=args.pooling,
        pool_size=args.pool_size,
        templates=tuple(args.template),
        variants=not args.no_variants,
        inference=args.inference,
    )
    train = TrainConfig(
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        head_learning_rate=args.head_learning_rate,
        seed=args.seed,
    )
    callbacks: list[Any] = [
        ProgressCallback(disable=True if args.quiet else None, desc=args.method)
    ]
    if args.log:
        callbacks.append(JsonLogCallback(args.log))
    clf: TextClassifier = train_classifier(examples, config, train, callbacks=callbacks)
    clf.extra = {"task": args.task, "n_train": len(examples)}
    command = "selectsearch " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    clf.save(args.output, command=command, overwrite=args.overwrite)
    summary: dict[str, Any] = {
        "output": str(args.output),
        "method": args.method,
        "n_train": len(examples),
        "steps": args.max_steps,
        "pool": [t.source for t in clf.pool],
    }
    if args.eval and task is not None:
        test = list(task.test)
        if args.max_test and len(test) > args.max_test:
            test = random.Random(0).sample(test, args.max_test)
        outs = clf.view_outputs(test, progress=not args.quiet)
        gold = [e.label for e in test]
        summary["n_test"] = len(test)
        summary["test_pool"] = compute_metrics(task, clf.decide(outs.mean(axis=0)), gold)
        summary["test_single"] = compute_metrics(task, clf.decide(outs[0]), gold)
    print(json.dumps(summary, indent=1))
    return 0
