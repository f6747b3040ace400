"""``kmeans`` in the dense space: FAISS spherical k-means over encoder embeddings.

Every document is embedded once with the default encoder (the packaged all-MiniLM-L6-v2) into
the embedding cache (:mod:`selectsearch.encode`), k-means is fitted on (a sample of) those
vectors, and each document goes to the centroid with the largest inner product. Queries are
routed by embedding them with the same encoder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from selectsearch.cluster import spherical_kmeans
from selectsearch.encode import TextEncoder, corpus_cache
from selectsearch.models.encoder import DEFAULT_ENCODER
from selectsearch.partition.base import (
    CorpusScan,
    FittedPartition,
    Partitioner,
    QuerySpace,
    register_partition,
)
from selectsearch.types import Document, EncodedQueries

__all__ = ["DenseKMeansPartition", "DenseKMeansPartitioner", "DenseSpace"]


class DenseSpace(QuerySpace):
    """Queries embedded by ``model`` and scored by inner product with unit centroids."""

    def __init__(self, model: str, centroids: np.ndarray, max_length: int) -> None:
        self.model = model
        self.centroids = centroids.astype(np.float32)
        self.max_length = max_length
        self._encoder: TextEncoder | None = None
        self.encoded: EncodedQueries | None = None  # the last batch, for a dense retriever to reuse

    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = TextEncoder(None if self.model == DEFAULT_ENCODER else self.model,
                                        max_length=self.max_length)
        return self._encoder

    def query_scores(self, texts: Sequence[str]) -> np.ndarray:
        encoder = self.encoder()
        vectors = encoder.encode(list(texts))
        self.encoded = EncodedQueries(encoder.name, encoder.max_length, encoder.precision, tuple(texts), vectors)
        return vectors @ self.centroids.T


@register_partition
class DenseKMeansPartition(FittedPartition):
    """Nearest-centroid assignment of cached document embeddings."""

    kind: ClassVar[str] = "kmeans-dense"

    def __init__(self, space: DenseSpace, params: dict[str, Any], embeddings: np.ndarray | None = None) -> None:
        self.space = space
        self.n_shards = space.centroids.shape[0]
        self.params = params
        self._embeddings = embeddings  # rows in corpus stream order, during a build

    def assign(self, docs: Sequence[Document], positions: np.ndarray) -> np.ndarray:
        if self._embeddings is not None:
            vectors = np.asarray(self._embeddings[np.asarray(positions)])
        else:
            vectors = self.space.encoder().encode([d.contents for d in docs])
        return np.argmax(vectors @ self.space.centroids.T, axis=1).astype(np.int32)

    @property
    def portable(self) -> bool:
        return self._embeddings is None  # cached embeddings live on this machine only

    def query_space(self) -> DenseSpace:
        return self.space

    def save(self, folder: Path) -> dict[str, Any]:
        np.save(folder / "centroids.npy", self.space.centroids)
        config = {"kind": self.kind, "n_shards": self.n_shards, "model": self.space.model,
                  "max_length": self.space.max_length, **self.params}
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        return config

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> DenseKMeansPartition:
        space = DenseSpace(config["model"], np.load(folder / "centroids.npy"), int(config["max_length"]))
        params = {k: v for k, v in config.items() if k not in ("kind", "n_shards", "model", "max_length")}
        return cls(space, params)


@dataclass(frozen=True)
class DenseKMeansPartitioner(Partitioner):
    """Spherical FAISS k-means on embeddings of every document.

    Args:
        seed: k-means seed.
        model: encoder (default: packaged all-MiniLM-L6-v2) — a local folder otherwise.
        max_length: tokens per document when embedding.
        train_size: vectors used to fit k-means (all if the corpus is smaller).
        cache_dir: embedding cache root (default ``~/.cache/selectsearch/embeddings``).
    """

    seed: int = 0
    model: str = DEFAULT_ENCODER
    max_length: int = 256
    train_size: int = 100_000
    niter: int = 25
    cache_dir: str | None = None
    name: ClassVar[str] = "kmeans-dense"

    def fit(self, scan: CorpusScan, *, n_shards: int, progress: bool = False) -> DenseKMeansPartition:
        if scan.corpus is None:
            raise ValueError("the dense partitioner needs scan.corpus")
        cache = corpus_cache(self.model, self.max_length, scan.fingerprint, self.cache_dir)
        if cache.matches(model=self.model, fingerprint=scan.fingerprint, n=scan.n_docs):
            embeddings = cache.load()
        else:
            encoder = TextEncoder(None if self.model == DEFAULT_ENCODER else self.model, max_length=self.max_length)
            # smaller chunks when they go to remote tasks: more of them, spread over more workers
            embeddings = cache.build(encoder, (d.contents for d in scan.corpus), n=scan.n_docs,
                                     fingerprint=scan.fingerprint, progress=progress, encode=scan.encode,
                                     chunk=2048 if scan.encode is None else 512)
        centroids = spherical_kmeans(embeddings, n_shards, seed=self.seed, niter=self.niter, train_size=self.train_size)
        params = {"seed": self.seed, "train_size": min(self.train_size, scan.n_docs), "niter": self.niter,
                  "space": "dense", "embedding_cache": str(cache.folder)}
        return DenseKMeansPartition(DenseSpace(self.model, centroids, self.max_length), params, embeddings)
