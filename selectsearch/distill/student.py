"""The ReAugKD student: a small encoder + linear head, its knowledge base and its k/alpha.

A saved student is a self-describing folder::

    student/config.json      format, version, task, k, alpha, tau_kb, distill config, ... (last)
    student/encoder/         the student encoder and its tokenizer (transformers format)
    student/head.pt          the linear head's state dict
    student/projection.pt    the teacher-side projection W (kept for analysis; unused at inference)
    student/kb.faiss         the knowledge base: projected teacher embeddings (inner product)
    student/kb_labels.npy    the teacher soft predictions of the KB entries, (n, C)

Example:
    >>> student = ReAugKDStudent.load("models/mrpc-reaugkd")  # doctest: +SKIP
    >>> student.predict([("a sentence", "a paraphrase")]).shape  # doctest: +SKIP
    (1, 2)
    >>> student.predict(rows, retrieval=False)  # the student alone  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from selectsearch.distill.config import DistillConfig
from selectsearch.distill.kb import KnowledgeBase, mix
from selectsearch.distill.teacher import Row, RowLike, as_rows
from selectsearch.encode import inference_autocast
from selectsearch.errors import ModelError
from selectsearch.models.encoder import load_encoder
from selectsearch.models.folder import config_from_json, model_folder, read_model_manifest, write_model_manifest
from selectsearch.models.pooled import PlainBatcher, PooledModel

__all__ = ["FORMAT", "FORMAT_VERSION", "ReAugKDStudent", "StudentModel", "build_student_encoder"]

FORMAT = "selectsearch.reaugkd_student"
FORMAT_VERSION = 1


def _layer_list(encoder: Any) -> tuple[Any, str]:
    """The module list holding the transformer layers and the config attribute counting them."""
    for owner, attr, cfg in (("encoder", "layer", "num_hidden_layers"), ("transformer", "layer", "n_layers")):
        parent = getattr(encoder, owner, None)
        if parent is not None and isinstance(getattr(parent, attr, None), nn.ModuleList):
            return parent, cfg
    raise ModelError(
        f"cannot truncate a {type(encoder).__name__}: no encoder.layer/transformer.layer; "
        "pass a smaller local model as student_model with layers=0"
    )


def truncate_layers(encoder: Any, layers: int) -> Any:
    """Keep the first ``layers`` transformer layers of ``encoder`` (in place; 0 keeps all)."""
    parent, cfg_attr = _layer_list(encoder)
    total = len(parent.layer)
    if layers <= 0 or layers >= total:
        return encoder
    parent.layer = nn.ModuleList(list(parent.layer)[:layers])
    setattr(encoder.config, cfg_attr, layers)
    return encoder


def build_student_encoder(encoder_dir: str | None, config: DistillConfig) -> tuple[Any, Any]:
    """``(tokenizer, encoder)`` of the student: ``config.student_model`` or ``encoder_dir``,
    truncated to ``config.layers`` layers.

    Raises:
        ModelError: neither a student model nor a teacher encoder folder is known.
    """
    source = config.student_model or encoder_dir
    if source is None:
        raise ModelError(
            "the teacher has no encoder_dir to truncate; set DistillConfig.student_model "
            "(or --student-model) to a local transformers folder"
        )
    tokenizer, encoder = load_encoder(source)
    return tokenizer, truncate_layers(encoder, config.layers)


class StudentModel(PooledModel):
    """Encoder + pooling (``h_S``, whose size is the KB vectors') + dropout + linear head; also
    returns the normalised ``z_S``."""

    def forward(  # type: ignore[override]
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(head outputs (b, C), normalised z_S (b, d))``."""
        vec = self.pooled(input_ids, attention_mask)
        return self.head(self.dropout(vec)), nn.functional.normalize(vec, dim=1)


class ReAugKDStudent:
    """A trained student with its knowledge base. Build with :func:`~selectsearch.distill.distill`
    or :meth:`load`.

    Attributes:
        task: ``"classification"`` or ``"regression"``.
        num_outputs: C.
        k, alpha: neighbours and mixing weight chosen on dev (``alpha=1``: retrieval off).
        tau_kb: temperature of the neighbour weights.
        kb: the :class:`KnowledgeBase` (may be ``None`` for a student saved without one).
        extra: free-form metadata saved in ``config.json`` (dev selection table, timings...).
    """

    def __init__(
        self,
        model: StudentModel,
        tokenizer: Any,
        kb: KnowledgeBase | None,
        *,
        task: str,
        config: DistillConfig,
        k: int = 8,
        alpha: float = 1.0,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        projection: torch.Tensor | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.kb = kb
        self.task = task
        self.config = config
        self.num_outputs = int(model.head.out_features)
        self.k = int(k)
        self.alpha = float(alpha)
        self.tau_kb = config.tau_kb
        self.target_mean = float(target_mean)
        self.target_std = float(target_std)
        self.projection = projection
        self.extra = dict(extra or {})
        self.batcher = PlainBatcher(tokenizer, config.max_length)

    # -- inference -----------------------------------------------------------------------------
    def outputs(self, rows: Sequence[RowLike], *, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The student alone: ``(predictions (n, C), z_S (n, d))``; predictions are
        ``softmax(logits)`` for classification and values in label units for regression."""
        keys: list[Row] = as_rows(rows)
        bs = batch_size or self.config.eval_batch_size
        pred = np.zeros((len(keys), self.num_outputs), dtype=np.float32)
        emb = np.zeros((len(keys), self.model.hidden_size), dtype=np.float32)
        if not keys:
            return pred, emb
        order = sorted(range(len(keys)), key=lambda i: sum(len(t or "") for t in keys[i]))
        self.model.eval()
        with torch.inference_mode(), inference_autocast():
            for start in range(0, len(keys), bs):
                idx = order[start : start + bs]
                logits, z = self.model(**self.batcher.batch([keys[i] for i in idx]))
                pred[idx] = self._to_label_space(logits).numpy()
                emb[idx] = z.float().numpy()
        return pred, emb

    def _to_label_space(self, logits: torch.Tensor) -> torch.Tensor:
        if self.task == "regression":
            return logits.float() * self.target_std + self.target_mean
        return torch.softmax(logits.float(), dim=1)

    def embed(self, rows: Sequence[RowLike], *, batch_size: int | None = None) -> np.ndarray:
        """L2-normalised student embeddings ``z_S``: ``(n, d)`` float32."""
        return self.outputs(rows, batch_size=batch_size)[1]

    def predict(
        self,
        rows: Sequence[RowLike],
        *,
        retrieval: bool = True,
        k: int | None = None,
        alpha: float | None = None,
        exclude: Sequence[int] | np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """``(n, C)`` predictions: probabilities (classification) or values (regression).

        Args:
            rows: texts, ``(text_a, text_b)`` pairs or ``TextExample`` s.
            retrieval: mix in the KB neighbours' teacher predictions (``False``: student alone).
            k, alpha: override the values chosen on dev.
            exclude: one KB id per row to skip (the row's own id when scoring training rows).
            batch_size: rows per forward pass.
        """
        pred, emb = self.outputs(rows, batch_size=batch_size)
        a = self.alpha if alpha is None else float(alpha)
        if not retrieval or self.kb is None or a >= 1.0 or len(pred) == 0:
            return pred
        scores, ids = self.kb.search(emb, self.k if k is None else int(k), exclude=exclude)
        return mix(pred, self.kb.aggregate(scores, ids, tau=self.tau_kb), a)

    def decide(self, predictions: np.ndarray) -> np.ndarray:
        """Class indices (argmax) or the regression values ``(n,)``."""
        if self.task == "regression":
            return predictions[:, 0].astype(np.float32)
        return predictions.argmax(axis=1).astype(np.int64)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike[str], *, command: str | None = None, overwrite: bool = True) -> Path:
        """Write the student folder (built in ``<folder>.partial``, moved into place at the end).

        Raises:
            ModelError: ``folder`` exists and ``overwrite`` is false.
        """
        with model_folder(folder, overwrite=overwrite) as partial:
            self.model.encoder.save_pretrained(str(partial / "encoder"))
            self.tokenizer.save_pretrained(str(partial / "encoder"))
            torch.save(self.model.head.state_dict(), partial / "head.pt")
            if self.projection is not None:
                torch.save(self.projection.detach().cpu(), partial / "projection.pt")
            if self.kb is not None:
                self.kb.save(partial)
            manifest = {
                "task": self.task,
                "num_outputs": self.num_outputs,
                "k": self.k,
                "alpha": self.alpha,
                "tau_kb": self.tau_kb,
                "target_mean": self.target_mean,
                "target_std": self.target_std,
                "distill_config": asdict(self.config),
                "extra": self.extra,
            }
            write_model_manifest(partial, manifest, format=FORMAT, version=FORMAT_VERSION, command=command)
        return Path(folder)

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> ReAugKDStudent:
        """Load a folder written by :meth:`save`.

        Raises:
            ModelError: not a student folder, or written by a newer format version.
        """
        path = Path(folder)
        manifest = read_model_manifest(path, format=FORMAT, version=FORMAT_VERSION, what="ReAugKD student",
                                       hint="train one with `selectsearch distill`")
        config = config_from_json(DistillConfig, manifest["distill_config"])
        tokenizer, encoder = load_encoder(path / "encoder")
        model = StudentModel(encoder, int(manifest["num_outputs"]), pooling=config.pooling, dropout=config.dropout)
        model.head.load_state_dict(torch.load(path / "head.pt", map_location="cpu", weights_only=True))
        model.eval()
        kb = KnowledgeBase.load(path) if (path / "kb.faiss").exists() else None
        projection = None
        if (path / "projection.pt").exists():
            projection = torch.load(path / "projection.pt", map_location="cpu", weights_only=True)
        student = cls(
            model,
            tokenizer,
            kb,
            task=manifest["task"],
            config=config,
            k=int(manifest["k"]),
            alpha=float(manifest["alpha"]),
            target_mean=float(manifest.get("target_mean", 0.0)),
            target_std=float(manifest.get("target_std", 1.0)),
            projection=projection,
            extra=manifest.get("extra") or {},
        )
        student.tau_kb = float(manifest.get("tau_kb", config.tau_kb))
        return student
