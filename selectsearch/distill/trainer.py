"""The ReAugKD trainer: projection (supervised contrastive), KB, student (KD + relational), k/alpha.

Example:
    >>> from selectsearch.distill import DistillConfig, distill, teacher_from_classifier
    >>> teacher = teacher_from_classifier(TextClassifier.load("models/mrpc"))  # doctest: +SKIP
    >>> student = distill(teacher, train_rows, dev_rows, train_labels=y_train, dev_labels=y_dev,
    ...                   config=DistillConfig(layers=2, epochs=3), out=Path("models/mrpc-l2"))  # doctest: +SKIP
    >>> student.k, student.alpha  # chosen on dev  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as nnf

from selectsearch.distill.config import DistillConfig
from selectsearch.distill.kb import KnowledgeBase, mix
from selectsearch.distill.losses import kd_loss, relational_loss, supcon_loss
from selectsearch.distill.student import ReAugKDStudent, StudentModel, build_student_encoder
from selectsearch.distill.teacher import RowLike, Teacher, as_rows
from selectsearch.errors import ModelError
from selectsearch.train.arguments import TrainingArguments
from selectsearch.train.callbacks import TrainerCallback, TrainState
from selectsearch.train.epochs import PermutationEpochs
from selectsearch.train.loop import Trainer, TrainingMethod
from selectsearch.train.optim import encoder_head_adamw
from selectsearch.train.schedule import lr_scheduler, seed_everything

__all__ = [
    "DistillTraining",
    "Metric",
    "ProjectionTraining",
    "contrastive_groups",
    "default_metric",
    "distill",
    "select_k_alpha",
    "train_projection",
]

log = logging.getLogger(__name__)

#: ``metric(mixed (n, C), dev_labels or None, teacher_dev (n, C)) -> float``, higher is better.
Metric = Callable[[np.ndarray, "np.ndarray | None", np.ndarray], float]


def default_metric(task: str) -> Metric:
    """The dev criterion for k/alpha: with gold labels accuracy (classification) or negative
    MSE (regression); without, agreement with the teacher: negative KL(teacher || mixed)
    (classification) or negative MSE to the teacher's values (regression)."""

    def metric(mixed: np.ndarray, labels: np.ndarray | None, teacher: np.ndarray) -> float:
        if task == "regression":
            target = teacher[:, 0] if labels is None else np.asarray(labels, dtype=np.float64)
            return -float(np.mean((mixed[:, 0] - target) ** 2))
        if labels is not None:
            return float(np.mean(mixed.argmax(axis=1) == np.asarray(labels)))
        t = np.clip(teacher.astype(np.float64), 1e-12, None)
        m = np.clip(mixed.astype(np.float64), 1e-12, None)
        return -float(np.mean(np.sum(t * (np.log(t) - np.log(m)), axis=1)))

    return metric


def contrastive_groups(task: str, labels: np.ndarray | None, teacher_pred: np.ndarray, bins: int) -> np.ndarray:
    """Integer groups that define supervised-contrastive positives.

    Classification: gold labels, else the teacher's argmax. Regression: quantile bins of the
    gold targets, else of the teacher's values.
    """
    if task == "classification":
        return np.asarray(labels, dtype=np.int64) if labels is not None else teacher_pred.argmax(axis=1)
    values = np.asarray(labels, dtype=np.float64) if labels is not None else teacher_pred[:, 0].astype(np.float64)
    edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, values, side="right").astype(np.int64)


class ProjectionTraining(PermutationEpochs):
    """Step 1 of ReAugKD for the training kernel: ``W`` alone, supervised contrastive loss.

    Each epoch is a seeded permutation cut into batches (a last batch of one row is left out:
    the loss needs pairs); each validation record holds the epoch's mean loss.
    """

    name = "reaugkd-projection"

    def __init__(self, teacher_emb: np.ndarray, groups: np.ndarray, dim: int, config: DistillConfig) -> None:
        self.h = torch.from_numpy(np.ascontiguousarray(teacher_emb, dtype=np.float32))
        self.y = torch.from_numpy(groups)
        self.tau = config.tau
        self.proj = nn.Linear(self.h.shape[1], dim, bias=False)
        self.optimizer = torch.optim.Adam(self.proj.parameters(), lr=config.projection_learning_rate)
        self.scheduler = lr_scheduler(self.optimizer, 0, 1, decay="constant")
        self.init_epochs(len(self.h), max(2, min(config.projection_batch_size, len(self.h))), config.seed,
                         min_batch=2)

    def compute_loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        loss = supcon_loss(nnf.normalize(self.proj(self.h[batch]), dim=1), self.y[batch], tau=self.tau)
        return loss, self.track(loss)


def train_projection(
    teacher_emb: np.ndarray, groups: np.ndarray, dim: int, config: DistillConfig
) -> tuple[torch.Tensor, list[float]]:
    """Step 1: train ``W`` (``(dim, d_T)``, no bias) alone with the supervised contrastive loss.

    Returns the weight and the mean loss per epoch.
    """
    method = ProjectionTraining(teacher_emb, groups, dim, config)
    if not method.starts:  # fewer than two rows: nothing to contrast
        return method.proj.weight.detach().clone(), [0.0] * config.projection_epochs
    total = config.projection_epochs * len(method.starts)
    args = TrainingArguments(max_steps=total, batch_size=method.batch_size,
                             learning_rate=config.projection_learning_rate, max_grad_norm=0.0, seed=config.seed)
    state = Trainer(method, args, total_steps=total).train()
    return method.proj.weight.detach().clone(), [float(r["loss"]) for r in state.history]


def project(weight: torch.Tensor, teacher_emb: np.ndarray) -> np.ndarray:
    """``z_T = normalize(W h_T)`` as float32 numpy."""
    with torch.no_grad():
        z = nnf.normalize(torch.from_numpy(np.ascontiguousarray(teacher_emb, dtype=np.float32)) @ weight.T, dim=1)
    return z.numpy()


def select_k_alpha(
    student_pred: np.ndarray,
    scores: np.ndarray,
    ids: np.ndarray,
    kb: KnowledgeBase,
    metric: Callable[[np.ndarray], float],
    config: DistillConfig,
) -> tuple[int, float, list[dict[str, float]]]:
    """Grid search over ``k_grid x alpha_grid`` on dev; ties keep the larger alpha, then smaller k.

    ``scores``/``ids`` are the dev rows' top-``max(k_grid)`` neighbours.
    """
    table: list[dict[str, float]] = []
    best: tuple[float, int, float] | None = None
    for alpha in sorted(config.alpha_grid, reverse=True):
        for k in sorted(config.k_grid):
            kk = min(k, ids.shape[1])
            mixed = mix(student_pred, kb.aggregate(scores[:, :kk], ids[:, :kk], tau=config.tau_kb), alpha)
            value = float(metric(mixed))
            table.append({"k": k, "alpha": alpha, "value": value})
            if best is None or value > best[0] + 1e-12:
                best = (value, k, alpha)
    assert best is not None
    return best[1], best[2], table


def _batches(rows: Sequence[tuple[str | None, ...]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches: shuffled, then sorted by length inside windows of 50 batches
    (less padding), batches shuffled again."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    window = batch_size * 50
    out: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: sum(len(t or "") for t in rows[i]))
        out.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(out)
    return out


def distill(
    teacher: Teacher,
    train: Sequence[RowLike],
    dev: Sequence[RowLike],
    *,
    train_labels: Sequence[float] | np.ndarray | None = None,
    dev_labels: Sequence[float] | np.ndarray | None = None,
    config: DistillConfig,
    out: str | os.PathLike[str] | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    metric: Metric | None = None,
    encoder: tuple[Any, Any] | None = None,
) -> ReAugKDStudent:
    """Distil ``teacher`` into a small student with a retrieval-augmented knowledge base.

    Args:
        teacher: any :class:`~selectsearch.distill.teacher.Teacher` (wrap repeated runs in a
            :class:`~selectsearch.distill.teacher.PrecomputedTeacher`).
        train: training rows; their teacher outputs form the KB.
        dev: rows on which ``k`` and ``alpha`` are chosen (never the test set).
        train_labels: gold class indices / targets of ``train`` (optional: positives of the
            contrastive loss and the ``ce_weight`` term); ``None``: teacher soft labels only.
        dev_labels: gold labels of ``dev``; ``None``: choose k/alpha against the teacher.
        config: the run's :class:`DistillConfig`.
        out: if given, the student folder is saved there.
        callbacks: :class:`~selectsearch.train.callbacks.TrainerCallback` s.
        metric: dev criterion (see :data:`Metric`); default :func:`default_metric`.
        encoder: ``(tokenizer, model)`` student encoder to use as is (tests); default:
            :func:`~selectsearch.distill.student.build_student_encoder`.

    Returns:
        The trained :class:`ReAugKDStudent` (``extra`` records losses, the dev table, timings).

    Raises:
        ModelError: empty train/dev, mismatched labels or teacher outputs.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    rows = as_rows(train)
    dev_rows = as_rows(dev)
    if not rows or not dev_rows:
        raise ModelError("distill needs training rows and dev rows (dev chooses k and alpha)")
    task, n_out = teacher.task, int(teacher.num_outputs)
    if task not in ("classification", "regression"):
        raise ModelError(f"teacher task must be classification or regression, got {task!r}")
    y_train = None if train_labels is None else np.asarray(train_labels)
    y_dev = None if dev_labels is None else np.asarray(dev_labels)
    if y_train is not None and len(y_train) != len(rows):
        raise ModelError(f"{len(rows)} training rows but {len(y_train)} labels")
    if y_dev is not None and len(y_dev) != len(dev_rows):
        raise ModelError(f"{len(dev_rows)} dev rows but {len(y_dev)} labels")
    if task == "classification" and y_train is not None and (y_train.min() < 0 or y_train.max() >= n_out):
        raise ModelError(f"training labels must be class indices in 0..{n_out - 1}")
    t0 = time.perf_counter()
    t_emb, t_pred = teacher.embed_predict(rows)
    _, d_pred = teacher.embed_predict(dev_rows)
    t_pred = np.asarray(t_pred, dtype=np.float32).reshape(len(rows), -1)
    d_pred = np.asarray(d_pred, dtype=np.float32).reshape(len(dev_rows), -1)
    if t_pred.shape[1] != n_out or len(t_emb) != len(rows):
        raise ModelError(f"teacher returned {t_emb.shape} / {t_pred.shape} for {len(rows)} rows, C={n_out}")
    teacher_s = time.perf_counter() - t0

    seed_everything(config.seed)
    tokenizer, enc = encoder if encoder is not None else build_student_encoder(teacher.encoder_dir, config)
    model = StudentModel(enc, n_out, pooling=config.pooling, dropout=config.dropout)

    # step 1: projection + KB
    t1 = time.perf_counter()
    groups = contrastive_groups(task, y_train, t_pred, config.regression_bins)
    weight, proj_losses = train_projection(t_emb, groups, model.hidden_size, config)
    z_t = project(weight, t_emb)
    kb = KnowledgeBase(z_t, t_pred)
    proj_s = time.perf_counter() - t1

    # step 2: student
    if task == "regression":
        mean = float(t_pred[:, 0].mean())
        std = float(t_pred[:, 0].std()) or 1.0
    else:
        mean, std = 0.0, 1.0
    student = ReAugKDStudent(
        model, tokenizer, kb, task=task, config=config, target_mean=mean, target_std=std, projection=weight
    )
    history = _train_student(student, rows, t_pred, z_t, y_train, config, callbacks)

    # step 3: k / alpha on dev
    t3 = time.perf_counter()
    s_pred, s_emb = student.outputs(dev_rows)
    scores, ids = kb.search(s_emb, max(config.k_grid))
    crit = metric or default_metric(task)
    k, alpha, table = select_k_alpha(s_pred, scores, ids, kb, lambda m: crit(m, y_dev, d_pred), config)
    student.k, student.alpha = k, alpha
    alone = next(r["value"] for r in table if r["alpha"] == max(config.alpha_grid))
    best = max(r["value"] for r in table)
    log.info("chose k=%d alpha=%.2f on dev (%.4f; student alone %.4f)", k, alpha, best, alone)
    student.extra.update(
        {
            "n_train": len(rows),
            "n_dev": len(dev_rows),
            "dev_selection": {"criterion": "gold" if y_dev is not None else "teacher", "table": table},
            "dev_best": best,
            "dev_student_alone": float(alone) if max(config.alpha_grid) == 1.0 else None,
            "projection_loss": proj_losses,
            "train_loss": history,
            "timings_s": {
                "teacher": teacher_s,
                "projection": proj_s,
                "student": history[-1]["elapsed_s"] if history else 0.0,
                "selection": time.perf_counter() - t3,
            },
        }
    )
    if out is not None:
        student.save(Path(out), command=" ".join(sys.argv))
    return student


class DistillTraining(TrainingMethod):
    """Step 2 of ReAugKD for the training kernel: the student's batches and its loss
    (distillation + relational + optional gold-label terms).

    Batches: one epoch of length-bucketed batches at a time (:func:`_batches`), popped from the end.
    """

    name = "reaugkd"

    def __init__(self, student: ReAugKDStudent, rows: list[tuple[str | None, ...]], t_pred: np.ndarray,
                 z_t: np.ndarray, labels: np.ndarray | None, config: DistillConfig, total_steps: int) -> None:
        self.student = student
        self.rows = rows
        self.config = config
        model = student.model
        self.optimizer = encoder_head_adamw(model, model.head, config)
        self.scheduler = lr_scheduler(self.optimizer, config.warmup_before_peak(total_steps), total_steps)
        self.rng = random.Random(config.seed)
        self.np_rng = np.random.default_rng(config.seed)
        self.tp = torch.from_numpy(t_pred)
        self.zt = torch.from_numpy(z_t)
        self.gold = None
        if labels is not None and config.ce_weight > 0:
            dtype = np.int64 if student.task == "classification" else np.float32
            self.gold = torch.from_numpy(np.asarray(labels, dtype=dtype))
        self.queue: list[list[int]] = []
        self.seen = 0

    def on_train_begin(self, state: TrainState) -> None:
        self.student.model.train()

    def next_batch(self) -> list[int]:
        if not self.queue:
            self.queue = _batches(self.rows, self.config.batch_size, self.rng)
        idx = self.queue.pop()
        self.seen += len(idx)
        return idx

    def compute_loss(self, batch: list[int]) -> tuple[torch.Tensor, dict[str, Any]]:
        student, config, rows, zt = self.student, self.config, self.rows, self.zt
        logits, z_s = student.model(**student.batcher.batch([rows[i] for i in batch]))
        it = torch.tensor(batch)
        parts: dict[str, torch.Tensor] = {}
        if config.kd_weight > 0:
            if student.task == "regression":
                target = (self.tp[it, 0] - student.target_mean) / student.target_std
                parts["kd"] = config.kd_weight * nnf.mse_loss(logits[:, 0], target)
            else:
                parts["kd"] = config.kd_weight * kd_loss(logits, self.tp[it], temperature=config.temperature)
        if config.lambda_rel > 0:
            cols = zt[it]
            if config.rel_negatives > 0:
                extra = self.np_rng.choice(len(rows), size=min(config.rel_negatives, len(rows)), replace=False)
                extra = extra[~np.isin(extra, batch)]
                cols = torch.cat([cols, zt[torch.from_numpy(extra)]], dim=0)
            parts["rel"] = config.lambda_rel * relational_loss(z_s, zt[it], cols, tau_t=config.tau_t,
                                                               tau_s=config.tau_s)
        if self.gold is not None:
            if student.task == "regression":
                target = (self.gold[it] - student.target_mean) / student.target_std
                parts["ce"] = config.ce_weight * nnf.mse_loss(logits[:, 0], target)
            else:
                parts["ce"] = config.ce_weight * nnf.cross_entropy(logits, self.gold[it])
        if not parts:
            raise ModelError("every loss weight is zero (or ce_weight without labels): nothing to train")
        loss = torch.stack(list(parts.values())).sum()
        return loss, {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in parts.items()}}

    def clip_groups(self) -> list[list[Any]]:
        return [list(self.student.model.parameters())]

    def epoch(self) -> float:
        return self.seen / len(self.rows)

    def on_train_end(self, state: TrainState) -> None:
        self.student.model.eval()


class _LossHistory(TrainerCallback):
    """About 20 loss records over the run (the student's ``extra["train_loss"]``)."""

    def __init__(self) -> None:
        self.records: list[dict[str, float]] = []

    def on_step_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        if state.step % max(1, state.max_steps // 20) == 0 or state.step == state.max_steps:
            self.records.append({"step": state.step, **metrics, "elapsed_s": state.elapsed_s})


def _train_student(
    student: ReAugKDStudent,
    rows: list[tuple[str | None, ...]],
    t_pred: np.ndarray,
    z_t: np.ndarray,
    labels: np.ndarray | None,
    config: DistillConfig,
    callbacks: Sequence[TrainerCallback],
) -> list[dict[str, float]]:
    steps = config.total_steps(math.ceil(len(rows) / config.batch_size))
    method = DistillTraining(student, rows, t_pred, z_t, labels, config, steps)
    history = _LossHistory()
    state = Trainer(method, config, total_steps=steps, callbacks=[history, *callbacks]).train()
    log.info("trained the student for %d steps in %.1fs (last loss %.4f)", state.step, state.elapsed_s, state.loss)
    return history.records
