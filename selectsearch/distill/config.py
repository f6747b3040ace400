"""The frozen configuration of a ReAugKD run (recorded in the student's ``config.json``)."""

from __future__ import annotations

from dataclasses import dataclass

from selectsearch.errors import ModelError
from selectsearch.train.arguments import TrainingArguments, accepts_old_names

__all__ = ["DistillConfig"]


@accepts_old_names
@dataclass(frozen=True)
class DistillConfig(TrainingArguments):
    """Everything that defines a distillation run.

    One config expresses every variant of the GLUE comparison: the student trained alone
    (``kd_weight=0, lambda_rel=0, ce_weight=1``), vanilla KD (``lambda_rel=0``) and ReAugKD
    (defaults). Retrieval at inference is a switch of :meth:`ReAugKDStudent.predict`.

    Attributes:
        layers: the default student keeps the first ``layers`` transformer layers of the
            teacher's ``encoder_dir``.
        student_model: a local transformers folder (or ``"all-MiniLM-L6-v2"``) used as the
            student instead; ``layers`` then truncates it too when it is smaller than its depth
            (``layers=0`` keeps all of its layers).
        max_length: maximum tokens per input (pairs share it), special tokens included.
        pooling: ``"mean"`` or ``"cls"`` pooling of the student's last layer (``h_S``).
        dropout: dropout before the student's linear head.
        epochs: passes over the training rows (fractions allowed).
        learning_rate: student encoder learning rate (AdamW, linear warm-up then linear decay).
        head_learning_rate: learning rate of the freshly initialised head.
        batch_size: training examples per step (also the in-batch set of ``L_rel``).
        weight_decay: AdamW weight decay (not on biases and LayerNorm).
        warmup_ratio: fraction of the steps for linear warm-up.
        max_grad_norm: gradient clipping.
        temperature: T of the distillation loss (Hinton: ``T^2 KL(p_T^T || p_S^T)``).
        kd_weight: weight of the distillation loss.
        lambda_rel: weight of the relational loss ``L_rel``.
        ce_weight: weight of the gold-label loss (cross-entropy, or MSE for regression);
            ignored without gold labels.
        rel_negatives: KB entries sampled per step and added to the columns of ``L_rel``.
        tau: temperature of the supervised contrastive loss that trains the projection.
        tau_t: temperature of the teacher-side similarities ``q`` in ``L_rel``.
        tau_s: temperature of the student-side similarities ``p`` in ``L_rel``.
        tau_kb: temperature of the neighbour weights ``w = softmax(s / tau_kb)`` at inference.
        projection_epochs: epochs of projection training (on cached teacher embeddings: cheap).
        projection_learning_rate: Adam learning rate of the projection.
        projection_batch_size: batch size of projection training.
        regression_bins: quantile bins that define supervised-contrastive positives for
            regression targets.
        k_grid: candidate numbers of neighbours.
        alpha_grid: candidate weights of the student's own prediction (1 = no retrieval).
        eval_batch_size: batch size for embedding and prediction.
        seed: seeds torch, numpy and Python's RNG.
        threads: torch threads (``None``: leave torch's setting alone).

    The training settings shared with every trainer are
    :class:`~selectsearch.train.arguments.TrainingArguments`; earlier names (``lr``,
    ``head_lr``, ``proj_lr`` ...) are still accepted.
    """

    layers: int = 2
    student_model: str | None = None
    max_length: int = 128
    pooling: str = "mean"
    dropout: float = 0.1
    epochs: float = 3.0
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-3
    batch_size: int = 32
    temperature: float = 2.0
    kd_weight: float = 1.0
    lambda_rel: float = 1.0
    ce_weight: float = 0.0
    rel_negatives: int = 64
    tau: float = 0.1
    tau_t: float = 0.1
    tau_s: float = 0.1
    tau_kb: float = 0.1
    projection_epochs: int = 30
    projection_learning_rate: float = 1e-3
    projection_batch_size: int = 256
    regression_bins: int = 5
    k_grid: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    alpha_grid: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.layers < 0:
            raise ModelError(f"layers must be >= 0, got {self.layers}")
        if self.pooling not in ("mean", "cls"):
            raise ModelError(f"unknown pooling {self.pooling!r}; use mean or cls")
        if self.epochs <= 0 or self.batch_size < 1:
            raise ModelError("epochs must be > 0 and batch_size >= 1")
        if min(self.temperature, self.tau, self.tau_t, self.tau_s, self.tau_kb) <= 0:
            raise ModelError("temperatures (temperature, tau, tau_t, tau_s, tau_kb) must be > 0")
        if not self.k_grid or min(self.k_grid) < 1:
            raise ModelError(f"k_grid must hold positive integers, got {self.k_grid}")
        if not self.alpha_grid or any(not 0.0 <= a <= 1.0 for a in self.alpha_grid):
            raise ModelError(f"alpha_grid values must lie in [0, 1], got {self.alpha_grid}")
        if min(self.kd_weight, self.lambda_rel, self.ce_weight) < 0:
            raise ModelError("loss weights (kd_weight, lambda_rel, ce_weight) must be >= 0")
        if self.regression_bins < 2:
            raise ModelError("regression_bins must be >= 2")
