"""Multi-task training: one shared encoder, one head per task, async-KD or a baseline.

Tasks come from a TOML file (see selectsearch.mtl.tasks). The output folder gets log.jsonl
(config, every evaluation, convergence/switch events, summary), results.json (per task: metric
at the final checkpoint and at its own best validation point, averages), the trained model
(model/, all heads served from one encoder pass) and, with --checkpoint-every, checkpoints to
resume from.

Examples:
  selectsearch train-mtl eval/mtl/setup_b.toml --method async-kd --out runs/b-akd \\
      --steps 600 --eval-every 40 --frozen-layers 5 --sampling temperature
  selectsearch train-mtl eval/mtl/setup_b.toml --method pcgrad --out runs/b-pcgrad \\
      --resume runs/b-pcgrad/checkpoint-000300
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

__all__ = ["add_arguments", "execute"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``train-mtl`` options."""
    parser.add_argument("tasks", help="task declaration file (TOML)")
    parser.add_argument("--method", default="async-kd",
                        choices=["async-kd", "equal", "uncertainty", "dwa", "gradnorm", "pcgrad"])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--data", default=None, help="data root (default: $SELECTSEARCH_DATA)")
    parser.add_argument("--encoder", default=None,
                        help="local model folder (default: packaged all-MiniLM-L6-v2)")
    parser.add_argument("--frozen-layers", type=int, default=0,
                        help="freeze embeddings + bottom N layers (outputs cached)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--max-steps", "--steps", dest="max_steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float, default=1e-4)
    parser.add_argument("--head-learning-rate", "--head-lr", dest="head_learning_rate", type=float, default=1e-3)
    parser.add_argument("--schedule", choices=["linear", "constant"], default="linear")
    parser.add_argument("--warmup-ratio", "--warmup", dest="warmup_ratio", type=float, default=0.06)
    parser.add_argument("--eval-steps", "--eval-every", dest="eval_steps", type=int, default=50)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--min-delta", type=float, default=0.0,
                        help="improvement (metric points) that resets patience")
    parser.add_argument("--min-evals", type=int, default=0)
    parser.add_argument("--sampling", choices=["proportional", "temperature", "round-robin"],
                        default="proportional")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--save-steps", "--checkpoint-every", dest="save_steps", type=int, default=0,
                        help="checkpoint every N steps (0: none)")
    parser.add_argument("--save-total-limit", "--keep-checkpoints", dest="save_total_limit", type=int, default=1,
                        help="newest checkpoints kept")
    parser.add_argument("--resume", default=None, help="checkpoint folder to continue from")
    parser.add_argument("--no-save-model", action="store_true", help="skip writing model/")


def execute(args: argparse.Namespace) -> int:
    """Train and write log, results and model; print the averages as JSON."""
    import torch

    from selectsearch.mtl.tasks import load_task_file, prepare_tasks
    from selectsearch.mtl.trainer import JsonLogCallback, MultiTaskTrainer, TrainConfig, build_model
    from selectsearch.train.callbacks import ProgressCallback

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = prepare_tasks(load_task_file(args.tasks), args.data)
    config = TrainConfig(
        method=args.method, max_steps=args.max_steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
        head_learning_rate=args.head_learning_rate, schedule=args.schedule, warmup_ratio=args.warmup_ratio,
        eval_steps=args.eval_steps, patience=args.patience, min_delta=args.min_delta,
        min_evals=args.min_evals, sampling=args.sampling, temperature=args.temperature,
        seed=args.seed, save_steps=args.save_steps, save_total_limit=args.save_total_limit,
    )
    model = build_model(tasks, encoder=args.encoder, frozen_layers=args.frozen_layers,
                        max_length=args.max_length, seed=args.seed)
    quiet = bool(getattr(args, "quiet", False)) or not sys.stderr.isatty()
    trainer = MultiTaskTrainer(model, tasks, config, callbacks=[
        JsonLogCallback(out / "log.jsonl"), ProgressCallback(disable=quiet, desc=args.method)])
    if args.resume:
        trainer.load_checkpoint(args.resume)
    summary = trainer.train(output_dir=out)
    summary["command"] = "selectsearch " + shlex.join(sys.argv[1:])
    summary["config"] = {**config.__dict__, "frozen_layers": args.frozen_layers,
                         "max_length": args.max_length, "tasks_file": args.tasks}
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if not args.no_save_model:
        model.save(out / "model", extra={"method": args.method, "seed": args.seed})
    print(json.dumps({"method": args.method, "seed": args.seed, **summary["average"]}))
    return 0
