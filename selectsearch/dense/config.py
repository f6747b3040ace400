"""Configuration of the FAISS backend (recorded in the index manifest) and backend names."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from selectsearch.errors import SelectSearchError
from selectsearch.models.encoder import DEFAULT_ENCODER

__all__ = ["BACKENDS", "DenseConfig", "parse_backends"]

#: per-shard search backends
BACKENDS = ("lucene", "faiss")


def parse_backends(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"lucene,faiss"`` -> ``("lucene", "faiss")`` (validated, duplicates removed, order kept).

    Example:
        >>> parse_backends("faiss,lucene")
        ('faiss', 'lucene')
    """
    items = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    unknown = [t for t in items if t not in BACKENDS]
    if unknown or not items:
        raise SelectSearchError(f"unknown backend {', '.join(unknown) or '(none)'}; use lucene, faiss or lucene,faiss")
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class DenseConfig:
    """How shard FAISS indexes are built and searched.

    Args:
        model: document/query encoder: ``all-MiniLM-L6-v2`` (packaged) or a local
            sentence-transformers/transformers folder.
        max_length: tokens per document when encoding (part of the embedding-cache key).
        factory: FAISS ``index_factory`` string of every shard; ``Flat`` (default) is exact
            inner product (``IndexFlatIP``). Others: ``IVF256,Flat``, ``HNSW32``, ``IVF256,PQ32``,
            ``PQ32`` ... (always with the inner-product metric).
        large_factory: factory for shards of at least ``large_threshold`` vectors (``None``:
            ``factory`` everywhere). Lets small shards stay exact while big ones are approximate.
        large_threshold: size from which ``large_factory`` applies.
        nprobe: lists probed by IVF shards at search time (default; searchers may override).
        efsearch: HNSW ``efSearch`` at search time (default; searchers may override).
        train_size: vectors (seeded sample of the shard) that train IVF/PQ shards.
        seed: seed of that sample.
        cache_dir: embedding cache root (default ``~/.cache/selectsearch/embeddings``).
        batch_size: texts per encoder forward pass when the corpus must be encoded.

    Example:
        >>> DenseConfig(large_factory="IVF1024,Flat", large_threshold=200_000).factory_for(500_000)
        'IVF1024,Flat'
    """

    model: str = DEFAULT_ENCODER
    max_length: int = 256
    factory: str = "Flat"
    large_factory: str | None = None
    large_threshold: int = 100_000
    nprobe: int = 16
    efsearch: int = 64
    train_size: int = 50_000
    seed: int = 0
    cache_dir: str | None = None
    batch_size: int = 64

    def factory_for(self, n_vectors: int) -> str:
        """The FAISS factory string of a shard of ``n_vectors``."""
        if self.large_factory and n_vectors >= self.large_threshold:
            return self.large_factory
        return self.factory

    def to_json(self) -> dict[str, Any]:
        """The fields worth recording (no cache folder)."""
        return {k: v for k, v in asdict(self).items() if k not in ("cache_dir", "batch_size")}
