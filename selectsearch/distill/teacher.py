"""Teachers: anything that gives embeddings and soft predictions for rows.

:class:`Teacher` is a structural protocol. :func:`teacher_from_classifier` adapts a
:class:`~selectsearch.models.text_classifier.TextClassifier` (fine-tuned or DynaMaR): the
embedding is the vector its linear head reads, the prediction is ``softmax(logits)`` (or the
regression value in label units). :class:`PrecomputedTeacher` holds outputs computed once, so
several students and seeds reuse one teacher pass.

Example:
    >>> import numpy as np
    >>> t = PrecomputedTeacher("classification", 2, None, [("a",), ("b",)],
    ...                        np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32))
    >>> t.embed_predict(["b"])[1].tolist()
    [[0.0, 1.0]]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

import numpy as np

from selectsearch.data.classification import Row, TextExample, as_rows
from selectsearch.encode import inference_autocast
from selectsearch.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.models.text_classifier import TextClassifier

__all__ = [
    "ClassifierTeacher",
    "PrecomputedTeacher",
    "Row",
    "RowLike",
    "Teacher",
    "as_rows",
    "teacher_from_classifier",
]

#: One input: a text, a ``(text_a, text_b)`` tuple, or a ``TextExample``.
RowLike = Union[TextExample, str, Sequence[str | None]]  # noqa: UP007


@runtime_checkable
class Teacher(Protocol):
    """What ReAugKD needs from a teacher.

    Attributes:
        task: ``"classification"`` (soft distributions over ``num_outputs`` classes, e.g.
            class probabilities or routing distributions over K shards) or ``"regression"``.
        num_outputs: C (1 for regression).
        encoder_dir: a transformers folder whose first ``layers`` layers make the default
            student (and whose tokenizer it uses), or ``None`` (then set
            ``DistillConfig.student_model``).
    """

    task: str
    num_outputs: int
    encoder_dir: str | None

    def embed_predict(self, rows: Sequence[RowLike]) -> tuple[np.ndarray, np.ndarray]:
        """``(n, d_teacher)`` float32 embeddings and ``(n, C)`` float32 soft predictions."""
        ...


class PrecomputedTeacher:
    """Teacher outputs computed once, looked up by row (optionally falling back to a teacher).

    Args:
        task, num_outputs, encoder_dir: as in :class:`Teacher`.
        rows: the rows the outputs belong to.
        embeddings: ``(n, d)`` teacher embeddings.
        predictions: ``(n, C)`` teacher soft predictions.
        fallback: a teacher asked for rows not stored (default: such rows raise).
    """

    def __init__(
        self,
        task: str,
        num_outputs: int,
        encoder_dir: str | None,
        rows: Sequence[RowLike],
        embeddings: np.ndarray,
        predictions: np.ndarray,
        *,
        fallback: Teacher | None = None,
    ) -> None:
        keys = as_rows(rows)
        if not len(keys) == len(embeddings) == len(predictions):
            raise ModelError(f"{len(keys)} rows, {len(embeddings)} embeddings and {len(predictions)} predictions")
        self.task = task
        self.num_outputs = int(num_outputs)
        self.encoder_dir = encoder_dir
        self.rows = keys
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.predictions = np.ascontiguousarray(predictions, dtype=np.float32).reshape(len(keys), -1)
        self.fallback = fallback
        self._index = {r: i for i, r in enumerate(keys)}

    @classmethod
    def from_teacher(cls, teacher: Teacher, rows: Sequence[RowLike]) -> PrecomputedTeacher:
        """Run ``teacher`` once over ``rows`` (duplicates computed once) and keep the outputs."""
        keys = list(dict.fromkeys(as_rows(rows)))
        emb, pred = teacher.embed_predict(keys)
        return cls(teacher.task, teacher.num_outputs, teacher.encoder_dir, keys, emb, pred)

    def embed_predict(self, rows: Sequence[RowLike]) -> tuple[np.ndarray, np.ndarray]:
        """Stored outputs of ``rows`` (missing rows go to ``fallback`` or raise)."""
        keys = as_rows(rows)
        idx = [self._index.get(r, -1) for r in keys]
        missing = [i for i, j in enumerate(idx) if j < 0]
        emb = np.zeros((len(keys), self.embeddings.shape[1]), dtype=np.float32)
        pred = np.zeros((len(keys), self.predictions.shape[1]), dtype=np.float32)
        found = [i for i, j in enumerate(idx) if j >= 0]
        if found:
            sel = np.array([idx[i] for i in found])
            emb[found] = self.embeddings[sel]
            pred[found] = self.predictions[sel]
        if missing:
            if self.fallback is None:
                raise ModelError(
                    f"{len(missing)} rows have no precomputed teacher output (first: "
                    f"{keys[missing[0]]!r}); precompute them or pass fallback="
                )
            e2, p2 = self.fallback.embed_predict([keys[i] for i in missing])
            emb[missing] = e2
            pred[missing] = p2
        return emb, pred

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write an ``.npz`` (rows, embeddings, predictions and the teacher's description)."""
        import json

        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        meta = {"task": self.task, "num_outputs": self.num_outputs, "encoder_dir": self.encoder_dir}
        tmp = final.with_name(final.name + ".partial.npz")
        np.savez(
            tmp,
            rows=np.array(json.dumps([list(r) for r in self.rows])),
            embeddings=self.embeddings,
            predictions=self.predictions,
            meta=np.array(json.dumps(meta)),
        )
        os.replace(tmp, final)
        return final

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, fallback: Teacher | None = None) -> PrecomputedTeacher:
        """Read a file written by :meth:`save`."""
        import json

        with np.load(Path(path)) as z:
            rows = [tuple(r) for r in json.loads(str(z["rows"]))]
            meta = json.loads(str(z["meta"]))
            return cls(
                meta["task"],
                meta["num_outputs"],
                meta["encoder_dir"],
                rows,
                z["embeddings"],
                z["predictions"],
                fallback=fallback,
            )


class ClassifierTeacher:
    """A :class:`TextClassifier` as a :class:`Teacher` (see :func:`teacher_from_classifier`)."""

    def __init__(self, model: TextClassifier, *, encoder_dir: str | None = None, batch_size: int = 64) -> None:
        self.model = model
        self.task = model.config.kind
        self.num_outputs = model.config.num_outputs
        self.encoder_dir: str | None = encoder_dir if encoder_dir is not None else model.config.encoder
        self.batch_size = batch_size

    def embed_predict(self, rows: Sequence[RowLike]) -> tuple[np.ndarray, np.ndarray]:
        """Head input (embedding) and ``softmax(logits)`` / regression value per row.

        DynaMaR models average embeddings and outputs over the template views used at
        inference (``config.inference``).
        """
        import torch

        clf = self.model
        keys = as_rows(rows)
        d = int(clf.model.head.in_features)
        if not keys:
            return np.zeros((0, d), np.float32), np.zeros((0, self.num_outputs), np.float32)
        views = [0] if clf.config.inference == "single" else list(range(clf.batcher.num_views))
        emb = np.zeros((len(keys), d), dtype=np.float32)
        out = np.zeros((len(keys), self.num_outputs), dtype=np.float32)
        captured: list[torch.Tensor] = []

        def hook(_module: Any, inputs: tuple[torch.Tensor, ...]) -> None:
            captured.append(inputs[0].detach())

        order = sorted(range(len(keys)), key=lambda i: sum(len(t or "") for t in keys[i]))
        clf.model.eval()
        handle = clf.model.head.register_forward_pre_hook(hook)
        try:
            with torch.inference_mode(), inference_autocast():
                for view in views:
                    for start in range(0, len(keys), self.batch_size):
                        idx = order[start : start + self.batch_size]
                        captured.clear()
                        batch = clf.batcher.batch([keys[i] for i in idx], view=view)
                        logits = clf.model(**batch).float()
                        emb[idx] += captured[-1].float().numpy()
                        if self.task == "regression":
                            res = logits.numpy() * clf.target_std + clf.target_mean
                        else:
                            res = torch.softmax(logits, dim=1).numpy()
                        out[idx] += res
        finally:
            handle.remove()
        return emb / len(views), out / len(views)


def teacher_from_classifier(
    model: TextClassifier, *, encoder_dir: str | os.PathLike[str] | None = None, batch_size: int = 64
) -> Teacher:
    """Adapt a trained :class:`TextClassifier` to the :class:`Teacher` protocol.

    Args:
        model: the teacher classifier or regressor.
        encoder_dir: the folder the default student truncates (default: the encoder the
            classifier was fine-tuned FROM, ``model.config.encoder`` — e.g. the packaged
            all-MiniLM-L6-v2; pass ``<teacher folder>/encoder`` to start the student from the
            fine-tuned teacher's layers instead).
        batch_size: rows per forward pass.

    Example:
        >>> teacher = teacher_from_classifier(TextClassifier.load("models/mrpc"))  # doctest: +SKIP
        >>> emb, probs = teacher.embed_predict([("a", "b")])  # doctest: +SKIP
    """
    return ClassifierTeacher(
        model, encoder_dir=None if encoder_dir is None else str(encoder_dir), batch_size=batch_size
    )
