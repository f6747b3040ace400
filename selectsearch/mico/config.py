"""The MICO training configuration: a frozen dataclass recorded in the saved model's config.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selectsearch.errors import ModelError
from selectsearch.models.encoder import DEFAULT_ENCODER
from selectsearch.train.arguments import TrainingArguments, accepts_old_names, arguments_from_dict

__all__ = ["MODES", "MicoConfig"]

#: training modes: ``frozen`` trains the heads on cached embeddings; ``full`` fine-tunes the encoder too
MODES = ("frozen", "full")


@accepts_old_names
@dataclass(frozen=True)
class MicoConfig(TrainingArguments):
    """Hyper-parameters of a MICO run.

    Defaults differ from the reference recipe where measurements said so (validation AUC of
    frozen mode on Home Depot, ``eval/results/mico/README.md``): heads start at k-means centroids,
    head learning rate 1e-2 instead of 2e-4, warm-up 50 steps instead of 1000, entropy weight
    beta 2 instead of 5 (beta 5 gave slightly more balanced but less predictable clusters).

    Args:
        n_clusters: K, the number of shards.
        mode: ``frozen`` (heads on cached embeddings, fast) or ``full`` (fine-tune the encoder).
        encoder: ``all-MiniLM-L6-v2`` (packaged) or a local transformers folder.
        max_length: tokens per text.
        beta: entropy weight of ``L = H(p, q) - beta * CE(pbar, r)`` (reference: 5; default 2).
        head_learning_rate: Adam learning rate of both heads (reference 2e-4; larger helps small logs).
        learning_rate: Adam learning rate of the encoder in ``full`` mode (reference 5e-6).
        marginal_learning_rate: learning rate of the inner Adam step that fits ``r`` (reference 0.1).
        warmup_steps: linear warm-up of the main optimiser, then constant (reference 1000); the
            step that reaches the full rate counts as a warm-up step.
        max_grad_norm: gradient-norm clipping of heads and encoder, each on its own (reference 1.0).
        batch_size: log pairs per step (reference 64).
        epochs: passes over the training pairs.
        max_steps: stop after this many steps (0: no limit) — bounds ``full`` runs on CPU.
        init: ``kmeans`` (both heads start at spherical k-means centroids of the corpus
            embeddings), ``random``, or ``model`` (both heads and the marginal start from the
            trained MICO model in ``init_model`` — e.g. a frozen-mode model warm-starting a
            ``full`` run, so that the encoder fine-tunes around heads that already route well).
        init_model: the MICO model folder of ``init="model"`` (same K; its encoder must be the
            one this run starts from).
        init_scale: logit scale of centroid-initialised heads (``W = scale * centroids``); 0
            picks it from the data (:func:`~selectsearch.mico.heads.auto_scale`).
        val_fraction: fraction of the logged queries held out for validation AUC.
        val_split: how they are held out: ``random`` (by query, seeded; the default, so that
            models trained before it existed and the committed results reproduce) or ``topics``
            (whole topic clusters of the query embeddings, :func:`~selectsearch.mico.logs.split_by_topic`):
            model selection then prefers heads that generalise to kinds of queries the logs do
            not show, and ``tune-route --validation topics`` on the index draws the same split.
        val_topics: topic clusters of the ``topics`` split (0: :func:`~selectsearch.mico.logs.topic_count`).
        eval_steps: validate every N steps (0: once per epoch).
        patience: stop after this many validations without a better AUC (0: never).
        seed: seeds the split, the shuffling, k-means and the head initialisation.
        threads: torch threads.
        kmeans_sample: documents used to fit the k-means initialisation.
        size_sample: corpus documents whose assignment estimates shard sizes in ``full`` mode
            validation (``frozen`` mode assigns the whole corpus).

    The names are :class:`~selectsearch.train.arguments.TrainingArguments`' (older configs with
    ``head_lr``, ``encoder_lr``, ``clip``, ``eval_every`` still load); MICO's Adam optimisers use
    no weight decay, so ``weight_decay`` is 0 and unused.
    """

    n_clusters: int = 16
    mode: str = "frozen"
    encoder: str = DEFAULT_ENCODER
    max_length: int = 256
    beta: float = 2.0
    head_learning_rate: float = 1e-2
    learning_rate: float = 5e-6
    marginal_learning_rate: float = 0.1
    warmup_steps: int = 50
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 20
    max_steps: int = 0
    init: str = "kmeans"
    init_model: str = ""
    init_scale: float = 0.0
    val_fraction: float = 0.1
    val_split: str = "random"
    val_topics: int = 0
    patience: int = 3
    seed: int = 0
    threads: int = 1
    kmeans_sample: int = 100_000
    size_sample: int = 2048

    def __post_init__(self) -> None:
        if self.n_clusters < 2:
            raise ModelError(f"MICO needs at least 2 clusters (got {self.n_clusters}); pass --shards K with K >= 2")
        if self.mode not in MODES:
            raise ModelError(f"unknown MICO mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.init not in ("kmeans", "random", "model"):
            raise ModelError(f"unknown head initialisation {self.init!r}; choose kmeans, random or model")
        if (self.init == "model") != bool(self.init_model):
            raise ModelError("init='model' and init_model go together: pass --init-model DIR (a trained MICO model)")
        if not 0.0 < self.val_fraction < 1.0:
            raise ModelError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.val_split not in ("random", "topics"):
            raise ModelError(f"unknown validation split {self.val_split!r}; choose random or topics")
        if self.val_topics < 0 or self.val_topics == 1:
            raise ModelError(f"val_topics must be 0 (automatic) or at least 2, got {self.val_topics}")
        if self.batch_size < 2:
            raise ModelError(f"batch_size must be at least 2 (the batch marginal needs it), got {self.batch_size}")

    def warmup_before_peak(self, total_steps: int) -> int:
        """MICO counts the step that reaches the full rate as a warm-up step (as it always has)."""
        return max(1, self.warmup_steps) - 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MicoConfig:
        """Inverse of :meth:`to_dict`: old names read as new ones, unknown keys ignored."""
        return arguments_from_dict(cls, data)
