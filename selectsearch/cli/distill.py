"""ReAugKD: distil a teacher classifier/regressor into a small retrieval-augmented student.

The teacher is a trained text classifier folder (--teacher, from `selectsearch
train-classifier`) or is fine-tuned here (--train-teacher). The student is the first --layers
layers of the teacher's starting encoder (default all-MiniLM-L6-v2; --student-init teacher
truncates the fine-tuned teacher instead) or --student-model DIR. A seeded slice of the training
data (--dev-fraction) is held out to choose k and alpha; it is never the task's test split.
The student folder holds the encoder, head, FAISS knowledge base and the chosen k/alpha.

Examples:
  selectsearch distill --task glue/MRPC --train-teacher --layers 2 --out models/mrpc-l2 --eval
  selectsearch distill --task sst2 --teacher models/sst2-ft --max-train 8000 --epochs 2 \\
      --max-length 64 --out models/sst2-l2
  selectsearch distill --train pairs.jsonl --regression --teacher models/rel --out models/rel-l2
  selectsearch distill --task stsb --teacher models/stsb-ft --lambda-rel 0 --out models/stsb-kd
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
from pathlib import Path
from typing import Any

from selectsearch.errors import SelectSearchError

#: GLUE folder names (as in ``shared/data/classification/glue``) -> ``load_task`` names.
GLUE_NAMES = {"sst-2": "sst2", "mrpc": "mrpc", "rte": "rte", "cola": "cola", "sts-b": "stsb"}


def task_name(name: str) -> str:
    """``glue/MRPC``, ``MRPC``, ``glue/STS-B`` or ``stsb`` -> the ``load_task`` name."""
    key = name.lower().removeprefix("glue/")
    return GLUE_NAMES.get(key, key)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``distill``."""
    src = parser.add_argument_group("data")
    one = src.add_mutually_exclusive_group(required=True)
    one.add_argument("--task", help="task: glue/SST-2 glue/MRPC glue/RTE glue/CoLA glue/STS-B, or trec-coarse, ...")
    one.add_argument("--train", type=Path, help="JSON lines with text fields and 'label'")
    src.add_argument("--regression", action="store_true", help="--train labels are numbers to regress")
    src.add_argument("--data", help="shared data folder (default $SELECTSEARCH_DATA or ../shared/data)")
    src.add_argument("--max-train", type=int, help="seeded subsample of this many training rows")
    src.add_argument("--dev-fraction", type=float, default=0.1, help="held-out slice of train for k/alpha")
    src.add_argument("--sample-seed", type=int, default=1234, help="seed of the dev slice and subsample")
    t = parser.add_argument_group("teacher")
    who = t.add_mutually_exclusive_group(required=True)
    who.add_argument("--teacher", type=Path, help="trained classifier folder (selectsearch train-classifier)")
    who.add_argument("--train-teacher", action="store_true", help="fine-tune the teacher here first")
    t.add_argument("--teacher-encoder", default="all-MiniLM-L6-v2", help="--train-teacher: encoder to fine-tune")
    t.add_argument("--teacher-epochs", type=float, default=3.0)
    t.add_argument("--teacher-learning-rate", "--teacher-lr", dest="teacher_learning_rate", type=float, default=1e-4)
    s = parser.add_argument_group("student")
    s.add_argument("--layers", type=int, default=2, help="keep the first L layers (0: all of --student-model)")
    s.add_argument("--student-model", help="local model folder for the student instead of the teacher's")
    s.add_argument(
        "--student-init",
        choices=("base", "teacher"),
        default="base",
        help="truncate the teacher's starting encoder (base) or the fine-tuned teacher (teacher)",
    )
    s.add_argument("--max-length", type=int, default=128)
    d = parser.add_argument_group("distillation")
    d.add_argument("--epochs", type=float, default=3.0)
    d.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float, default=2e-4)
    d.add_argument("--head-learning-rate", "--head-lr", dest="head_learning_rate", type=float, default=1e-3)
    d.add_argument("--batch-size", type=int, default=16)
    d.add_argument("--temperature", type=float, default=2.0, help="T of the KD loss")
    d.add_argument("--kd-weight", type=float, default=1.0)
    d.add_argument("--lambda-rel", type=float, default=1.0, help="weight of the relational loss (0: vanilla KD)")
    d.add_argument("--ce-weight", type=float, default=0.5, help="weight of the gold-label loss")
    d.add_argument("--tau", type=float, default=0.1, help="supervised contrastive temperature")
    d.add_argument("--tau-t", type=float, default=0.1)
    d.add_argument("--tau-s", type=float, default=0.1)
    d.add_argument("--tau-kb", type=float, default=0.1, help="temperature of the neighbour weights")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    o = parser.add_argument_group("output")
    o.add_argument("--out", type=Path, required=True, help="student folder to write")
    o.add_argument("--overwrite", action="store_true")
    o.add_argument("--log", type=Path, help="JSON lines training log")
    o.add_argument("--eval", action="store_true", help="--task only: test metrics (teacher, student, student+KB)")


def _examples(args: argparse.Namespace) -> tuple[list[Any], Any, str, tuple[str, ...], list[str]]:
    from selectsearch.data.classification import load_task

    if args.task:
        task = load_task(task_name(args.task), args.data)
        slots: tuple[str, ...] = ("text_a", "text_b") if task.pair else ("text",)
        return list(task.train), task, task.kind, slots, list(task.label_names)
    if args.eval:
        raise SelectSearchError("--eval needs --task (a test split)")
    from selectsearch.cli.train_classifier import _read_jsonl

    examples, slots, names = _read_jsonl(args.train, args.regression)
    return examples, None, "regression" if args.regression else "classification", slots, names


def execute(args: argparse.Namespace) -> int:
    """Split, get the teacher, distil, save; print a JSON summary on stdout."""
    import math

    import torch

    from selectsearch.data.classification import compute_metrics
    from selectsearch.distill import DistillConfig, PrecomputedTeacher, distill, teacher_from_classifier
    from selectsearch.models.classifier_config import ModelConfig, TrainConfig
    from selectsearch.models.classifier_training import train_classifier
    from selectsearch.models.text_classifier import TextClassifier
    from selectsearch.train.callbacks import JsonLogCallback, ProgressCallback

    torch.set_num_threads(max(1, args.threads))
    if args.out.exists() and not args.overwrite:
        raise SelectSearchError(f"{args.out} exists; choose another --out or pass --overwrite")
    if not 0.0 < args.dev_fraction < 1.0:
        raise SelectSearchError("--dev-fraction must lie strictly between 0 and 1")
    examples, task, kind, slots, names = _examples(args)
    order = list(range(len(examples)))
    random.Random(args.sample_seed).shuffle(order)
    n_dev = max(1, round(len(examples) * args.dev_fraction))
    dev = [examples[i] for i in order[:n_dev]]
    train = [examples[i] for i in order[n_dev:]]
    if args.max_train:
        train = train[: args.max_train]
    if not train:
        raise SelectSearchError("no training rows left after the dev slice; lower --dev-fraction")
    command = "selectsearch " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    quiet = bool(getattr(args, "quiet", False))

    if args.train_teacher:
        cfg = ModelConfig(
            method="finetune",
            kind=kind,
            label_names=tuple(names),
            slots=slots,
            encoder=args.teacher_encoder,
            max_length=args.max_length,
        )
        steps = max(1, math.ceil(args.teacher_epochs * len(train) / args.batch_size))
        tc = TrainConfig(
            max_steps=steps,
            batch_size=args.batch_size,
            learning_rate=args.teacher_learning_rate,
            head_learning_rate=1e-3,
            seed=args.seed,
        )
        clf = train_classifier(
            train, cfg, tc, callbacks=[ProgressCallback(disable=True if quiet else None, desc="teacher")]
        )
        clf.extra = {"task": args.task, "n_train": len(train), "role": "ReAugKD teacher"}
        teacher_dir = args.out.with_name(args.out.name + "-teacher")
        clf.save(teacher_dir, command=command, overwrite=True)
    else:
        teacher_dir = args.teacher
        clf = TextClassifier.load(teacher_dir)
        if clf.config.kind != kind:
            raise SelectSearchError(f"the teacher is a {clf.config.kind} model but the data is {kind}")
    encoder_dir = str(teacher_dir / "encoder") if args.student_init == "teacher" else None
    teacher = PrecomputedTeacher.from_teacher(
        teacher_from_classifier(clf, encoder_dir=encoder_dir),
        train + dev + (list(task.test) if task and args.eval else []),
    )
    config = DistillConfig(
        layers=args.layers,
        student_model=args.student_model,
        max_length=args.max_length,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        head_learning_rate=args.head_learning_rate,
        batch_size=args.batch_size,
        temperature=args.temperature,
        kd_weight=args.kd_weight,
        lambda_rel=args.lambda_rel,
        ce_weight=args.ce_weight,
        tau=args.tau,
        tau_t=args.tau_t,
        tau_s=args.tau_s,
        tau_kb=args.tau_kb,
        seed=args.seed,
        threads=args.threads,
    )
    metric = None
    if task is not None:

        def metric(mixed: Any, labels: Any, _teacher: Any) -> float:
            pred = mixed[:, 0] if kind == "regression" else mixed.argmax(axis=1)
            return compute_metrics(task, pred, labels)["score"]

    callbacks: list[Any] = [ProgressCallback(disable=True if quiet else None, desc="student")]
    if args.log:
        callbacks.append(JsonLogCallback(args.log))
    student = distill(
        teacher,
        train,
        dev,
        train_labels=[e.label for e in train],
        dev_labels=[e.label for e in dev],
        config=config,
        callbacks=callbacks,
        metric=metric,
    )
    student.extra.update({"task": args.task, "teacher": str(teacher_dir)})
    student.save(args.out, command=command, overwrite=True)
    summary: dict[str, Any] = {
        "out": str(args.out),
        "teacher": str(teacher_dir),
        "n_train": len(train),
        "n_dev": len(dev),
        "k": student.k,
        "alpha": student.alpha,
        "dev_best": student.extra.get("dev_best"),
        "dev_student_alone": student.extra.get("dev_student_alone"),
    }
    if args.eval and task is not None:
        test = list(task.test)
        gold = [e.label for e in test]
        summary["n_test"] = len(test)
        summary["test_teacher"] = compute_metrics(task, student.decide(teacher.embed_predict(test)[1]), gold)
        summary["test_student"] = compute_metrics(task, student.decide(student.predict(test, retrieval=False)), gold)
        summary["test_reaugkd"] = compute_metrics(task, student.decide(student.predict(test)), gold)
    print(json.dumps(summary, indent=1))
    return 0
