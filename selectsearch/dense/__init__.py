"""Dense retrieval over shards: one FAISS index per shard, and the FAISS-IVF anchor baseline.

- :mod:`selectsearch.dense.config` — :class:`DenseConfig` (encoder, FAISS index type per shard);
- :mod:`selectsearch.dense.build` — FAISS indexes for the shards of a build, or added to an
  existing index (atomically; rows aligned with each shard's ``doc_ids.txt``);
- :mod:`selectsearch.dense.searcher` — :class:`ShardedDenseSearcher`: inner-product search of
  the selected shards, merged by score (ties as :mod:`selectsearch.ranking`);
- :mod:`selectsearch.dense.ivf` — :class:`IvfAnchor`: the whole collection in one
  ``IndexIVFFlat`` searched with ``nprobe`` lists (the baseline routed search must beat).

Importing this package loads neither FAISS nor torch.

Example:
    >>> from selectsearch.search import SelectiveSearcher  # doctest: +SKIP
    >>> s = SelectiveSearcher.open("indexes/sf-dense16", route="centroid@2", retriever="dense")  # doctest: +SKIP
    >>> s.search("vitamin D and bone density", k=10)[0]  # doctest: +SKIP
"""

from __future__ import annotations

from selectsearch.dense.config import BACKENDS, DenseConfig, parse_backends

__all__ = ["BACKENDS", "DenseConfig", "parse_backends"]
