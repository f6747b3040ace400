"""The central sample index (CSI): a random sample of every shard in one Lucene index.

The classic resource-selection methods (ReDDE, Rank-S) run the query on the CSI and let the
top-ranked sampled documents vote for the shards they came from. The CSI lives inside the
sharded index folder (``<index>/csi/``) and is built on first use if missing, atomically (built
in ``csi.partial/``, renamed when complete). ``config.json`` records the sampling rate, the seed
and each shard's sample size, which ReDDE needs to scale votes by shard size / sample size.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.atomic import building

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["DEFAULT_CSI_RATE", "CsiInfo", "build_csi", "ensure_csi"]

log = logging.getLogger(__name__)

#: fraction of each shard sampled into the CSI (the literature uses 0.5-4%)
DEFAULT_CSI_RATE = 0.02
#: at least this many documents per (non-empty) shard, so small shards are not invisible
MIN_PER_SHARD = 20


class CsiInfo:
    """A built CSI: its Lucene folder, sampling config and per-shard sample sizes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config: dict[str, Any] = json.loads((folder / "config.json").read_text())
        self.sample_sizes = np.asarray(self.config["sample_sizes"], dtype=np.int64)
        self.rate = float(self.config["rate"])

    @property
    def lucene_dir(self) -> Path:
        return self.folder / "lucene"


def _sample_rows(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    if n == 0:
        return np.empty(0, np.int64)
    size = min(n, max(MIN_PER_SHARD, math.ceil(rate * n)))
    return np.sort(rng.choice(n, size=size, replace=False))


def build_csi(index: ShardedIndex, *, rate: float = DEFAULT_CSI_RATE, seed: int = 0) -> CsiInfo:
    """Sample ``rate`` of every shard (at least :data:`MIN_PER_SHARD`) into ``<index>/csi``."""
    from selectsearch.lucene.indexer import index_shard

    if not 0 < rate <= 1:
        raise ValueError(f"CSI sampling rate must be in (0, 1], got {rate}")
    rng = np.random.default_rng(seed)
    sizes = []
    with building(index.path / "csi") as partial:
        (partial / "docs").mkdir()
        with (partial / "docs" / "docs.jsonl").open("wb") as out:
            for shard in range(index.n_shards):
                n = int(index.shard_sizes[shard])
                rows = _sample_rows(n, rate, rng)
                sizes.append(len(rows))
                if not len(rows):
                    continue
                offsets = np.load(index.shard_path(shard) / "docs.offsets.npy")
                with (index.shard_path(shard) / "docs" / "docs.jsonl").open("rb") as f:
                    for row in rows.tolist():
                        f.seek(int(offsets[row]))
                        out.write(f.readline())  # keeps {"id", "contents", "shard"}
        index_shard(partial / "docs", partial / "lucene")
        shutil.rmtree(partial / "docs")
        config = {"rate": rate, "seed": seed, "min_per_shard": MIN_PER_SHARD, "sample_sizes": sizes,
                  "n_sampled": int(sum(sizes))}
        (partial / "config.json").write_text(json.dumps(config, indent=2))
    log.info("built the central sample index: %d documents (rate %.3f)", sum(sizes), rate)
    return CsiInfo(index.path / "csi")


def ensure_csi(index: ShardedIndex, *, rate: float | None = None, seed: int = 0) -> CsiInfo:
    """The index's CSI, built now if missing (or if a different ``rate`` is asked for)."""
    folder = index.path / "csi"
    if (folder / "config.json").exists():
        info = CsiInfo(folder)
        if rate is None or math.isclose(info.rate, rate):
            return info
    return build_csi(index, rate=DEFAULT_CSI_RATE if rate is None else rate, seed=seed)
