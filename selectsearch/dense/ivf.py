"""The FAISS-IVF anchor: the whole collection in one ``IndexIVFFlat``, searched with ``nprobe``.

This is the baseline routed dense search has to beat. Its coarse quantizer is trained exactly
like the dense k-means partitioner (:class:`selectsearch.partition.dense.DenseKMeansPartitioner`):
FAISS spherical k-means with the same seed, iterations and seeded training sample, unit-length
centroids, inner-product assignment. With ``nlist`` equal to the shard count, IVF's lists are
therefore the dense k-means shards and ``nprobe = m`` scores the same vectors as
``centroid@m`` over those shards — IVF *is* centroid routing; a learned router (MICO) is what
can do better at the same cost.

Cost is reported the way selective search reports it: ``vectors_scored`` per query is the sum of
the probed lists' sizes (the ``nlist`` centroid comparisons are not counted, as routers' costs
are not counted in ``docs_scored``), and ``fraction`` is that over the collection size.

Example:
    >>> anchor = IvfAnchor.build(embeddings, doc_ids, nlist=32)  # doctest: +SKIP
    >>> hits = anchor.search(query_vectors, k=100, nprobe=4)  # doctest: +SKIP
    >>> hits[0].vectors_scored / anchor.n_docs  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.cluster import spherical_kmeans
from selectsearch.dense.searcher import DenseHits
from selectsearch.errors import ModelError, NotAnIndexError
from selectsearch.ranking import order_by_score

__all__ = ["IvfAnchor"]


class IvfAnchor:
    """One ``IndexIVFFlat`` (inner product) over the whole collection.

    Args:
        index: the FAISS IVF index (rows = ``doc_ids``).
        doc_ids: doc id of each row.
    """

    def __init__(self, index: Any, doc_ids: Sequence[str]) -> None:
        import faiss

        self.index = index
        ivf: Any = faiss.extract_index_ivf(index)
        invlists: Any = ivf.invlists
        self.ivf = ivf
        self.invlists = invlists
        self.doc_ids = np.asarray(list(doc_ids), dtype=object)
        if len(self.doc_ids) != int(index.ntotal):
            raise ModelError(f"IVF index has {index.ntotal} vectors but {len(self.doc_ids)} doc ids")
        self.list_sizes = np.array([invlists.list_size(i) for i in range(ivf.nlist)], np.int64)
        self._row_list: np.ndarray | None = None
        self._keep: Any = None

    @property
    def n_docs(self) -> int:
        """Vectors in the index."""
        return int(self.index.ntotal)

    @property
    def nlist(self) -> int:
        """Number of inverted lists."""
        return int(self.ivf.nlist)

    @classmethod
    def build(cls, embeddings: np.ndarray, doc_ids: Sequence[str], nlist: int, *, seed: int = 0, niter: int = 25,
              train_size: int = 100_000, centroids: np.ndarray | None = None, chunk: int = 65536) -> IvfAnchor:
        """Train the quantizer (spherical k-means, or the given ``centroids``) and add every vector.

        Args:
            embeddings: ``(n, dim)`` float32 rows (a memmap is fine; added in chunks).
            doc_ids: doc id of each row.
            nlist: number of lists (the shard count, for the comparison).
            seed, niter, train_size: k-means options (as the dense partitioner's).
            centroids: use these ``(nlist, dim)`` centroids instead of training.
            chunk: rows added per call.
        """
        import faiss

        dim = int(embeddings.shape[1])
        if centroids is None:
            centroids = spherical_kmeans(embeddings, nlist, seed=seed, niter=niter, train_size=train_size)
        centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        if centroids.shape != (nlist, dim):
            raise ModelError(f"centroids have shape {centroids.shape}, expected ({nlist}, {dim})")
        quantizer = faiss.IndexFlatIP(dim)
        quantizer.add(centroids)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.is_trained = True
        for start in range(0, len(embeddings), chunk):
            index.add(np.ascontiguousarray(embeddings[start:start + chunk], dtype=np.float32))
        anchor = cls(index, doc_ids)
        anchor._keep = quantizer  # keep the Python object alive with the index
        return anchor

    def search(self, vectors: np.ndarray, k: int, nprobe: int) -> list[DenseHits]:
        """Top ``k`` per query probing ``nprobe`` lists; ties as :mod:`selectsearch.ranking`.

        The shard of each hit is the list it came from.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != int(self.index.d):
            raise ModelError(f"query vectors are {vectors.shape[-1]}-dimensional but the IVF index holds "
                             f"{self.index.d}-dimensional vectors")
        self.ivf.nprobe = int(nprobe)
        _, lists = self.ivf.quantizer.search(vectors, int(nprobe))
        scored = np.where(lists >= 0, self.list_sizes[np.maximum(lists, 0)], 0).sum(axis=1)
        # one more than k so that a tie at the k-th place is visible; deeper when it is
        depth = min(k + 1, self.n_docs)
        scores, rows = self.index.search(vectors, depth)
        out = []
        for qi in range(len(vectors)):
            d, r = scores[qi], rows[qi]
            while len(r) < self.n_docs and r[-1] >= 0 and len(r) > k and d[k - 1] == d[-1]:
                depth = min(2 * len(r), self.n_docs)
                more_d, more_r = self.index.search(vectors[qi:qi + 1], depth)
                d, r = more_d[0], more_r[0]
            valid = r >= 0
            d, r = d[valid], r[valid]
            ids = self.doc_ids[r]
            order = order_by_score(d.tolist(), ids.tolist())[:k]
            list_of = self._lists_of(r[order])
            out.append(DenseHits([str(ids[j]) for j in order], [float(d[j]) for j in order],
                                 list_of, int(scored[qi])))
        return out

    def _lists_of(self, rows: np.ndarray) -> list[int]:
        if self._row_list is None:
            import faiss

            row_list = np.full(self.n_docs, -1, np.int64)
            invlists = self.invlists
            for lst in range(self.nlist):
                size = invlists.list_size(lst)
                if size:
                    ids = faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy()
                    row_list[ids] = lst
            self._row_list = row_list
        return [int(x) for x in self._row_list[rows]]

    def save(self, folder: str | Path) -> Path:
        """Write ``index.faiss`` + ``doc_ids.txt`` + ``meta.json`` into ``folder``."""
        import faiss

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(out / "index.faiss"))
        (out / "doc_ids.txt").write_text("\n".join(self.doc_ids.tolist()) + "\n", encoding="utf-8")
        (out / "meta.json").write_text(json.dumps({"kind": "ivf-anchor", "nlist": self.nlist, "n": self.n_docs,
                                                   "dim": int(self.index.d)}) + "\n")
        return out

    @classmethod
    def load(cls, folder: str | Path) -> IvfAnchor:
        """Read an anchor written by :meth:`save`."""
        import faiss

        path = Path(folder)
        if not (path / "index.faiss").exists():
            raise NotAnIndexError(f"{path} holds no IVF anchor (index.faiss); build one with IvfAnchor.build")
        text = (path / "doc_ids.txt").read_text(encoding="utf-8")
        return cls(faiss.read_index(str(path / "index.faiss")), text.split("\n")[:-1])
