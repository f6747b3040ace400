"""Multi-task learning with asynchronous convergence (per-task switch to self-distillation).

One shared encoder, one head per task; tasks declared in TOML; methods ``async-kd`` (Lu et al.
2022, methods doc section 3) and the baselines ``equal uncertainty dwa gradnorm pcgrad``.
Names are imported lazily so that ``import selectsearch.mtl`` does not load torch.

Example:
    >>> from selectsearch.mtl import load_task_file, prepare_tasks, build_model  # doctest: +SKIP
    >>> from selectsearch.mtl import MultiTaskTrainer, TrainConfig  # doctest: +SKIP
    >>> tasks = prepare_tasks(load_task_file("eval/mtl/setup_b.toml"))  # doctest: +SKIP
    >>> trainer = MultiTaskTrainer(build_model(tasks), tasks, TrainConfig(steps=100))  # doctest: +SKIP
    >>> trainer.train()["average"]  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TaskSpec": "selectsearch.mtl.tasks",
    "MTLTask": "selectsearch.mtl.tasks",
    "load_task_file": "selectsearch.mtl.tasks",
    "prepare_tasks": "selectsearch.mtl.tasks",
    "TaskSampler": "selectsearch.mtl.sampling",
    "ConvergenceTracker": "selectsearch.mtl.convergence",
    "METHODS": "selectsearch.mtl.balancing",
    "make_balancer": "selectsearch.mtl.balancing",
    "distillation_loss": "selectsearch.mtl.losses",
    "supervised_loss": "selectsearch.mtl.losses",
    "HeadSpec": "selectsearch.mtl.model",
    "SharedEncoder": "selectsearch.mtl.model",
    "MultiTaskModel": "selectsearch.mtl.model",
    "TrainConfig": "selectsearch.mtl.trainer",
    "TrainerCallback": "selectsearch.train.callbacks",
    "JsonLogCallback": "selectsearch.mtl.trainer",
    "ProgressCallback": "selectsearch.train.callbacks",
    "MultiTaskTrainer": "selectsearch.mtl.trainer",
    "build_model": "selectsearch.mtl.trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'selectsearch.mtl' has no attribute {name!r}")
