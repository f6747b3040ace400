"""``random``: seeded, exactly balanced random shards (the selective-search lower baseline)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from selectsearch.partition.base import CorpusScan, FittedPartition, Partitioner, register_partition

__all__ = ["RandomPartition", "RandomPartitioner"]


@register_partition
class RandomPartition(FittedPartition):
    """Document at stream position ``i`` goes to shard ``perm[i] % n_shards``.

    ``perm`` is a seeded permutation of ``range(n_docs)``, so shard sizes differ by at most one.
    """

    kind: ClassVar[str] = "random"

    def __init__(self, n_shards: int, n_docs: int, seed: int) -> None:
        self.n_shards = n_shards
        self.n_docs = n_docs
        self.seed = seed
        self._perm = np.random.default_rng(seed).permutation(n_docs)

    def assign(self, docs: Any, positions: np.ndarray) -> np.ndarray:
        return (self._perm[np.asarray(positions, dtype=np.int64)] % self.n_shards).astype(np.int32)

    def save(self, folder: Path) -> dict[str, Any]:
        config = {"kind": self.kind, "n_shards": self.n_shards, "n_docs": self.n_docs, "seed": self.seed}
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        return config

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> RandomPartition:
        return cls(int(config["n_shards"]), int(config["n_docs"]), int(config["seed"]))


@dataclass(frozen=True)
class RandomPartitioner(Partitioner):
    """Seeded balanced random partitioning."""

    seed: int = 0
    name: ClassVar[str] = "random"

    def fit(self, scan: CorpusScan, *, n_shards: int, progress: bool = False) -> RandomPartition:
        return RandomPartition(n_shards, scan.n_docs, self.seed)

