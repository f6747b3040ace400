"""The knowledge base: projected teacher embeddings and teacher soft labels in a FAISS index.

Exact inner-product search (``IndexFlatIP``) over L2-normalised vectors, so scores are cosine
similarities. ``exclude`` drops a given KB id per query — pass the query's own id when the
queries are training rows, so an example never retrieves itself.

Example:
    >>> import numpy as np
    >>> kb = KnowledgeBase(np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32))
    >>> scores, ids = kb.search(np.eye(3, dtype=np.float32)[:1], 2, exclude=[0])
    >>> int(ids[0, 0]) != 0
    True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.errors import DependencyError, ModelError

__all__ = ["KnowledgeBase", "mix"]


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - part of the base install
        raise DependencyError("ReAugKD needs faiss: pip install faiss-cpu") from exc
    return faiss


class KnowledgeBase:
    """Teacher entries ``(z_T, yhat_T)`` searchable by inner product.

    Args:
        embeddings: ``(n, d)`` L2-normalised projected teacher embeddings.
        labels: ``(n, C)`` teacher soft predictions (probabilities, distributions or values).
    """

    def __init__(self, embeddings: np.ndarray, labels: np.ndarray, *, index: Any = None) -> None:
        labels = np.ascontiguousarray(labels, dtype=np.float32)
        if labels.ndim == 1:
            labels = labels[:, None]
        self.labels = labels
        if index is None:
            emb = np.ascontiguousarray(embeddings, dtype=np.float32)
            if emb.ndim != 2 or len(emb) != len(labels):
                raise ModelError(f"KB needs (n, d) embeddings for {len(labels)} labels, got {emb.shape}")
            index = _faiss().IndexFlatIP(emb.shape[1])
            index.add(emb)
        self.index = index

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        """Embedding size."""
        return int(self.index.d)

    def search(
        self, queries: np.ndarray, k: int, *, exclude: Sequence[int] | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(scores, ids)``, each ``(n, k)``, best first.

        Args:
            queries: ``(n, d)`` normalised student embeddings.
            k: neighbours per query (capped at the KB size, minus one when excluding).
            exclude: one KB id per query never to return (``-1``: none), e.g. the query's own
                id when scoring training rows.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ModelError(f"queries must be (n, {self.dim}), got {q.shape}")
        limit = len(self) - (1 if exclude is not None else 0)
        k = max(1, min(int(k), limit))
        if exclude is None:
            scores, ids = self.index.search(q, k)
            return scores, ids
        ex = np.asarray(exclude, dtype=np.int64)
        if ex.shape != (len(q),):
            raise ModelError(f"exclude needs one id per query ({len(q)}), got shape {ex.shape}")
        scores, ids = self.index.search(q, k + 1)
        keep = ids != ex[:, None]
        out_s = np.zeros((len(q), k), dtype=np.float32)
        out_i = np.zeros((len(q), k), dtype=np.int64)
        for r in range(len(q)):
            s, i = scores[r][keep[r]][:k], ids[r][keep[r]][:k]
            out_s[r], out_i[r] = s, i
        return out_s, out_i

    def aggregate(self, scores: np.ndarray, ids: np.ndarray, *, tau: float) -> np.ndarray:
        """``sum_j softmax(s / tau)_j * yhat_T[j]`` per query: ``(n, C)``."""
        s = scores.astype(np.float64) / tau
        w = np.exp(s - s.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        return np.einsum("nk,nkc->nc", w, self.labels[ids].astype(np.float64)).astype(np.float32)

    def save(self, folder: str | os.PathLike[str]) -> None:
        """Write ``kb.faiss`` and ``kb_labels.npy`` into ``folder``."""
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        _faiss().write_index(self.index, str(path / "kb.faiss"))
        np.save(path / "kb_labels.npy", self.labels)

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> KnowledgeBase:
        """Read what :meth:`save` wrote."""
        path = Path(folder)
        if not (path / "kb.faiss").exists():
            raise ModelError(f"{path} has no kb.faiss; it is not a ReAugKD student folder")
        index = _faiss().read_index(str(path / "kb.faiss"))
        return cls(np.zeros((0, 0), np.float32), np.load(path / "kb_labels.npy"), index=index)


def mix(student: np.ndarray, retrieved: np.ndarray, alpha: float) -> np.ndarray:
    """``alpha * yhat_S + (1 - alpha) * yhat_KB``."""
    return (alpha * student + (1.0 - alpha) * retrieved).astype(np.float32)
