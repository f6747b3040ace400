"""``distilled@m``: a ReAugKD student of the MICO router ranks the shards.

Teacher (:class:`MicoTeacher`): the MICO model's encoder gives the query embedding (mean pooled,
normalised — what its query head reads) and ``softmax`` of the query head's logits
``W_q f(x) + b_q`` is the soft prediction, a routing distribution over the K shards. The
knowledge base holds the logged training queries with those distributions. The student is the
first ``layers`` layers of the MICO encoder (default 2) with a K-way head, trained by
:func:`selectsearch.distill.distill`; at routing time its own distribution is mixed with the
distributions of its nearest logged queries (``k`` and ``alpha`` chosen on held-out logged
queries) and shards are ranked by the mix, ties by shard id, so routing is nested.

The student folder comes from the route option ``model=DIR`` or from ``INDEX/distilled-router``
(where ``selectsearch distill-router`` writes by default). ``retrieval=0`` routes with the
student alone.

Example:
    >>> from selectsearch.index.sharded import ShardedIndex  # doctest: +SKIP
    >>> index = ShardedIndex.open("indexes/homedepot-mico16")  # doctest: +SKIP
    >>> router = make_distilled_router(parse_route("distilled@2"), index)  # doctest: +SKIP
    >>> router.rank([Query("q1", "cordless drill")]).shape  # doctest: +SKIP
    (1, 16)
    >>> student = train_distilled_router("models/hd-mico16", logged_queries,  # doctest: +SKIP
    ...                                  out="indexes/hd/distilled-router")
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import ModelError, RouteSpecError
from selectsearch.registry import flag
from selectsearch.route.base import RouteSpec, ScoringRouter
from selectsearch.route.registry import ROUTERS
from selectsearch.types import Qrels, Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.distill import DistillConfig, ReAugKDStudent
    from selectsearch.index.sharded import ShardedIndex

__all__ = [
    "DEFAULT_FOLDER",
    "ROUTER_SIDECAR",
    "DistilledRouter",
    "MicoTeacher",
    "default_router_config",
    "make_distilled_router",
    "train_distilled_router",
]

log = logging.getLogger(__name__)

#: where ``distill-router`` writes the student inside an index folder, and where the router looks
DEFAULT_FOLDER = "distilled-router"
#: file next to the student's own files that marks it as a router
ROUTER_SIDECAR = "router.json"


def _text(row: Any) -> str:
    if isinstance(row, str):
        return row
    text = getattr(row, "text_a", None)
    if text is not None:
        return str(text)
    return str(row[0] or "")


class MicoTeacher:
    """A MICO query router as a ReAugKD :class:`~selectsearch.distill.Teacher`.

    ``embed_predict(rows)`` returns the MICO encoder's query embeddings ``(n, d)`` and
    ``softmax(W_q f(x) + b_q)`` ``(n, K)``. Only the encoder and the query head are loaded.

    Args:
        model_dir: a MICO model folder.
        batch_size: queries per forward pass.
    """

    task = "classification"

    def __init__(self, model_dir: str | os.PathLike[str], *, batch_size: int = 128) -> None:
        from selectsearch.mico.model import MicoModelFolder
        from selectsearch.models.encoder import DEFAULT_ENCODER

        self.folder = MicoModelFolder(model_dir)
        self.num_outputs = self.folder.n_clusters
        self.encoder_dir: str | None = self.folder.encoder_location() or DEFAULT_ENCODER
        self.scorer = self.folder.query_router()
        self.batch_size = batch_size

    def embed_predict(self, rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Teacher embeddings and routing distributions of query rows (texts or 1-tuples)."""
        texts = [_text(r) for r in rows]
        if not texts:
            return np.zeros((0, 1), np.float32), np.zeros((0, self.num_outputs), np.float32)
        encoder = self.scorer.text_encoder()
        encoder.batch_size = self.batch_size
        emb = encoder.encode(texts)
        logits = self.scorer.scores_from_embeddings(emb).astype(np.float64)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return emb.astype(np.float32), p.astype(np.float32)


def default_router_config(**overrides: Any) -> DistillConfig:
    """The :class:`~selectsearch.distill.DistillConfig` used for routers unless told otherwise:
    2 layers, queries of at most 32 tokens, 3 epochs, no gold labels (teacher distributions only)."""
    from selectsearch.distill import DistillConfig
    from selectsearch.train.arguments import new_names

    base: dict[str, Any] = {"layers": 2, "max_length": 32, "epochs": 3.0, "batch_size": 32, "learning_rate": 1e-4,
                            "eval_batch_size": 256, "k_grid": (1, 2, 4, 8, 16, 32)}
    base.update(new_names(overrides))
    return DistillConfig(**base)


def train_distilled_router(mico_model: str | os.PathLike[str], queries: Sequence[str], *,
                           config: DistillConfig | None = None, dev_fraction: float = 0.1, seed: int = 0,
                           out: str | os.PathLike[str] | None = None, callbacks: Sequence[Any] = (),
                           teacher: Any = None, encoder: tuple[Any, Any] | None = None,
                           extra: dict[str, Any] | None = None) -> ReAugKDStudent:
    """Distil the MICO router of ``mico_model`` into a small student (KB = logged ``queries``).

    Args:
        mico_model: the MICO model folder (teacher).
        queries: logged query texts (duplicates are dropped); a seeded ``dev_fraction`` of them
            is held out to choose ``k`` and ``alpha``, the rest form the KB and the training set.
        config: distillation settings (default :func:`default_router_config`).
        dev_fraction: share of the queries held out for the k/alpha choice.
        seed: seeds the split (the config's seed seeds training).
        out: if given, the student is saved there (with ``router.json``).
        callbacks: training callbacks (:class:`~selectsearch.train.callbacks.TrainerCallback`).
        teacher: a teacher to use instead of :class:`MicoTeacher` (tests, precomputed outputs).
        encoder: ``(tokenizer, model)`` student encoder (tests).
        extra: more fields for ``router.json``.

    Raises:
        ModelError: fewer than 2 distinct queries.
    """
    from selectsearch.distill import distill

    unique = list(dict.fromkeys(q.strip() for q in queries if q and q.strip()))
    if len(unique) < 2:
        raise ModelError("distilling a router needs at least 2 distinct logged queries")
    order = list(range(len(unique)))
    random.Random(seed).shuffle(order)
    n_dev = min(len(unique) - 1, max(1, round(dev_fraction * len(unique))))
    dev = [unique[i] for i in sorted(order[:n_dev])]
    train = [unique[i] for i in sorted(order[n_dev:])]
    teacher = teacher if teacher is not None else MicoTeacher(mico_model)
    cfg = config or default_router_config()
    student = distill(teacher, train, dev, config=cfg, callbacks=callbacks, encoder=encoder)
    student.extra["router"] = {"kind": "distilled-router", "n_shards": int(teacher.num_outputs),
                               "teacher": str(mico_model), "n_kb": len(train), "n_dev": len(dev),
                               **(extra or {})}
    if out is not None:
        save_router(student, out)
    return student


def save_router(student: ReAugKDStudent, out: str | os.PathLike[str]) -> Path:
    """Save a router student and its ``router.json`` (written last)."""
    folder = student.save(Path(out))
    info = dict(student.extra.get("router", {}))
    info.setdefault("n_shards", int(student.num_outputs))
    (folder / ROUTER_SIDECAR).write_text(json.dumps(info, indent=2) + "\n")
    return folder


class DistilledRouter(ScoringRouter):
    """Ranks shards by the student's (KB-mixed) routing distribution, ties by shard id.

    Args:
        model_dir: a folder written by :func:`train_distilled_router` / ``distill-router``.
        retrieval: mix in the nearest logged queries' teacher distributions (``False``: student alone).
        batch_size: queries per forward pass.
    """

    name = "distilled"

    def __init__(self, model_dir: str | os.PathLike[str], *, retrieval: bool = True, batch_size: int = 256) -> None:
        folder = Path(model_dir)
        if not (folder / ROUTER_SIDECAR).is_file():
            raise ModelError(f"{folder} is not a distilled router (no {ROUTER_SIDECAR}); make one with "
                             "`selectsearch distill-router DATA --logs train --index INDEX`")
        from selectsearch.distill import ReAugKDStudent

        self.path = folder
        self.info: dict[str, Any] = json.loads((folder / ROUTER_SIDECAR).read_text())
        self.student = ReAugKDStudent.load(folder)
        self.n_shards = int(self.student.num_outputs)
        self.retrieval = retrieval
        self.batch_size = batch_size

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        """``(n, K)`` routing distribution."""
        out: np.ndarray = self.student.predict([q.text for q in queries], retrieval=self.retrieval,
                                               batch_size=self.batch_size)
        return out


def make_distilled_router(spec: RouteSpec, index: ShardedIndex, *, qrels: Qrels | None = None, seed: int = 0,
                          model: str | os.PathLike[str] | None = None, retrieval: Any = True,
                          **options: Any) -> DistilledRouter:
    """The ``distilled`` router for ``index`` (factory called by :func:`selectsearch.route.make_router`).

    Options: ``model=DIR`` (default ``INDEX/distilled-router``), ``retrieval=0`` (student alone).

    Raises:
        RouteSpecError: no student, one that cannot be loaded, a shard count that differs from
            the index's, or an unknown option.
    """
    ROUTERS.check(spec.name, options)  # refuses what is left, naming the valid options
    folder = Path(model) if model is not None else index.path / DEFAULT_FOLDER
    if not folder.is_dir():
        raise RouteSpecError(f"'distilled' needs a student router: {folder} does not exist; train one with "
                             f"`selectsearch distill-router DATA --logs train --index {index.path}` or pass "
                             "--router-option model=DIR")
    try:
        router = DistilledRouter(folder, retrieval=flag(retrieval))
    except ModelError as exc:
        raise RouteSpecError(f"'distilled' cannot load its model: {exc}") from exc
    if router.n_shards != index.n_shards:
        raise RouteSpecError(f"distilled router {folder} routes over {router.n_shards} shards but {index.path} has "
                             f"{index.n_shards}; distil from a MICO model with the same shard count")
    return router
