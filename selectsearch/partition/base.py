"""The partitioner interface: fit on a corpus scan, then assign every document to a shard.

A :class:`Partitioner` is a configuration (frozen, recorded in the manifest). ``fit`` returns a
:class:`FittedPartition` that assigns documents in batches and is saved inside the index
folder, so that routers can reuse its feature space (e.g. ``centroid@m`` scores queries against
the k-means centroids). MICO plugs in through the same two classes.
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from selectsearch.types import Document

if TYPE_CHECKING:
    from selectsearch.encode import ChunkEncoder

__all__ = [
    "CorpusScan",
    "FittedPartition",
    "Partitioner",
    "QuerySpace",
    "load_partition",
    "register_partition",
    "reservoir_sample",
]


@dataclass
class CorpusScan:
    """What one streaming pass over the corpus learned: size, fingerprint and a seeded sample.

    Attributes:
        n_docs: number of documents.
        fingerprint: sha256 of the ordered doc ids.
        sample: up to ``sample_size`` documents drawn uniformly (reservoir sampling, seeded).
        sample_positions: stream positions of the sampled documents.
        corpus: a re-iterable corpus (for partitioners that need every document, e.g. dense).
        encode: where a partitioner that embeds the corpus encodes it (a
            :data:`selectsearch.encode.ChunkEncoder`; ``None``: in this process). A distributed
            build sets its executor's (Ray tasks).
    """

    n_docs: int
    fingerprint: str
    sample: list[Document]
    sample_positions: list[int]
    corpus: Iterable[Document] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    encode: ChunkEncoder | None = None


class Reservoir:
    """Uniform sample of ``size`` items from a stream of unknown length (Algorithm R), seeded."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self._rng = random.Random(seed)
        self._items: list[tuple[int, Document]] = []
        self._seen = 0

    def offer(self, doc: Document) -> None:
        """Consider the next document of the stream."""
        position = self._seen
        self._seen += 1
        if position < self.size:
            self._items.append((position, doc))
        elif self.size:
            j = self._rng.randint(0, position)
            if j < self.size:
                self._items[j] = (position, doc)

    def result(self) -> tuple[list[Document], list[int]]:
        """The sampled documents and their stream positions, in stream order."""
        items = sorted(self._items, key=lambda t: t[0])
        return [d for _, d in items], [i for i, _ in items]


def reservoir_sample(stream: Iterable[Document], size: int, seed: int) -> tuple[list[Document], list[int]]:
    """Uniform sample of ``size`` items (Algorithm R), returned in stream order."""
    reservoir = Reservoir(size, seed)
    for doc in stream:
        reservoir.offer(doc)
    return reservoir.result()


class QuerySpace(ABC):
    """A feature space in which queries can be scored against shards (centroid routing)."""

    @abstractmethod
    def query_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Similarity of each query to each shard centroid, shape ``(len(texts), n_shards)``."""


class FittedPartition(ABC):
    """A fitted partition: assigns documents to shards; saved in ``<index>/partition/``."""

    kind: ClassVar[str]
    n_shards: int

    @abstractmethod
    def assign(self, docs: Sequence[Document], positions: np.ndarray) -> np.ndarray:
        """Shard of each document (int32). ``positions`` are their 0-based stream positions."""

    @abstractmethod
    def save(self, folder: Path) -> dict[str, Any]:
        """Write the model files into ``folder``; return the JSON config (kind included)."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> FittedPartition:
        """Inverse of :meth:`save`."""

    def query_space(self) -> QuerySpace | None:
        """The space for centroid routing, or ``None`` when the partition has none (random)."""
        return None

    @property
    def portable(self) -> bool:
        """Whether the saved partition (:meth:`save`, then :meth:`load` elsewhere) assigns exactly
        as this object does. A distributed build assigns in parallel tasks only then; a partition
        that looks up embeddings cached on this machine (dense k-means, frozen-encoder MICO during
        a build) assigns where it was fitted, which costs a matrix product per batch."""
        return True


class Partitioner(ABC):
    """Partitioner configuration. Subclasses are frozen dataclasses (recorded in manifests)."""

    name: ClassVar[str]
    #: documents to sample in the scan pass (0: no sample needed)
    sample_size: int = 0
    #: whether ``fit`` needs the scan pass (size, sample, corpus); if not, the build reads the
    #: corpus once and ``fit`` gets an empty scan
    needs_scan: ClassVar[bool] = True

    @abstractmethod
    def fit(self, scan: CorpusScan, *, n_shards: int, progress: bool = False) -> FittedPartition:
        """Learn the partition from the scan (and, if needed, a pass over ``scan.corpus``)."""


_REGISTRY: dict[str, type[FittedPartition]] = {}


def register_partition(cls: type[FittedPartition]) -> type[FittedPartition]:
    """Class decorator: make a fitted partition loadable by its ``kind``."""
    _REGISTRY[cls.kind] = cls
    return cls


def load_partition(folder: Path) -> FittedPartition:
    """Load the fitted partition saved in ``folder`` (reads ``config.json``); its ``kind`` is the
    name of the partitioner that fitted it, whose module registers the fitted class on import.

    Raises:
        SelectSearchError: a kind no registered partitioner saves.
    """
    from selectsearch.errors import SelectSearchError
    from selectsearch.partition.registry import PARTITIONERS

    config = json.loads((folder / "config.json").read_text())
    kind = config["kind"]
    if kind not in _REGISTRY and kind in PARTITIONERS:
        PARTITIONERS[kind].load()  # importing the partitioner's module registers its fitted partition
    if kind not in _REGISTRY:
        raise SelectSearchError(f"{folder} holds a {kind!r} partition, which no registered partitioner loads; "
                                f"partitioners: {', '.join(sorted(PARTITIONERS))}")
    return _REGISTRY[kind].load(folder, config)
