"""Spherical k-means, the one implementation shared by every caller.

The dense partitioner (:mod:`selectsearch.partition.dense`), the IVF anchor index
(:mod:`selectsearch.dense.ivf`) and MICO's head initialisation (:mod:`selectsearch.mico.trainer`)
all cluster unit-length embeddings with FAISS spherical k-means, on a seeded sample of rows; the
topic-held-out splits of search logs (:func:`selectsearch.mico.logs.split_by_topic`, used by MICO's
validation and ``tune-route``) cluster logged queries with :func:`cluster_labels`. They share this
module so that the same seed gives the same centroids everywhere. FAISS is imported on first use.

Example:
    >>> import numpy as np
    >>> sample_rows(10, 4, seed=0).tolist()
    [2, 4, 5, 7]
"""

from __future__ import annotations

import numpy as np

__all__ = ["cluster_labels", "nearest_centroid", "sample_rows", "spherical_kmeans"]


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of a seeded sample of ``min(size, n)`` of ``n`` rows, without replacement."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def spherical_kmeans(vectors: np.ndarray, k: int, *, seed: int, niter: int = 25,
                     train_size: int | None = None) -> np.ndarray:
    """Unit-norm centroids ``(k, dim)`` of FAISS spherical k-means on ``vectors``.

    Args:
        vectors: ``(n, dim)`` embeddings (a memmap is fine: only the sampled rows are read).
        k: number of centroids.
        seed: seeds the row sample and FAISS.
        niter: k-means iterations.
        train_size: fit on a seeded sample of this many rows (:func:`sample_rows`); ``None``: all rows.
    """
    import faiss

    rows = vectors if train_size is None else vectors[sample_rows(len(vectors), train_size, seed)]
    train = np.ascontiguousarray(rows, dtype=np.float32)
    kmeans = faiss.Kmeans(train.shape[1], k, niter=niter, seed=seed, spherical=True, verbose=False,
                          min_points_per_centroid=1, max_points_per_centroid=10**9)
    kmeans.train(train)
    raw = np.asarray(kmeans.centroids, dtype=np.float32)
    out: np.ndarray = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    return out


def nearest_centroid(vectors: np.ndarray, centroids: np.ndarray, *, chunk: int = 65_536) -> np.ndarray:
    """Row of the most similar centroid (largest inner product) for each vector; ties: lowest row.

    Example:
        >>> nearest_centroid(np.array([[1.0, 0.1], [0.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])).tolist()
        [1, 0]
    """
    c = np.asarray(centroids, dtype=np.float32)
    out = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), chunk):  # bounded memory on a large memmap
        rows = np.asarray(vectors[start:start + chunk], dtype=np.float32)
        out[start:start + len(rows)] = np.argmax(rows @ c.T, axis=1)
    return out


def cluster_labels(vectors: np.ndarray, k: int, *, seed: int, niter: int = 25) -> np.ndarray:
    """Cluster of each row of ``vectors`` under :func:`spherical_kmeans` with ``k`` centroids.

    Rows are scaled to unit length first (a zero row stays zero), so callers that pass raw or
    normalised embeddings of the same texts get the same clusters. ``k`` is capped at the number
    of rows (FAISS needs at least one row per centroid); a cluster that ends up with no row simply
    has no label.
    """
    rows = np.asarray(vectors, dtype=np.float32)
    rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    k = max(1, min(int(k), len(rows)))
    if k == 1:
        return np.zeros(len(rows), dtype=np.int64)
    return nearest_centroid(rows, spherical_kmeans(rows, k, seed=seed, niter=niter))
