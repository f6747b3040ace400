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
    """Streaming, exactly balanced random shards.

    Documents are taken in blocks of ``n_shards`` consecutive stream positions; each block is
    dealt over the shards by its own seeded permutation. Every shard gets one document of every
    complete block, so sizes differ by at most one, and no corpus size is needed up front (the
    build reads the corpus once).
    """

    kind: ClassVar[str] = "random"

    def __init__(self, n_shards: int, seed: int) -> None:
        self.n_shards = n_shards
        self.seed = seed

    def _block(self, block: int) -> np.ndarray:
        return np.random.default_rng([self.seed, block]).permutation(self.n_shards)

    def assign(self, docs: Any, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        out = np.empty(len(positions), np.int32)
        blocks = positions // self.n_shards
        for block in np.unique(blocks).tolist():
            mask = blocks == block
            out[mask] = self._block(block)[positions[mask] % self.n_shards]
        return out

    def save(self, folder: Path) -> dict[str, Any]:
        config = {"kind": self.kind, "n_shards": self.n_shards, "seed": self.seed, "scheme": "seeded-blocks"}
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        return config

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> RandomPartition:
        return cls(int(config["n_shards"]), int(config["seed"]))


@dataclass(frozen=True)
class RandomPartitioner(Partitioner):
    """Seeded balanced random partitioning."""

    seed: int = 0
    name: ClassVar[str] = "random"

    needs_scan: ClassVar[bool] = False

    def fit(self, scan: CorpusScan, *, n_shards: int, progress: bool = False) -> RandomPartition:
        return RandomPartition(n_shards, self.seed)

