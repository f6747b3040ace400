"""Cost of MICO training steps in CPU seconds (robust to a shared, overloaded machine).

Builds the training run exactly as ``train-mico`` does (``init=random`` so no corpus embeddings
are needed; a step costs the same whatever the initial weights) and times N optimisation steps
of batch 64 with both wall clock and process CPU time (``time.process_time``, 1 torch thread).

Usage:
  .venv/bin/python eval/mico/step_timing.py ../shared/data/homedepot --mode full --steps 5 \
      --json eval/results/mico/hd-full-step-timing.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from selectsearch.bench.measure import Stopwatch
from selectsearch.bench.report import write_json
from selectsearch.bench.script import script_parser


def main(argv: list[str] | None = None) -> int:
    import torch

    from selectsearch.mico.config import MicoConfig
    from selectsearch.mico.logs import load_log_pairs
    from selectsearch.mico.trainer import MicoTraining, _batches_of_epoch

    parser = script_parser(__doc__)
    parser.add_argument("data")
    parser.add_argument("--mode", choices=("full",), default="full")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = MicoConfig(n_clusters=16, mode=args.mode, init="random", batch_size=args.batch_size)
    pairs = load_log_pairs([args.data], "train", size_sample=8)
    run = MicoTraining(pairs, config, None, None, False)
    batches = _batches_of_epoch(len(run.train_idx), config.batch_size, config.seed, 0)
    walls, cpus = [], []
    for b in batches[: args.steps]:
        with Stopwatch("process") as sw:
            loss, _ = run.compute_loss(run.train_idx[b])  # one kernel step (selectsearch.train.loop.Trainer.step)
            loss.backward()
            for group in run.clip_groups():
                torch.nn.utils.clip_grad_norm_(group, config.max_grad_norm)
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad(set_to_none=True)
        walls.append(sw.wall_s)
        cpus.append(sw.cpu_s)
        print(f"step wall {walls[-1]:.1f}s cpu {cpus[-1]:.1f}s", flush=True)
    out = {"data": args.data, "mode": args.mode, "batch_size": args.batch_size, "steps": len(cpus),
           "steps_per_epoch": len(batches), "cpu_seconds_per_step": float(np.median(cpus)),
           "wall_seconds_per_step": float(np.median(walls)), "cpu_seconds": cpus, "wall_seconds": walls,
           "torch_threads": torch.get_num_threads(),
           "cpu_hours_per_epoch_estimate": float(np.median(cpus)) * len(batches) / 3600}
    write_json(args.json, out, indent=1)
    print(json.dumps({k: v for k, v in out.items() if not isinstance(v, list)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
