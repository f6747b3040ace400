"""The multi-task trainer: shared encoder, one head per task, async-KD and the baselines.

One training step draws a mixed batch (:mod:`selectsearch.mtl.sampling`), runs the shared
encoder once, computes each task's loss on its slice and hands the losses to the method's
balancer (:mod:`selectsearch.mtl.balancing`). Every ``eval_every`` steps all tasks are evaluated
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
    >>> trainer = MultiTaskTrainer(model, tasks, TrainConfig(method="async-kd", steps=600))  # doctest: +SKIP
    >>> summary = trainer.train()  # doctest: +SKIP
    >>> summary["average"]["final_test"], summary["average"]["best_test"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selectsearch.atomic import replace_dir
from selectsearch.data.classification import compute_metrics
from selectsearch.errors import SelectSearchError
from selectsearch.mtl.balancing import METHODS, ParamGroups, make_balancer
from selectsearch.mtl.convergence import ConvergenceTracker
from selectsearch.mtl.losses import distillation_loss, soft_targets, supervised_loss
from selectsearch.mtl.model import HeadSpec, MultiTaskModel, Pair, SharedEncoder
from selectsearch.mtl.sampling import TaskSampler
from selectsearch.mtl.tasks import MTLTask

__all__ = [
    "CHECKPOINT_VERSION",
    "JsonLogCallback",
    "MultiTaskTrainer",
    "ProgressCallback",
    "TrainConfig",
    "TrainerCallback",
    "build_model",
]

logger = logging.getLogger(__name__)
CHECKPOINT_VERSION = 1
_CKPT_MANIFEST = "trainer_state.json"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run (recorded in logs, checkpoints and results).

    Attributes:
        method: one of ``async-kd equal uncertainty dwa gradnorm pcgrad``.
        steps: optimisation steps (each a mixed batch of ``batch_size`` examples).
        lr: learning rate of the shared encoder; ``head_lr`` of heads and balancer parameters.
        warmup: fraction of steps of linear warm-up; then ``schedule`` (linear decay/constant).
        eval_every: steps between validation evaluations and convergence checks. The test
            set is evaluated at the end: with the final weights and, per task, with the
            task's best snapshot (``test_every_eval`` also evaluates it at every evaluation).
        patience, min_delta, min_evals: convergence detection (metric points, x100 scale).
        sampling, temperature: task sampling scheme (``proportional temperature round-robin``).
        checkpoint_every: steps between checkpoints (0: none); ``keep_checkpoints`` newest kept.
    """

    method: str = "async-kd"
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    schedule: str = "linear"
    max_grad_norm: float = 1.0
    eval_every: int = 50
    eval_batch_size: int = 128
    test_every_eval: bool = False
    patience: int = 3
    min_delta: float = 0.0
    min_evals: int = 0
    sampling: str = "proportional"
    temperature: float = 2.0
    seed: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 1
    dwa_temperature: float = 2.0
    gradnorm_alpha: float = 1.5
    gradnorm_lr: float = 0.025

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SelectSearchError(f"unknown method {self.method!r}; choose one of "
                                    f"{', '.join(METHODS)}")
        if self.schedule not in ("linear", "constant"):
            raise SelectSearchError(f"schedule must be linear or constant, got {self.schedule!r}")
        if self.steps < 1 or self.eval_every < 1:
            raise SelectSearchError("steps and eval_every must be >= 1")


class TrainerCallback:
    """Hooks called by :class:`MultiTaskTrainer` (all no-ops by default)."""

    def on_train_begin(self, trainer: MultiTaskTrainer) -> None:
        """Before the first step of :meth:`MultiTaskTrainer.train`."""

    def on_step_end(self, trainer: MultiTaskTrainer, logs: dict[str, Any]) -> None:
        """After each optimisation step (``logs``: step, losses, weights)."""

    def on_evaluate(self, trainer: MultiTaskTrainer, record: dict[str, Any]) -> None:
        """After each evaluation (``record`` is what goes into the JSON log)."""

    def on_event(self, trainer: MultiTaskTrainer, event: dict[str, Any]) -> None:
        """On a convergence / switch event."""

    def on_train_end(self, trainer: MultiTaskTrainer, summary: dict[str, Any]) -> None:
        """After the last step, with :meth:`MultiTaskTrainer.summary`."""


class JsonLogCallback(TrainerCallback):
    """Append evaluations and events to a JSON-lines file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _write(self, obj: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(obj) + "\n")

    def on_train_begin(self, trainer: MultiTaskTrainer) -> None:
        """Log the configuration."""
        self._write({"type": "config", "step": trainer.step, "config": asdict(trainer.config),
                     "tasks": {t.name: {"train": len(t.train), "val": len(t.val),
                                        "test": len(t.test)} for t in trainer.tasks}})

    def on_evaluate(self, trainer: MultiTaskTrainer, record: dict[str, Any]) -> None:
        """Log one evaluation."""
        self._write({"type": "eval", **record})

    def on_event(self, trainer: MultiTaskTrainer, event: dict[str, Any]) -> None:
        """Log one event."""
        self._write({"type": "event", **event})

    def on_train_end(self, trainer: MultiTaskTrainer, summary: dict[str, Any]) -> None:
        """Log the summary."""
        self._write({"type": "summary", **summary})


class ProgressCallback(TrainerCallback):
    """A tqdm progress bar over steps showing the latest mean validation score."""

    def __init__(self, disable: bool | None = None) -> None:
        self.disable = disable
        self.bar: Any = None

    def on_train_begin(self, trainer: MultiTaskTrainer) -> None:
        """Open the bar."""
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.config.steps, initial=trainer.step, desc=trainer.config.method,
                        unit="step", disable=self.disable)

    def on_step_end(self, trainer: MultiTaskTrainer, logs: dict[str, Any]) -> None:
        """Advance the bar."""
        if self.bar is not None:
            self.bar.update(1)

    def on_evaluate(self, trainer: MultiTaskTrainer, record: dict[str, Any]) -> None:
        """Show the mean validation score and how many tasks switched."""
        if self.bar is not None:
            self.bar.set_postfix(val=f"{record['val_average']:.2f}", kd=len(trainer.soft_labels))

    def on_train_end(self, trainer: MultiTaskTrainer, summary: dict[str, Any]) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()


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
    torch.manual_seed(seed)
    specs = [HeadSpec(t.name, t.kind, t.num_labels, tuple(t.data.label_names)) for t in tasks]
    return MultiTaskModel(shared, specs)


def _pairs(examples: Iterable[Any]) -> list[Pair]:
    return [(e.text_a, e.text_b) for e in examples]


class MultiTaskTrainer:
    """Train a :class:`MultiTaskModel` on several tasks with one of :data:`METHODS`.

    Args:
        model: the model (one head per task, names matching ``tasks``).
        tasks: prepared tasks with train / val / test splits.
        config: the run configuration.
        callbacks: :class:`TrainerCallback` instances, called in order.
        evaluate_fn: replaces :meth:`evaluate` (tests script metric sequences with it).
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
        self.callbacks = list(callbacks)
        self.evaluate_fn = evaluate_fn
        kinds = {t.name: t.kind for t in self.tasks}
        options: dict[str, Any] = {}
        if config.method == "dwa":
            options["temperature"] = config.dwa_temperature
        elif config.method == "gradnorm":
            options = {"alpha": config.gradnorm_alpha, "lr": config.gradnorm_lr}
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
            {"params": self.groups.shared, "lr": config.lr},
            {"params": head_params, "lr": config.head_lr},
        ]
        if self.balancer.parameters():
            param_groups.append({"params": self.balancer.parameters(), "lr": config.head_lr,
                                 "weight_decay": 0.0})
        self.optimizer = torch.optim.AdamW(param_groups, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.trackers = {t: ConvergenceTracker(config.patience, config.min_delta, config.min_evals)
                         for t in names}
        self.snapshots: dict[str, dict[str, torch.Tensor]] = {}
        self.soft_labels: dict[str, torch.Tensor] = {}
        self.events: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.step = 0
        self._loss_sum = {t: 0.0 for t in names}
        self._loss_n = 0
        self._last_weights: dict[str, float] = self.balancer.weights()
        self.test_results: dict[str, dict[str, dict[str, float]]] = {}
        torch.manual_seed(config.seed)

    # -- schedule -------------------------------------------------------------------------
    def _lr_factor(self, step: int) -> float:
        warm = max(1, round(self.config.warmup * self.config.steps))
        if step < warm:
            return (step + 1) / warm
        if self.config.schedule == "constant":
            return 1.0
        return max(0.0, (self.config.steps - step) / max(1, self.config.steps - warm))

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

    def training_step(self) -> dict[str, Any]:
        """One optimisation step; returns its losses and weights."""
        self.model.train()
        batch = self.sampler.next_batch()
        losses = self.compute_losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        weights = self.balancer.backward(losses, self.groups)
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad],
                                           self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        values = {t: float(v.detach()) for t, v in losses.items()}
        for t, v in values.items():
            self._loss_sum[t] += v
        self._loss_n += 1
        self._last_weights = weights
        return {"step": self.step, "losses": values, "weights": weights}

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

    def evaluate(self, splits: Sequence[str] | None = None) -> dict[str, Any]:
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
        for cb in self.callbacks:
            cb.on_event(self, event)

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

    def _evaluate_and_observe(self) -> dict[str, Any]:
        metrics = (self.evaluate_fn or MultiTaskTrainer.evaluate)(self)
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
        self.history.append(record)
        for cb in self.callbacks:
            cb.on_evaluate(self, record)
        self.observe_validation(self.step, val_scores)
        return record

    # -- the loop -------------------------------------------------------------------------
    def train(self, *, output_dir: str | os.PathLike[str] | None = None,
              until: int | None = None) -> dict[str, Any]:
        """Train from the current step to ``config.steps`` (or ``until``); return the summary.

        Args:
            output_dir: where checkpoints go (``checkpoint-<step>/``) when ``checkpoint_every``.
            until: stop after this step (to test resuming); the summary covers what ran.
        """
        self._precompute()
        for cb in self.callbacks:
            cb.on_train_begin(self)
        stop = min(self.config.steps, until if until is not None else self.config.steps)
        while self.step < stop:
            logs = self.training_step()
            for cb in self.callbacks:
                cb.on_step_end(self, logs)
            if self.step % self.config.eval_every == 0 or self.step == self.config.steps:
                self._evaluate_and_observe()
            every = self.config.checkpoint_every
            if output_dir is not None and every and (self.step % every == 0
                                                     or self.step == self.config.steps):
                self.save_checkpoint(Path(output_dir) / f"checkpoint-{self.step:06d}")
                self._prune_checkpoints(Path(output_dir))
        if self.step >= self.config.steps and self.history:
            self.test_results = self.evaluate_test()
        summary = self.summary()
        for cb in self.callbacks:
            cb.on_train_end(self, summary)
        return summary

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

    def save_checkpoint(self, folder: str | os.PathLike[str]) -> Path:
        """Write everything needed to continue identically; manifest last, atomic rename."""
        final = Path(folder)
        partial = final.with_name(final.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        state = {
            "model": self._trainable_state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "balancer": self.balancer.state_dict(),
            "snapshots": self.snapshots,
            "soft_labels": self.soft_labels,
            "torch_rng": torch.get_rng_state(),
        }
        torch.save(state, partial / "state.pt")
        manifest = {
            "format": "selectsearch-mtl-checkpoint", "format_version": CHECKPOINT_VERSION,
            "step": self.step, "config": asdict(self.config),
            "tasks": [t.name for t in self.tasks],
            "sampler": self.sampler.state_dict(),
            "trackers": {t: tr.state_dict() for t, tr in self.trackers.items()},
            "events": self.events, "history": self.history,
            "loss_sum": self._loss_sum, "loss_n": self._loss_n,
            "last_weights": self._last_weights,
        }
        (partial / _CKPT_MANIFEST).write_text(json.dumps(manifest) + "\n", encoding="utf-8")
        replace_dir(partial, final)  # the old folder is kept until the new one is in place
        return final

    def _prune_checkpoints(self, root: Path) -> None:
        ckpts = sorted(p for p in root.glob("checkpoint-*") if (p / _CKPT_MANIFEST).exists())
        for old in ckpts[: max(0, len(ckpts) - self.config.keep_checkpoints)]:
            shutil.rmtree(old)

    def load_checkpoint(self, folder: str | os.PathLike[str]) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint` (same tasks and method).

        Raises:
            SelectSearchError: missing manifest, newer format, or other tasks/method.
        """
        path = Path(folder)
        mpath = path / _CKPT_MANIFEST
        if not mpath.exists():
            raise SelectSearchError(f"{path} is not a checkpoint (no {_CKPT_MANIFEST})")
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        if int(manifest["format_version"]) > CHECKPOINT_VERSION:
            raise SelectSearchError(f"{path} was written by a newer selectsearch; upgrade")
        if manifest["tasks"] != [t.name for t in self.tasks]:
            raise SelectSearchError(f"checkpoint tasks {manifest['tasks']} differ from "
                                    f"{[t.name for t in self.tasks]}")
        if manifest["config"]["method"] != self.config.method:
            raise SelectSearchError(f"checkpoint method {manifest['config']['method']!r} differs "
                                    f"from {self.config.method!r}")
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
        self._load_params(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.balancer.load_state_dict(state["balancer"])
        self.snapshots = state["snapshots"]
        self.soft_labels = state["soft_labels"]
        torch.set_rng_state(state["torch_rng"])
        self.sampler.load_state_dict(manifest["sampler"])
        self.trackers = {t: ConvergenceTracker.from_state(s) for t, s in manifest["trackers"].items()}
        self.events = manifest["events"]
        self.history = manifest["history"]
        self._loss_sum = {t: float(v) for t, v in manifest["loss_sum"].items()}
        self._loss_n = int(manifest["loss_n"])
        self._last_weights = manifest["last_weights"]
        self.step = int(manifest["step"])
