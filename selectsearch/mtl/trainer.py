"""The multi-task trainer: shared encoder, one head per task, async-KD and the baselines.

One training step draws a mixed batch (:mod:`selectsearch.mtl.sampling`), runs the shared
encoder once, computes each task's loss on its slice and hands the losses to the method's
balancer (:mod:`selectsearch.mtl.balancing`). Every ``eval_steps`` steps all tasks are evaluated
on their validation (and test) sets, each task's :class:`ConvergenceTracker` is updated and the
trainable weights at each task's best validation point are kept as that task's snapshot.

Asynchronous convergence (``method="async-kd"``, methods doc section 3): when a task converges,
its best snapshot is run ONCE over the task's training set, the predictions are stored as soft
labels, and from then on the task's loss is ``KL(soft || prediction)`` (MSE for regression)
while the other tasks keep their true labels. All methods run the convergence detection and log
the events, so baselines show when their tasks peaked; only async-KD switches.

Example:
    >>> from selectsearch.mtl import load_task_file, prepare_tasks, build_model  # doctest: +SKIP
    >>> tasks = prepare_tasks(load_task_file("eval/mtl/setup_b.toml"))  # doctest: +SKIP
    >>> model = build_model(tasks, frozen_layers=5, seed=0)  # doctest: +SKIP
    >>> trainer = MultiTaskTrainer(model, tasks, TrainConfig(method="async-kd", max_steps=600))  # doctest: +SKIP
    >>> summary = trainer.train()  # doctest: +SKIP
    >>> summary["average"]["final_test"], summary["average"]["best_test"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selectsearch.data.classification import compute_metrics
from selectsearch.errors import SelectSearchError
from selectsearch.mtl.balancing import METHODS, ParamGroups, make_balancer
from selectsearch.mtl.convergence import ConvergenceTracker
from selectsearch.mtl.losses import distillation_loss, soft_targets, supervised_loss
from selectsearch.mtl.model import HeadSpec, MultiTaskModel, Pair, SharedEncoder
from selectsearch.mtl.sampling import TaskSampler
from selectsearch.mtl.tasks import MTLTask
from selectsearch.train import callbacks as kernel_callbacks
from selectsearch.train.arguments import TrainingArguments, accepts_old_names
from selectsearch.train.callbacks import TrainerCallback, TrainState
from selectsearch.train.checkpoint import CheckpointFiles
from selectsearch.train.loop import CheckpointPlan, Trainer, TrainingMethod
from selectsearch.train.schedule import DECAYS, lr_scheduler, seed_everything

__all__ = [
    "CHECKPOINT_FILES",
    "JsonLogCallback",
    "MultiTaskTrainer",
    "TrainConfig",
    "TrainerCallback",
    "build_model",
]

logger = logging.getLogger(__name__)

#: the multi-task trainer's checkpoint folder: ``state.pt`` (tensors) + ``trainer_state.json``
CHECKPOINT_FILES = CheckpointFiles(tensors="state.pt", state="trainer_state.json")


@accepts_old_names
@dataclass(frozen=True)
class TrainConfig(TrainingArguments):
    """Everything that defines a run (recorded in logs, checkpoints and results).

    Attributes:
        method: one of ``async-kd equal uncertainty dwa gradnorm pcgrad``.
        max_steps: optimisation steps (each a mixed batch of ``batch_size`` examples).
        learning_rate: learning rate of the shared encoder; ``head_learning_rate`` of heads and
            balancer parameters.
        warmup_ratio: fraction of steps of linear warm-up; then ``schedule`` (linear decay/constant).
        eval_steps: steps between validation evaluations and convergence checks. The test
            set is evaluated at the end: with the final weights and, per task, with the
            task's best snapshot (``test_every_eval`` also evaluates it at every evaluation).
        patience, min_delta, min_evals: convergence detection (metric points, x100 scale).
        sampling, temperature: task sampling scheme (``proportional temperature round-robin``).
        save_steps: steps between checkpoints (0: none); ``save_total_limit`` newest kept.

    The names are :class:`~selectsearch.train.arguments.TrainingArguments`'; older configs
    (``steps``, ``lr``, ``head_lr``, ``warmup``, ``eval_every``, ``checkpoint_every``,
    ``keep_checkpoints``) still load.
    """

    method: str = "async-kd"
    max_steps: int = 1000
    learning_rate: float = 1e-4
    warmup_ratio: float = 0.06
    schedule: str = "linear"
    eval_steps: int = 50
    eval_batch_size: int = 128
    test_every_eval: bool = False
    patience: int = 3
    min_delta: float = 0.0
    min_evals: int = 0
    sampling: str = "proportional"
    temperature: float = 2.0
    dwa_temperature: float = 2.0
    gradnorm_alpha: float = 1.5
    gradnorm_learning_rate: float = 0.025

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SelectSearchError(f"unknown method {self.method!r}; choose one of "
                                    f"{', '.join(METHODS)}")
        if self.schedule not in DECAYS:
            raise SelectSearchError(f"schedule must be linear or constant, got {self.schedule!r}")
        if self.max_steps < 1 or self.eval_steps < 1:
            raise SelectSearchError("max_steps and eval_steps must be >= 1")

    def warmup_before_peak(self, total_steps: int) -> int:
        """The ramp has ``round(warmup_ratio * steps)`` steps (at least one), the last at the peak."""
        if self.warmup_steps > 0:
            return self.warmup_steps
        return max(1, round(self.warmup_ratio * total_steps)) - 1


class JsonLogCallback(kernel_callbacks.JsonLogCallback):
    """The multi-task JSON-lines log: a ``config`` line, one ``eval`` line per evaluation, the
    convergence / switch ``event`` lines and the ``summary``."""

    def on_train_begin(self, state: TrainState) -> None:
        """Log the configuration."""
        self.write({"type": "config", "step": state.step, **state.run})

    def on_step_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        """Steps are not logged (evaluations carry the mean losses)."""

    def on_evaluate(self, state: TrainState, metrics: dict[str, Any]) -> None:
        """Log one evaluation."""
        self.write({"type": "eval", **metrics})

    def on_event(self, state: TrainState, event: dict[str, Any]) -> None:
        """Log one event."""
        self.write({"type": "event", **event})

    def on_train_end(self, state: TrainState) -> None:
        """Log the summary."""
        self.write({"type": "summary", **state.summary})



def build_model(tasks: Sequence[MTLTask], *, encoder: str | os.PathLike[str] | None = None,
                frozen_layers: int = 0, max_length: int = 64, seed: int = 0,
                tokenizer_and_model: tuple[Any, Any] | None = None,
                feature_cache: dict[Pair, torch.Tensor] | None = None) -> MultiTaskModel:
    """A :class:`MultiTaskModel` with one head per task; heads initialised from ``seed``.

    Args:
        tasks: prepared tasks (heads follow their kinds and label counts).
        encoder: local model folder or ``None`` for the packaged all-MiniLM-L6-v2.
        frozen_layers: bottom encoder layers to freeze (their outputs are cached).
        max_length: maximum tokens per input.
        seed: seed of the head initialisation.
        tokenizer_and_model: use these instead of loading ``encoder`` (tests).
        feature_cache: reuse a frozen-layer feature cache of the same encoder and
            ``frozen_layers`` (benchmarks share it across runs).
    """
    from selectsearch.models.encoder import load_encoder

    tokenizer, enc = tokenizer_and_model or load_encoder(encoder)
    shared = SharedEncoder(tokenizer, enc, frozen_layers=frozen_layers, max_length=max_length)
    if feature_cache is not None:
        shared.feature_cache = feature_cache
    seed_everything(seed)
    specs = [HeadSpec(t.name, t.kind, t.num_labels, tuple(t.data.label_names)) for t in tasks]
    return MultiTaskModel(shared, specs)


def _pairs(examples: Iterable[Any]) -> list[Pair]:
    return [(e.text_a, e.text_b) for e in examples]


class MultiTaskTrainer(TrainingMethod):
    """Train a :class:`MultiTaskModel` on several tasks with one of :data:`METHODS`.

    The multi-task part — mixed batches, per-task losses combined by the balancer, per-task
    convergence, snapshots and the KD switch — lives here; the loop, schedule, clipping,
    checkpoints and callbacks are the training kernel's (:attr:`kernel`).

    Args:
        model: the model (one head per task, names matching ``tasks``).
        tasks: prepared tasks with train / val / test splits.
        config: the run configuration.
        callbacks: :class:`~selectsearch.train.callbacks.TrainerCallback` instances, called in order.
        evaluate_fn: replaces :meth:`evaluate_splits` (tests script metric sequences with it).
    """

    def __init__(self, model: MultiTaskModel, tasks: Sequence[MTLTask], config: TrainConfig, *,
                 callbacks: Sequence[TrainerCallback] = (),
                 evaluate_fn: Callable[[MultiTaskTrainer], dict[str, Any]] | None = None) -> None:
        names = [t.name for t in tasks]
        if names != model.task_names:
            raise SelectSearchError(f"model heads {model.task_names} do not match tasks {names}")
        self.model = model
        self.tasks = list(tasks)
        self.by_name = {t.name: t for t in self.tasks}
        self.config = config
        self.name = config.method
        self.evaluate_fn = evaluate_fn
        kinds = {t.name: t.kind for t in self.tasks}
        options: dict[str, Any] = {}
        if config.method == "dwa":
            options["temperature"] = config.dwa_temperature
        elif config.method == "gradnorm":
            options = {"alpha": config.gradnorm_alpha, "lr": config.gradnorm_learning_rate}
        self.balancer = make_balancer(config.method, names, kinds, seed=config.seed, **options)
        self.sampler = TaskSampler({t.name: len(t.train) for t in self.tasks},
                                   batch_size=config.batch_size, scheme=config.sampling,
                                   temperature=config.temperature, seed=config.seed)
        self.groups = ParamGroups(shared=model.shared_parameters(),
                                  last_shared=model.shared.trainable_layer_parameters(),
                                  tasks={t: model.head_parameters(t) for t in names})
        if not self.groups.shared:
            raise SelectSearchError("the shared encoder has no trainable parameters; "
                                    "lower frozen_layers")
        head_params = [p for t in names for p in self.groups.tasks[t]]
        param_groups = [
            {"params": self.groups.shared, "lr": config.learning_rate},
            {"params": head_params, "lr": config.head_learning_rate},
        ]
        if self.balancer.parameters():
            param_groups.append({"params": self.balancer.parameters(), "lr": config.head_learning_rate,
                                 "weight_decay": 0.0})
        self.optimizer = torch.optim.AdamW(param_groups, weight_decay=config.weight_decay)
        warmup = config.warmup_before_peak(config.max_steps)
        self.scheduler = lr_scheduler(self.optimizer, warmup, config.max_steps, decay=config.schedule,
                                      decay_start=warmup + 1)
        self.trackers = {t: ConvergenceTracker(config.patience, config.min_delta, config.min_evals)
                         for t in names}
        self.snapshots: dict[str, dict[str, torch.Tensor]] = {}
        self.soft_labels: dict[str, torch.Tensor] = {}
        self.events: list[dict[str, Any]] = []
        self._loss_sum = {t: 0.0 for t in names}
        self._loss_n = 0
        self._last_weights: dict[str, float] = self.balancer.weights()
        self.test_results: dict[str, dict[str, dict[str, float]]] = {}
        self._step_metrics: dict[str, Any] = {}
        self.kernel = Trainer(self, config, total_steps=config.max_steps, callbacks=callbacks,
                              checkpoint_files=CHECKPOINT_FILES)
        seed_everything(config.seed)

    # -- the kernel's view of the run -----------------------------------------------------
    @property
    def step(self) -> int:
        """Optimisation steps done."""
        return self.kernel.state.step

    @property
    def history(self) -> list[dict[str, Any]]:
        """One record per evaluation."""
        return self.kernel.state.history

    @property
    def callbacks(self) -> list[TrainerCallback]:
        """The kernel's callbacks (assignable)."""
        return self.kernel.callbacks

    @callbacks.setter
    def callbacks(self, value: Sequence[TrainerCallback]) -> None:
        self.kernel.callbacks = list(value)

    # -- one step -------------------------------------------------------------------------
    def compute_losses(self, batch: dict[str, list[int]]) -> dict[str, torch.Tensor]:
        """Per-task losses of one mixed batch (true labels, or stored soft labels once switched)."""
        pairs: list[Pair] = []
        spans: dict[str, tuple[int, int]] = {}
        for t, idx in batch.items():
            start = len(pairs)
            pairs.extend(_pairs(self.by_name[t].train[i] for i in idx))
            spans[t] = (start, len(pairs))
        pooled = self.model.shared(pairs)
        losses: dict[str, torch.Tensor] = {}
        for t, (a, b) in spans.items():
            task = self.by_name[t]
            out = self.model.heads[t](pooled[a:b])
            if t in self.soft_labels:
                losses[t] = distillation_loss(task.kind, out, self.soft_labels[t][batch[t]])
            else:
                labels = torch.tensor([task.train[i].label for i in batch[t]])
                losses[t] = supervised_loss(task.kind, out, labels)
        return losses

    def next_batch(self) -> dict[str, list[int]]:
        self.model.train()
        return self.sampler.next_batch()

    def compute_loss(self, batch: dict[str, list[int]]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        losses = self.compute_losses(batch)
        values = {t: float(v.detach()) for t, v in losses.items()}
        for t, v in values.items():
            self._loss_sum[t] += v
        self._loss_n += 1
        self._step_metrics = {"loss": sum(values.values()), "losses": values}
        return losses, self._step_metrics

    def backward(self, loss: dict[str, torch.Tensor]) -> None:
        self._last_weights = self.balancer.backward(loss, self.groups)
        self._step_metrics["weights"] = self._last_weights

    def clip_groups(self) -> list[list[Any]]:
        return [[p for p in self.model.parameters() if p.requires_grad]]

    def training_step(self) -> dict[str, Any]:
        """One optimisation step; returns its losses and weights."""
        return {"step": self.step, **self.kernel.step()}

    # -- evaluation -----------------------------------------------------------------------
    def _predict_splits(self, splits: Sequence[str], tasks: Sequence[MTLTask] | None = None
                        ) -> dict[str, dict[str, np.ndarray]]:
        """Predictions of every task on ``splits``, each distinct text encoded once."""
        tasks = list(tasks or self.tasks)
        unique: dict[Pair, int] = {}
        for t in tasks:
            for split in splits:
                for p in _pairs(getattr(t, split)):
                    unique.setdefault(p, len(unique))
        preds = self.model.predict(list(unique), batch_size=self.config.eval_batch_size)
        out: dict[str, dict[str, np.ndarray]] = {}
        for split in splits:
            out[split] = {}
            for t in tasks:
                rows = [unique[p] for p in _pairs(getattr(t, split))]
                out[split][t.name] = preds[t.name][rows]
        return out

    def evaluate_splits(self, splits: Sequence[str] | None = None) -> dict[str, Any]:
        """Metrics of every task per split: ``{"val": {task: metrics}, "test": ...}``.

        Args:
            splits: default ``["val"]`` (plus ``"test"`` with ``test_every_eval``).
        """
        if splits is None:
            splits = ["val"] + (["test"] if self.config.test_every_eval else [])
        splits = [s for s in splits if all(getattr(t, s) for t in self.tasks)]
        preds = self._predict_splits(splits)
        result: dict[str, Any] = {}
        for split in splits:
            result[split] = {}
            for t in self.tasks:
                result[split][t.name] = self._metrics(t, preds[split][t.name], getattr(t, split))
        return result

    # -- convergence and the KD switch ----------------------------------------------------
    def _snapshot_keys(self, task: str) -> list[str]:
        return [n for n, p in self.model.named_parameters()
                if p.requires_grad and (n.startswith("shared.") or n.startswith(f"heads.{task}."))]

    def _take_snapshot(self, task: str) -> dict[str, torch.Tensor]:
        params = dict(self.model.named_parameters())
        return {n: params[n].detach().clone() for n in self._snapshot_keys(task)}

    def _load_params(self, values: dict[str, torch.Tensor]) -> None:
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for n, v in values.items():
                params[n].copy_(v)

    def teacher_predictions(self, task: str) -> torch.Tensor:
        """Soft labels of ``task``'s training set from its BEST snapshot (weights restored after).

        Raises:
            SelectSearchError: the task has no best snapshot yet.
        """
        if task not in self.snapshots:
            raise SelectSearchError(f"task {task!r} has no best snapshot yet; evaluate first")
        current = self._take_snapshot(task)
        self._load_params(self.snapshots[task])
        try:
            pairs = _pairs(self.by_name[task].train)
            was = self.model.training
            self.model.eval()
            chunks = []
            with torch.no_grad():
                for i in range(0, len(pairs), self.config.eval_batch_size):
                    out = self.model(pairs[i : i + self.config.eval_batch_size], [task])[task]
                    chunks.append(soft_targets(self.by_name[task].kind, out))
            self.model.train(was)
        finally:
            self._load_params(current)
        return torch.cat(chunks).float()

    def switch_to_distillation(self, task: str) -> None:
        """Store the best snapshot's soft labels for ``task`` and switch its loss to KD."""
        self.soft_labels[task] = self.teacher_predictions(task)
        tracker = self.trackers[task]
        self._emit({"event": "switch", "task": task, "step": self.step,
                    "teacher_step": tracker.best_step, "teacher_val": tracker.best_value,
                    "n_soft_labels": int(self.soft_labels[task].shape[0])})

    def _emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        logger.info("event %s", event)
        self.kernel.emit(event)

    def observe_validation(self, step: int, scores: dict[str, float]) -> list[str]:
        """Update trackers and best snapshots with one evaluation's scores; switch tasks.

        Returns:
            The tasks declared converged at this evaluation.
        """
        converged = []
        for t, value in scores.items():
            tracker = self.trackers[t]
            if tracker.is_new_best(value):
                self.snapshots[t] = self._take_snapshot(t)
            if tracker.update(step, value):
                converged.append(t)
                self._emit({"event": "converged", "task": t, "step": step,
                            "best_step": tracker.best_step, "best_val": tracker.best_value,
                            "patience": tracker.patience, "min_delta": tracker.min_delta})
                if self.config.method == "async-kd" and t not in self.soft_labels:
                    self.switch_to_distillation(t)
        return converged

    def evaluate(self, state: TrainState) -> dict[str, Any]:
        """The evaluation record: validation (and test) metrics, mean training losses since the
        last evaluation, the balancer's weights, the learning rate, which tasks are distilled."""
        metrics = (self.evaluate_fn or MultiTaskTrainer.evaluate_splits)(self)
        val_scores = {t: float(m["score"]) for t, m in metrics["val"].items()}
        mean_losses = {t: self._loss_sum[t] / max(1, self._loss_n) for t in self._loss_sum}
        record: dict[str, Any] = {
            "step": self.step,
            "epochs": {t: round(v, 4) for t, v in self.sampler.epochs().items()},
            "train_loss": mean_losses,
            "weights": dict(self._last_weights),
            "lr": self.scheduler.get_last_lr()[0],
            "val": metrics["val"],
            "val_average": float(np.mean(list(val_scores.values()))),
            "distilled": sorted(self.soft_labels),
        }
        if "test" in metrics:
            record["test"] = metrics["test"]
            record["test_average"] = float(np.mean([m["score"] for m in metrics["test"].values()]))
        self.balancer.end_interval(mean_losses)
        self._loss_sum = {t: 0.0 for t in self._loss_sum}
        self._loss_n = 0
        return record

    def after_evaluate(self, state: TrainState, record: dict[str, Any]) -> None:
        """Convergence checks and the KD switch (after the callbacks logged the evaluation)."""
        self.observe_validation(self.step, {t: float(m["score"]) for t, m in record["val"].items()})

    # -- the loop -------------------------------------------------------------------------
    def on_train_begin(self, state: TrainState) -> None:
        self._precompute()
        state.run = {"config": asdict(self.config),
                     "tasks": {t.name: {"train": len(t.train), "val": len(t.val), "test": len(t.test)}
                               for t in self.tasks}}

    def on_train_end(self, state: TrainState) -> None:
        if self.step >= self.config.max_steps and self.history:
            self.test_results = self.evaluate_test()
        state.summary = self.summary()

    def train(self, *, output_dir: str | os.PathLike[str] | None = None,
              until: int | None = None) -> dict[str, Any]:
        """Train from the current step to ``config.max_steps`` (or ``until``); return the summary.

        Args:
            output_dir: where checkpoints go (``checkpoint-<step>/``) when ``save_steps``.
            until: stop after this step (to test resuming); the summary covers what ran.
        """
        plan = None
        if output_dir is not None and self.config.save_steps > 0:
            plan = CheckpointPlan(Path(output_dir), per_step=True)
        self.kernel.checkpoints = plan
        return self.kernel.train(until=until).summary

    def evaluate_test(self) -> dict[str, dict[str, dict[str, float]]]:
        """Test metrics with the final weights and with each task's best snapshot.

        Returns:
            ``{"final": {task: metrics}, "best": {task: metrics}}`` (tasks without a test set
            are left out).
        """
        tasks = [t for t in self.tasks if t.test]
        out: dict[str, dict[str, dict[str, float]]] = {"final": {}, "best": {}}
        if not tasks:
            return out
        final = self._predict_splits(["test"], tasks)["test"]
        for t in tasks:
            out["final"][t.name] = self._metrics(t, final[t.name], t.test)
        for t in tasks:
            if t.name not in self.snapshots:
                continue
            current = self._take_snapshot(t.name)
            self._load_params(self.snapshots[t.name])
            try:
                pred = self.model.predict(_pairs(t.test), batch_size=self.config.eval_batch_size,
                                          tasks=[t.name])[t.name]
            finally:
                self._load_params(current)
            out["best"][t.name] = self._metrics(t, pred, t.test)
        return out

    @staticmethod
    def _metrics(task: MTLTask, pred: np.ndarray, examples: Sequence[Any]) -> dict[str, float]:
        p = pred.argmax(-1) if task.kind == "classification" else pred
        return compute_metrics(task.data, p, [e.label for e in examples])

    def _precompute(self) -> None:
        pairs: dict[Pair, None] = {}
        for t in self.tasks:
            for split in (t.train, t.val, t.test):
                pairs.update(dict.fromkeys(_pairs(split)))
        self.model.shared.precompute(list(pairs))

    def summary(self) -> dict[str, Any]:
        """Per task: metrics at the final checkpoint and at the task's own best validation point.

        ``final_*`` come from the last evaluation (and the final weights on test); ``best_*``
        from the evaluation where the task's validation score peaked (test measured with the
        task's best snapshot, i.e. the weights at that step). Averages over tasks.
        """
        if not self.history:
            return {"step": self.step, "tasks": {}, "average": {}, "events": self.events}
        last = self.history[-1]
        by_step = {r["step"]: r for r in self.history}
        per_task: dict[str, Any] = {}
        for t in self.tasks:
            tr = self.trackers[t.name]
            best = by_step.get(tr.best_step if tr.best_step is not None else -1, last)
            entry: dict[str, Any] = {
                "final_val": last["val"][t.name]["score"],
                "best_val": best["val"][t.name]["score"],
                "best_step": best["step"],
                "converged_step": tr.converged_step,
                "switched": t.name in self.soft_labels,
            }
            if t.name in self.test_results.get("final", {}):
                entry["final_test"] = self.test_results["final"][t.name]["score"]
                entry["final_test_metrics"] = self.test_results["final"][t.name]
            if t.name in self.test_results.get("best", {}):
                entry["best_test"] = self.test_results["best"][t.name]["score"]
                entry["best_test_metrics"] = self.test_results["best"][t.name]
            per_task[t.name] = entry
        keys = [k for k in ("final_val", "best_val", "final_test", "best_test")
                if all(k in e for e in per_task.values())]
        average = {k: float(np.mean([per_task[t][k] for t in per_task])) for k in keys}
        return {"step": self.step, "method": self.config.method, "seed": self.config.seed,
                "tasks": per_task, "average": average, "events": self.events}

    # -- checkpoints ----------------------------------------------------------------------
    def _trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}

    def checkpoint_tensors(self) -> dict[str, Any]:
        return {"model": self._trainable_state(), "balancer": self.balancer.state_dict(),
                "snapshots": self.snapshots, "soft_labels": self.soft_labels}

    def checkpoint_json(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "tasks": [t.name for t in self.tasks],
                "sampler": self.sampler.state_dict(),
                "trackers": {t: tr.state_dict() for t, tr in self.trackers.items()},
                "events": self.events, "loss_sum": self._loss_sum, "loss_n": self._loss_n,
                "last_weights": self._last_weights}

    def restore(self, tensors: dict[str, Any], data: dict[str, Any]) -> None:
        if data["tasks"] != [t.name for t in self.tasks]:
            raise SelectSearchError(f"checkpoint tasks {data['tasks']} differ from "
                                    f"{[t.name for t in self.tasks]}")
        if data["config"]["method"] != self.config.method:
            raise SelectSearchError(f"checkpoint method {data['config']['method']!r} differs "
                                    f"from {self.config.method!r}")
        self._load_params(tensors["model"])
        self.balancer.load_state_dict(tensors["balancer"])
        self.snapshots = tensors["snapshots"]
        self.soft_labels = tensors["soft_labels"]
        self.sampler.load_state_dict(data["sampler"])
        self.trackers = {t: ConvergenceTracker.from_state(s) for t, s in data["trackers"].items()}
        self.events = data["events"]
        self._loss_sum = {t: float(v) for t, v in data["loss_sum"].items()}
        self._loss_n = int(data["loss_n"])
        self._last_weights = data["last_weights"]

    def save_checkpoint(self, folder: str | os.PathLike[str]) -> Path:
        """Write everything needed to continue identically (atomic: see :mod:`selectsearch.train.checkpoint`)."""
        return self.kernel.save_checkpoint(folder)

    def load_checkpoint(self, folder: str | os.PathLike[str]) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint` (same tasks and method; tensors only).

        Raises:
            SelectSearchError: not a checkpoint, a newer format, or other tasks/method.
        """
        self.kernel.load_checkpoint(folder)
