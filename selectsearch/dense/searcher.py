"""Inner-product search over the FAISS indexes of the selected shards.

Queries are embedded by the index's encoder (recorded in the manifest's ``dense`` section), then
grouped by shard: each selected shard is searched ONCE for all the queries that selected it (a
batched matrix product for ``Flat`` shards), and every query's per-shard lists are merged by score,
ties by doc id ascending (:mod:`selectsearch.ranking`). Flat shards score every vector exactly, so
searching all shards returns exactly what one ``IndexFlatIP`` over the whole collection returns —
same ids, same float32 scores. When the ``k``-th score is tied with a shard's last returned
candidate, that shard is searched deeper until the tie is resolved, so ties are always broken by
doc id, never by FAISS's internal order.

The cost per query is ``vectors_scored``: the size of each searched Flat (or PQ) shard, the
probed lists' sizes for IVF shards, and FAISS's distance count for HNSW shards.

Example:
    >>> from selectsearch.index.sharded import ShardedIndex  # doctest: +SKIP
    >>> dense = ShardedDenseSearcher(ShardedIndex.open("indexes/sf-dense16"))  # doctest: +SKIP
    >>> [hits] = dense.search(["vitamin D and bone"], [[0, 3]], k=10)  # doctest: +SKIP
    >>> hits.doc_ids[:3], hits.vectors_scored  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from selectsearch.dense.build import load_shard_index
from selectsearch.errors import ModelError, ShardedIndexError
from selectsearch.ranking import order_by_score
from selectsearch.types import EncodedQueries

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.encode import TextEncoder
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["DenseHits", "ShardedDenseSearcher"]

log = logging.getLogger(__name__)


class DenseHits(NamedTuple):
    """One query's merged dense hits, best first, and what they cost."""

    doc_ids: list[str]
    scores: list[float]
    shards: list[int]
    vectors_scored: int


class ShardedDenseSearcher:
    """Dense search of any subset of an index's shards.

    Args:
        index: an opened index with a FAISS backend.
        encoder: query encoder (default: the one the index was built with). Its dimension must
            equal the index's.
        nprobe: lists probed in IVF shards (default: the manifest's).
        efsearch: HNSW ``efSearch`` (default: the manifest's).
        threads: FAISS OpenMP threads (``None``: leave FAISS's setting alone).
        batch_size: queries per encoder forward pass.

    Raises:
        ShardedIndexError: the index has no FAISS backend.
    """

    def __init__(self, index: ShardedIndex, *, encoder: str | None = None, nprobe: int | None = None,
                 efsearch: int | None = None, threads: int | None = None, batch_size: int = 64) -> None:
        section = index.manifest.dense
        if section is None:
            raise ShardedIndexError(
                f"{index.path} has no FAISS backend; add one with `selectsearch index SOURCE... --out {index.path} "
                "--add-backend faiss` (or rebuild with --backend lucene,faiss)"
            )
        self.index = index
        self.section = section
        self.dim = int(section.dim)
        self.model = str(section.model)
        self.query_model = encoder or self.model
        self.max_length = int(section.max_length)
        config = section.config
        self.nprobe = int(nprobe if nprobe is not None else config.get("nprobe", 16))
        self.efsearch = int(efsearch if efsearch is not None else config.get("efsearch", 64))
        self.threads = threads
        self.batch_size = batch_size
        self.shards = [int(s.shard_id) for s in index.shards if "faiss" in s.backends]
        self._shard_set = set(self.shards)
        self._indexes: dict[int, Any] = {}
        self._doc_ids: dict[int, np.ndarray] = {}
        self._list_sizes: dict[int, np.ndarray] = {}
        self._encoder: TextEncoder | None = None
        self._query_cache: dict[str, tuple[np.ndarray, float]] = {}
        self.query_cache_size = 100_000

    # -- loading ---------------------------------------------------------------------------
    def encoder(self) -> TextEncoder:
        """The query encoder (loaded on first use; its dimension is checked against the index)."""
        if self._encoder is None:
            from selectsearch.encode import TextEncoder
            from selectsearch.models.encoder import DEFAULT_ENCODER

            enc = TextEncoder(None if self.query_model == DEFAULT_ENCODER else self.query_model,
                              max_length=self.max_length, batch_size=self.batch_size)
            if enc.dim != self.dim:
                raise ModelError(
                    f"query encoder {self.query_model} produces {enc.dim}-dimensional embeddings but {self.index.path} "
                    f"holds {self.dim}-dimensional vectors ({self.model}); query with the index's encoder or rebuild "
                    f"its FAISS backend with --encoder {self.query_model}"
                )
            if self.query_model != self.model:
                log.warning("querying %s (built with %s) with encoder %s", self.index.path, self.model,
                            self.query_model)
            self._encoder = enc
        return self._encoder

    def shard_index(self, shard: int) -> Any:
        """The FAISS index of ``shard`` (read on first use, search parameters applied)."""
        index = self._indexes.get(shard)
        if index is None:
            import faiss

            if self.threads:
                faiss.omp_set_num_threads(int(self.threads))
            index = load_shard_index(self.index.shard_path(shard), dim=self.dim)
            try:
                ivf = faiss.extract_index_ivf(index)
            except RuntimeError:
                ivf = None
            if ivf is not None:
                ivf.nprobe = min(self.nprobe, ivf.nlist)
                invlists: Any = ivf.invlists
                self._list_sizes[shard] = np.array([invlists.list_size(i) for i in range(ivf.nlist)], np.int64)
            hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
            if hnsw is not None:
                hnsw.efSearch = self.efsearch
            self._indexes[shard] = index
        return index

    def doc_ids(self, shard: int) -> np.ndarray:
        """Doc id of each FAISS row of ``shard`` (its ``doc_ids.txt``)."""
        ids = self._doc_ids.get(shard)
        if ids is None:
            ids = self._doc_ids[shard] = np.asarray(self.index.shard_doc_ids(shard), dtype=object)
        return ids

    def warm(self, shards: Sequence[int] | None = None) -> None:
        """Load the encoder and the shard indexes now (so they do not count as query time)."""
        self.encoder()
        for s in self.shards if shards is None else shards:
            if s in self._shard_set:
                self.shard_index(s)

    # -- searching -------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 query vectors."""
        return self.encode_timed(texts)[0]

    def encode_timed(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Query vectors and the milliseconds each took to encode.

        Vectors of recently seen texts are memoised (evaluation sweeps search the same queries
        at many budgets); a memoised vector reports the time its encoding took.
        """
        import time

        if not texts:
            return np.zeros((0, self.dim), np.float32), np.zeros(0)
        found = {t: self._query_cache[t] for t in dict.fromkeys(texts) if t in self._query_cache}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            started = time.perf_counter()
            vectors = self.check_vectors(self.encoder().encode(missing))
            ms = (time.perf_counter() - started) * 1000.0 / len(missing)
            for text, vector in zip(missing, vectors, strict=True):
                found[text] = self._query_cache[text] = (vector, ms)
            while len(self._query_cache) > self.query_cache_size:
                self._query_cache.pop(next(iter(self._query_cache)))
        pairs = [found[t] for t in texts]
        return np.stack([v for v, _ in pairs]), np.array([ms for _, ms in pairs])

    def reusable_vectors(self, encoded: EncodedQueries | None, texts: Sequence[str]) -> np.ndarray | None:
        """``encoded``'s vectors of ``texts`` when they come from this searcher's query encoder
        (same model, max_length and precision), else ``None``."""
        from selectsearch.encode import encoder_precision

        if encoded is None or (encoded.model, encoded.max_length) != (self.query_model, self.max_length):
            return None
        if encoded.precision != encoder_precision():
            return None
        rows = encoded.rows_for(list(texts))
        return None if rows is None else self.check_vectors(rows)

    def check_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """``vectors`` as C-contiguous float32 ``(n, dim)``.

        Raises:
            ModelError: the vectors' dimension is not the index's (both dimensions named).
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ModelError(f"query vectors have shape {vectors.shape} ({vectors.shape[-1]}-dimensional) but "
                             f"{self.index.path} holds {self.dim}-dimensional vectors ({self.model})")
        return vectors

    def search(self, texts: Sequence[str], selected: Sequence[Sequence[int]], k: int) -> list[DenseHits]:
        """Embed ``texts`` and search each over its ``selected`` shards (top ``k``)."""
        return self.search_vectors(self.encode(texts), selected, k)

    def _vectors_scored(self, shard: int, index: Any, vectors: np.ndarray) -> np.ndarray:
        import faiss

        sizes = self._list_sizes.get(shard)
        if sizes is not None:
            ivf = faiss.extract_index_ivf(index)
            _, lists = ivf.quantizer.search(vectors, ivf.nprobe)
            return np.where(lists >= 0, sizes[np.maximum(lists, 0)], 0).sum(axis=1)
        return np.full(len(vectors), int(index.ntotal), np.int64)

    def search_vectors(self, vectors: np.ndarray, selected: Sequence[Sequence[int]], k: int) -> list[DenseHits]:
        """Search query ``vectors`` (one row per query) over each query's ``selected`` shards.

        Shards without a FAISS index (empty shards) are skipped. Returns one
        :class:`DenseHits` per query, at most ``k`` hits ordered by score (ties as :mod:`selectsearch.ranking`).
        """
        import faiss

        stats: Any = faiss.cvar
        vectors = self.check_vectors(vectors)
        if len(selected) != len(vectors):
            raise ValueError(f"{len(vectors)} query vectors but {len(selected)} shard selections")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        by_shard: dict[int, list[int]] = {}
        for qi, sel in enumerate(selected):
            for s in sorted({int(x) for x in sel}):
                if s in self._shard_set:
                    by_shard.setdefault(s, []).append(qi)
        parts: list[list[tuple[int, np.ndarray, np.ndarray]]] = [[] for _ in range(len(vectors))]
        scored = np.zeros(len(vectors), np.int64)
        for s in sorted(by_shard):
            rows = np.asarray(by_shard[s], dtype=np.int64)
            index = self.shard_index(s)
            batch = vectors[rows]
            hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
            if hnsw is not None:
                stats.hnsw_stats.reset()
            scores, ids = index.search(batch, min(k, int(index.ntotal)))
            if hnsw is not None:
                scored[rows] += int(stats.hnsw_stats.ndis) // max(len(rows), 1)
            else:
                scored[rows] += self._vectors_scored(s, index, batch)
            for j, qi in enumerate(rows.tolist()):
                parts[qi].append((s, scores[j], ids[j]))
        return [self._merge(vectors[qi], parts[qi], k, int(scored[qi])) for qi in range(len(vectors))]

    def _merge(self, vector: np.ndarray, parts: list[tuple[int, np.ndarray, np.ndarray]], k: int,
               scored: int) -> DenseHits:
        if not parts:
            return DenseHits([], [], [], scored)
        parts = self._resolve_ties(vector, parts, k)
        scores = np.concatenate([p[1][p[2] >= 0] for p in parts])
        shard_of = np.concatenate([np.full(int((p[2] >= 0).sum()), p[0], np.int64) for p in parts])
        ids = np.concatenate([self.doc_ids(p[0])[p[2][p[2] >= 0]] for p in parts])
        if len(scores) > k:
            kth = np.partition(-scores, k - 1)[k - 1]
            keep = np.nonzero(-scores <= kth)[0]  # every candidate tied with the k-th stays in
        else:
            keep = np.arange(len(scores))
        kept = keep.tolist()
        order = [kept[j] for j in order_by_score(scores[keep].tolist(), ids[keep].tolist())[:k]]
        return DenseHits([str(ids[j]) for j in order], [float(scores[j]) for j in order],
                         [int(shard_of[j]) for j in order], scored)

    def _resolve_ties(self, vector: np.ndarray, parts: list[tuple[int, np.ndarray, np.ndarray]],
                      k: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Search deeper in shards whose last candidate ties the merged ``k``-th score."""
        while True:
            scores = np.concatenate([p[1][p[2] >= 0] for p in parts])
            if len(scores) < k:
                return parts
            kth = float(np.sort(scores)[::-1][k - 1])
            deeper = [i for i, (s, d, ids) in enumerate(parts)
                      if len(ids) and ids[-1] >= 0 and len(ids) < self.shard_index(s).ntotal and float(d[-1]) == kth]
            if not deeper:
                return parts
            for i in deeper:
                s, d, _ = parts[i]
                index = self.shard_index(s)
                depth = min(2 * len(d), int(index.ntotal))
                more_scores, more_ids = index.search(vector[None, :], depth)
                parts[i] = (s, more_scores[0], more_ids[0])
