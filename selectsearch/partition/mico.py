"""``mico``: shards learned from search logs (assignment head of a trained MICO model).

Every document — logged or not — goes to ``argmax_z p(z|y)``, in the batches the index build
streams (the corpus is never held in memory). A model trained in ``frozen`` mode reuses the
corpus embedding cache (the one ``--space dense`` k-means builds); otherwise each batch is
embedded by the model's encoder. The model folder is copied into ``<index>/partition/model`` so
the ``mico@m`` router finds it there.

Example:
    >>> part = MicoPartitioner(model="models/hd-mico16")  # doctest: +SKIP
    >>> # selectsearch index ../shared/data/homedepot --partitioner mico --mico-model models/hd-mico16 --out ...
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from selectsearch.errors import ModelError
from selectsearch.partition.base import CorpusScan, FittedPartition, Partitioner, QuerySpace, register_partition
from selectsearch.types import Document

__all__ = ["MicoPartition", "MicoPartitioner", "MicoQuerySpace"]

_MODEL_DIR = "model"


class MicoQuerySpace(QuerySpace):
    """Query-routing head logits as shard scores (loads the query head only)."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self._scorer: Any = None

    def query_scores(self, texts: Sequence[str]) -> np.ndarray:
        if self._scorer is None:
            from selectsearch.mico.model import MicoModelFolder

            self._scorer = MicoModelFolder(self.model_dir).query_router()
        scores: np.ndarray = self._scorer.scores(list(texts))
        return scores


@register_partition
class MicoPartition(FittedPartition):
    """Assignment by the MICO document head.

    Args:
        model_dir: the MICO model folder.
        embeddings: corpus embeddings in stream order (frozen-mode models, during a build).
    """

    kind: ClassVar[str] = "mico"

    def __init__(self, model_dir: Path, embeddings: np.ndarray | None = None) -> None:
        from selectsearch.mico.model import MicoModelFolder

        self.model_dir = Path(model_dir)
        self.model = MicoModelFolder(self.model_dir)
        self.n_shards = self.model.n_clusters
        self._embeddings = embeddings
        self._assigner: Any = None

    def _scorer(self) -> Any:
        if self._assigner is None:
            self._assigner = self.model.document_assigner()
        return self._assigner

    def assign(self, docs: Sequence[Document], positions: np.ndarray) -> np.ndarray:
        scorer = self._scorer()
        if self._embeddings is not None:
            scores = scorer.scores_from_embeddings(np.asarray(self._embeddings[np.asarray(positions)]))
        else:
            scores = scorer.scores([d.contents for d in docs])
        return np.argmax(scores, axis=1).astype(np.int32)

    @property
    def portable(self) -> bool:
        return self._embeddings is None  # cached embeddings live on this machine only

    def query_space(self) -> QuerySpace:
        return MicoQuerySpace(self.model_dir)

    def save(self, folder: Path) -> dict[str, Any]:
        target = folder / _MODEL_DIR
        if target.resolve() != self.model_dir.resolve():
            shutil.copytree(self.model_dir, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("checkpoint*", "training_log.json"))
        config = {"kind": self.kind, "n_shards": self.n_shards, "model": _MODEL_DIR,
                  "source_model": str(self.model_dir), "encoder_frozen": self.model.encoder_frozen,
                  "best_val_auc": self.model.config.get("best_val_auc")}
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        return config

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> MicoPartition:
        return cls(folder / str(config.get("model", _MODEL_DIR)))


@dataclass(frozen=True)
class MicoPartitioner(Partitioner):
    """Partition with a trained MICO model (``selectsearch train-mico``).

    Args:
        model: the MICO model folder.
        cache_dir: embedding cache root (default ``~/.cache/selectsearch/embeddings``).
        sample_size: documents sampled in the scan pass (none needed).
    """

    model: str
    cache_dir: str | None = None
    sample_size: int = 0
    name: ClassVar[str] = "mico"

    def fit(self, scan: CorpusScan, *, n_shards: int, progress: bool = False) -> MicoPartition:
        from selectsearch.mico.features import corpus_cache
        from selectsearch.mico.model import MicoModelFolder

        folder = MicoModelFolder(self.model)
        if folder.n_clusters != n_shards:
            raise ModelError(f"MICO model {self.model} has {folder.n_clusters} clusters but {n_shards} shards were "
                             f"asked; pass --shards {folder.n_clusters} or train with --shards {n_shards}")
        embeddings = None
        if folder.encoder_frozen:
            cache = corpus_cache(folder.encoder_source, folder.max_length, scan.fingerprint, self.cache_dir)
            if cache.matches(model=folder.encoder_source, fingerprint=scan.fingerprint, n=scan.n_docs):
                embeddings = cache.load()
        return MicoPartition(Path(self.model), embeddings)
