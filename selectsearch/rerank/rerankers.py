"""Rerankers for :class:`selectsearch.search.SelectiveSearcher`: the cross-encoder teacher and its
ReAugKD student, loaded from their folders by :func:`load_reranker`.

Both score a (query, document) pair by its expected relevance grade
``sum_g g * P(g | query, doc)`` and order hits by score (ties as :mod:`selectsearch.ranking`). Each reranker keeps its
own running cost in :attr:`RerankStats` (queries, pairs, milliseconds); the searcher also
records every query's rerank time in ``trace.timings_ms["rerank"]``.

Example:
    >>> reranker = load_reranker("/work/models/hd-rerank-teacher")  # doctest: +SKIP
    >>> searcher = SelectiveSearcher.open("indexes/homedepot-mico16", "all", reranker=reranker,  # doctest: +SKIP
    ...                                   rerank_depth=100)
    >>> searcher.search("cordless drill", k=10)  # doctest: +SKIP
    >>> reranker.stats.ms_per_query  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.errors import ModelError
from selectsearch.locks import serialised
from selectsearch.ranking import sort_scored
from selectsearch.types import Hit

__all__ = ["CrossEncoderReranker", "DistilledReranker", "RerankStats", "expected_grade", "interpolate",
           "is_cross_encoder", "is_student", "load_cross_encoder", "load_reranker", "load_student", "reranker_kind"]

#: file written next to a student's own files, describing it as a reranker
STUDENT_SIDECAR = "reranker.json"


@dataclass
class RerankStats:
    """Running cost of a reranker."""

    queries: int = 0
    pairs: int = 0
    seconds: float = 0.0

    @property
    def ms_per_query(self) -> float:
        """Mean milliseconds per reranked query."""
        return 1000.0 * self.seconds / self.queries if self.queries else 0.0

    def to_json(self) -> dict[str, float]:
        """Counts and mean times."""
        return {"queries": self.queries, "pairs": self.pairs, "ms_per_query": self.ms_per_query,
                "ms_per_pair": 1000.0 * self.seconds / self.pairs if self.pairs else 0.0}


def expected_grade(outputs: np.ndarray, grades: Sequence[float], *, probabilities: bool = False) -> np.ndarray:
    """``(n,)`` expected grade of class outputs ``(n, C)`` (logits unless ``probabilities``).

    A single output column is a regression value and is returned as is.

    Example:
        >>> expected_grade(np.array([[0.0, 0.0, 0.0]]), [0, 1, 2]).round(3).tolist()
        [1.0]
    """
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim != 2:
        raise ModelError(f"expected (n, C) outputs, got shape {out.shape}")
    if out.shape[1] == 1:
        return out[:, 0].astype(np.float32)
    if not probabilities:
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    values = np.asarray(list(grades), dtype=np.float64)
    if len(values) != out.shape[1]:
        raise ModelError(f"{out.shape[1]} classes but {len(values)} grades")
    return (out @ values).astype(np.float32)


def interpolate(model_scores: np.ndarray, first_stage: np.ndarray, weight: float) -> np.ndarray:
    """``z(model) + weight * z(first stage)``: both standardised over the query's candidates
    (``weight = 0``: the model scores unchanged).

    Example:
        >>> interpolate(np.array([1.0, 0.0]), np.array([0.0, 10.0]), 2.0).tolist()
        [-1.0, 1.0]
    """
    model_scores = np.asarray(model_scores, dtype=np.float64)
    if weight == 0.0 or len(model_scores) < 2:
        return model_scores.astype(np.float32)

    def z(x: np.ndarray) -> np.ndarray:
        sd = float(x.std())
        return (x - x.mean()) / sd if sd > 0 else x - x.mean()

    return (z(model_scores) + weight * z(np.asarray(first_stage, dtype=np.float64))).astype(np.float32)


class _Timed(ABC):
    """A reranker: :meth:`scores` is the model; :meth:`rerank` times it and orders the hits."""

    name: str
    stats: RerankStats
    #: weight of the first-stage (BM25) score mixed into the model's (see :func:`interpolate`)
    first_stage_weight: float = 0.0

    @abstractmethod
    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Model score of each text for ``query`` (higher is better)."""

    @serialised  # one call at a time per reranker: the stats counters and models are shared state
    def rerank(self, query: str, hits: Sequence[Hit], texts: Sequence[str]) -> list[Hit]:
        """``hits`` re-scored by the model, best first (ties as :mod:`selectsearch.ranking`); the time is
        added to :attr:`stats`. Safe to call from several threads (calls on one reranker are serialised).

        With ``first_stage_weight > 0`` the new score is ``z(model) + w * z(hit.score)`` over the
        query's candidates (the hits' incoming scores are the first stage's, e.g. BM25).
        """
        if len(hits) != len(texts):
            raise ModelError(f"{len(hits)} hits but {len(texts)} texts")
        if not hits:
            return []
        t = time.perf_counter()
        new = self.scores(query, texts)
        if self.first_stage_weight:
            new = interpolate(new, np.array([h.score for h in hits]), self.first_stage_weight)
        rescored = [h._replace(score=float(s)) for h, s in zip(hits, new, strict=True)]
        out = sort_scored(rescored)
        self.stats.seconds += time.perf_counter() - t
        self.stats.queries += 1
        self.stats.pairs += len(hits)
        return out


class CrossEncoderReranker(_Timed):
    """Any pair :class:`~selectsearch.models.text_classifier.TextClassifier` as a reranker: the
    cross-encoder teacher, or a DynaMaR relevance model.

    Args:
        model: a trained pair classifier or regressor (``slots`` of two texts).
        name: label for reports.
        batch_size: pairs per forward pass.
        inference: DynaMaR models: ``"single"`` (first template) or ``"pool"`` (mean over the
            pool); default the model's own setting. Fine-tuned models have one view either way.
    """

    def __init__(self, model: Any, *, name: str = "cross-encoder", batch_size: int = 128,
                 inference: str | None = None) -> None:
        if len(model.config.slots) != 2:
            raise ModelError("a reranker needs a pair model (slots query/doc); this one takes a single text")
        if inference not in (None, "single", "pool"):
            raise ModelError(f"inference must be 'single' or 'pool', got {inference!r}")
        self.model = model
        self.name = name
        self.batch_size = batch_size
        self.inference = inference or model.config.inference
        info = model.extra.get("reranker", {})
        self.grades = [float(g) for g in info.get("grades", range(model.config.num_outputs))]
        self.stats = RerankStats()

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Expected relevance grade (or the regressed grade) of each text for ``query``; a DynaMaR
        model reads its first template (``inference="single"``) or the mean over its pool."""
        views = [0] if self.inference == "single" else None
        outs = self.model.view_outputs([(query, t) for t in texts], batch_size=self.batch_size,
                                       views=views).mean(axis=0)
        if self.model.config.kind == "regression":
            return np.asarray(outs[:, 0], dtype=np.float32)
        return expected_grade(outs, self.grades)


class DistilledReranker(_Timed):
    """A ReAugKD student of the cross-encoder (student encoder + KB of teacher predictions).

    Args:
        student: a :class:`selectsearch.distill.ReAugKDStudent` trained on (query, doc) pairs.
        grades: the grade of each output class (from the teacher).
        retrieval: mix in the KB neighbours' teacher predictions (``False``: the student alone).
        name: label for reports.
        batch_size: pairs per forward pass.
    """

    def __init__(self, student: Any, grades: Sequence[float], *, retrieval: bool = True,
                 name: str = "distilled-cross-encoder", batch_size: int = 128) -> None:
        self.student = student
        self.grades = [float(g) for g in grades]
        self.retrieval = retrieval
        self.name = name
        self.batch_size = batch_size
        self.stats = RerankStats()
        kb = student.kb
        self._use_kb = bool(retrieval and kb is not None and len(kb) and student.alpha < 1.0)
        # the KB vectors as one torch matrix: an exact inner-product top-k by matrix product and
        # torch.topk is several times faster here than the faiss flat index (generic faiss build,
        # no AVX2) or numpy's argpartition for 100 rows; in bf16 when the encoders run in bf16
        # (about 4x faster again; neighbours whose similarities tie within bf16 rounding may swap)
        self._kb_vectors: Any = None
        if self._use_kb:
            import torch

            from selectsearch.encode import encoder_precision

            self._kb_exact = torch.from_numpy(
                np.ascontiguousarray(kb.index.reconstruct_n(0, len(kb)), dtype=np.float32))
            self._kb_dtype = torch.bfloat16 if encoder_precision() == "bf16" else torch.float32
            self._kb_vectors = self._kb_exact.to(self._kb_dtype)

    def _retrieve(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` KB neighbours ``(scores, ids)`` of normalised student embeddings, best first."""
        import torch

        assert self._kb_vectors is not None
        k = max(1, min(int(self.student.k), len(self._kb_vectors)))
        with torch.inference_mode():
            queries = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))
            # top-k straight on the (rows, KB) product in its own dtype: converting that matrix
            # to float32 would cost as much as the product; the k winners are re-scored exactly
            _, ids = torch.topk(queries.to(self._kb_dtype) @ self._kb_vectors.T, k, dim=1)
            top = torch.einsum("nd,nkd->nk", queries, self._kb_exact[ids])
            top, order = torch.sort(top, dim=1, descending=True)
            ids = torch.gather(ids, 1, order)
        return top.numpy(), ids.numpy().astype(np.int64)

    def score_both(self, query: str, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Scores without and with KB retrieval from one forward pass, and the seconds each path
        costs (``(alone, mixed, alone_s, mixed_s)``; ``mixed_s`` includes the forward pass)."""
        from selectsearch.distill.kb import mix

        t0 = time.perf_counter()
        pred, emb = self.student.outputs([(query, t) for t in texts], batch_size=self.batch_size)
        alone = expected_grade(pred, self.grades, probabilities=True)
        t1 = time.perf_counter()
        if self._use_kb:
            scores, ids = self._retrieve(emb)
            pred = mix(pred, self.student.kb.aggregate(scores, ids, tau=self.student.tau_kb), self.student.alpha)
        mixed = expected_grade(pred, self.grades, probabilities=True)
        return alone, mixed, t1 - t0, time.perf_counter() - t0

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Expected relevance grade of each text for ``query`` (student, KB-augmented unless ``retrieval``
        is off or the chosen ``alpha`` is 1)."""
        if not self._use_kb:
            pred, _ = self.student.outputs([(query, t) for t in texts], batch_size=self.batch_size)
            return expected_grade(pred, self.grades, probabilities=True)
        return self.score_both(query, texts)[1]


def is_student(folder: Path) -> bool:
    """A ReAugKD student written by ``train-reranker --teacher`` (it has a reranker sidecar)."""
    return (folder / STUDENT_SIDECAR).is_file()


def is_cross_encoder(folder: Path) -> bool:
    """A pair :class:`~selectsearch.models.text_classifier.TextClassifier` folder (two text slots).

    Raises:
        ModelError: its ``config.json`` is not valid JSON.
    """
    config = folder / "config.json"
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{config} is not valid JSON ({exc}); re-train or re-copy the model") from exc
    from selectsearch.models.text_classifier import FORMAT

    return bool(data.get("format") == FORMAT and len(data.get("model_config", {}).get("slots", [])) == 2)


def load_cross_encoder(folder: Path, *, batch_size: int = 128) -> CrossEncoderReranker:
    """A cross-encoder folder (:func:`is_cross_encoder`) as a reranker."""
    from selectsearch.models.text_classifier import TextClassifier

    return CrossEncoderReranker(TextClassifier.load(folder), name=folder.name, batch_size=batch_size)


def load_student(folder: Path, *, retrieval: bool = True, batch_size: int = 128) -> DistilledReranker:
    """A distilled student folder (:func:`is_student`) as a reranker."""
    from selectsearch.distill import ReAugKDStudent

    info = json.loads((folder / STUDENT_SIDECAR).read_text())
    return DistilledReranker(ReAugKDStudent.load(folder), info["grades"], retrieval=retrieval, name=folder.name,
                             batch_size=batch_size)


def reranker_kind(path: str | os.PathLike[str]) -> str:
    """The registered reranker format of a folder: ``"student"`` or ``"cross-encoder"`` built in
    (the first format, in registration order, whose detector accepts it).

    Raises:
        ModelError: the folder holds none.
    """
    from selectsearch.registry import load_target
    from selectsearch.rerank.formats import RERANKERS

    folder = Path(path)
    for name in RERANKERS:
        entry = RERANKERS[name]
        detect = entry.meta.get("detect") or getattr(entry.load(), "detect", None)  # entry points: the loader's
        if detect is not None and load_target(detect)(folder):
            return name
    raise ModelError(f"{folder} is not a reranker: train one with `selectsearch train-reranker DATA --index INDEX "
                     "--out DIR` (cross-encoder) or add `--teacher DIR` (distilled student)")


def load_reranker(path: str | os.PathLike[str], *, retrieval: bool = True, batch_size: int = 128,
                  threads: int | None = None, first_stage_weight: float = 0.0, max_length: int | None = None
                  ) -> Any:
    """Load a reranker folder of any registered format (:mod:`selectsearch.rerank.formats`): a
    cross-encoder teacher or a distilled student built in.

    Args:
        path: a folder written by ``selectsearch train-reranker`` (with or without ``--teacher``).
        retrieval: students only: use the KB at inference (``False``: the student alone).
        batch_size: pairs per forward pass.
        threads: torch intra-op threads (``None``: leave torch's setting).
        first_stage_weight: mix the incoming (BM25) scores into the model's (:func:`interpolate`);
            0 ranks by the model alone.
        max_length: read at most this many tokens of each (query, document) pair (``None``: the
            length the model was trained with). A cost/quality knob: a transformer's time grows
            with the tokens it reads.

    Raises:
        ModelError: not a reranker folder (the message says how to make one) or ``max_length``
            below 8.

    Example:
        >>> reranker = load_reranker("/work/models/hd-rerank-student")  # doctest: +SKIP
        >>> reranker.rerank("cordless drill", hits, texts)[0]  # doctest: +SKIP
    """
    import torch

    from selectsearch.rerank.formats import RERANKERS

    if threads:
        torch.set_num_threads(threads)
    folder = Path(path)
    reranker = RERANKERS.build(reranker_kind(folder), {},
                               {"folder": folder, "retrieval": retrieval, "batch_size": batch_size})
    reranker.first_stage_weight = float(first_stage_weight)
    if max_length is not None:
        if max_length < 8:
            raise ModelError(f"max_length must be at least 8 tokens, got {max_length}")
        model = reranker.model if isinstance(reranker, CrossEncoderReranker) else reranker.student
        model.batcher.max_length = int(max_length)
    return reranker

