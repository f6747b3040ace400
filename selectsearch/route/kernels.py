"""Compiled arithmetic of query routing (numba): a routed query pays a few calls, not dozens.

Why. A server routes one query at a time. Written in numpy, the fused router's arithmetic
(the ``knn`` router's nearest logged queries and their mix, ``centroid``'s gathered rows, the
standardisation of each fused router's scores) is a few dozen numpy calls per query, each costing
microseconds of argument handling whatever the size of its arrays: 0.36 ms of CPU per query on
SciFact + 200k Wikipedia (32 shards), 83% of the BM25 search it routes
(``eval/results/routing/cost-sfwiki32.md``), while the same arithmetic for 300 queries in one
batch costs 0.08 ms per query. These kernels do the arithmetic of one query in one compiled
loop, reading each table once.

Each kernel loops over the queries of a batch and treats every query alike, so a query gets the
same bits alone and in any batch (the routers' tests check it). Compiled on first use with the
argument types seen, and cached on disk (``NUMBA_CACHE_DIR``, by default ``numba/`` in
:func:`selectsearch.settings.cache_dir`), so a new process loads them in milliseconds.

Floating point: the knn dot products are summed in float32 with reassociation allowed (SIMD), as
BLAS sums them in an order of its own (the same order for a query alone and in a batch); every
other sum runs left to right.
"""

from __future__ import annotations

import os

import numpy as np

from selectsearch.settings import cache_dir

# numba reads its cache folder at import; one inside the source tree (its default for an editable
# install) is the working tree, so the project's cache folder is the default here
os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba"))

import numba  # after the cache folder is chosen
from numba.core import config as _numba_config

if not getattr(_numba_config, "CACHE_DIR", ""):  # numba was imported before, without a cache folder
    setattr(_numba_config, "CACHE_DIR", str(cache_dir() / "numba"))  # noqa: B010 - not in its type stubs

__all__ = ["centroid_scores", "knn_mix", "standardise_rows"]

#: float flags of the dot products: reassociation lets LLVM vectorise the sums (no NaN/inf assumptions)
_DOT_MATH = {"reassoc", "contract"}


#: queries whose similarities are computed together (the KB is read once per block, as a matrix
#: product reads it; a block's vectors stay in cache)
_BLOCK = 64


@numba.njit(cache=True, nogil=True, fastmath=_DOT_MATH)
def _dot(a: np.ndarray, b: np.ndarray) -> np.float32:
    acc = np.float32(0.0)
    for c in range(len(a)):
        acc += a[c] * b[c]
    return acc


@numba.njit(cache=True, nogil=True, fastmath=_DOT_MATH)
def _dot4(kb: np.ndarray, j: int, q: np.ndarray, out: np.ndarray) -> None:
    """``out[j:j+4]`` = the dot products of KB rows ``j .. j+3`` with ``q`` (one pass over ``q``)."""
    a0 = a1 = a2 = a3 = np.float32(0.0)
    for c in range(len(q)):
        v = q[c]
        a0 += kb[j, c] * v
        a1 += kb[j + 1, c] * v
        a2 += kb[j + 2, c] * v
        a3 += kb[j + 3, c] * v
    out[j], out[j + 1], out[j + 2], out[j + 3] = a0, a1, a2, a3


@numba.njit(cache=True, nogil=True)
def _unit_rows(queries: np.ndarray) -> np.ndarray:
    n, d = queries.shape
    out = np.empty((n, d), np.float32)
    for i in range(n):
        norm = _dot(queries[i], queries[i])
        scale = np.float32(1.0) / max(np.sqrt(norm), np.float32(1e-12))
        for c in range(d):
            out[i, c] = queries[i, c] * scale
    return out


@numba.njit(cache=True, nogil=True)
def _mth_largest(values: np.ndarray, m: int) -> float:
    """The ``m``-th largest of ``values`` (``1 <= m <= len(values)``), from a min-heap of the ``m``
    largest seen (as fast here as numba's ``np.partition``, which takes 7 s to compile)."""
    heap = np.empty(m, values.dtype)
    for j in range(m):
        heap[j] = values[j]
    for start in range(m // 2 - 1, -1, -1):
        _sift_down(heap, start)
    for j in range(m, len(values)):
        if values[j] > heap[0]:
            heap[0] = values[j]
            _sift_down(heap, 0)
    return heap[0]


@numba.njit(cache=True, nogil=True)
def _sift_down(heap: np.ndarray, p: int) -> None:
    """Restore the min-heap order below ``heap[p]``."""
    n = len(heap)
    v = heap[p]
    while True:
        c = 2 * p + 1
        if c >= n:
            break
        if c + 1 < n and heap[c + 1] < heap[c]:
            c += 1
        if heap[c] >= v:
            break
        heap[p] = heap[c]
        p = c
    heap[p] = v


@numba.njit(cache=True, nogil=True)
def _nearest(sims: np.ndarray, m: int) -> np.ndarray:
    """Rows of the ``m`` largest ``sims``, in increasing row order; of rows with the m-th largest
    value, the lowest are taken."""
    n = len(sims)
    if m >= n:
        return np.arange(n)
    threshold = _mth_largest(sims, m)
    picked = np.empty(m, np.int64)
    above = 0
    for j in range(n):
        above += sims[j] > threshold
    ties = m - above  # rows equal to the threshold that are taken, lowest first
    count = 0
    for j in range(n):
        v = sims[j]
        if v > threshold or (v == threshold and ties > 0):
            if v == threshold:
                ties -= 1
            picked[count] = j
            count += 1
    return picked


@numba.njit(cache=True, nogil=True)
def _mean_of_largest(values: np.ndarray, n: int) -> float:
    """Mean of the ``n`` largest ``values`` (``1 <= n <= len(values)``), summed largest first."""
    best = np.full(n, -np.inf)
    for v in values:
        if v > best[n - 1]:  # insert, keeping best in decreasing order
            p = n - 1
            while p > 0 and best[p - 1] < v:
                best[p] = best[p - 1]
                p -= 1
            best[p] = v
    total = 0.0
    for a in range(n):
        total += best[a]
    return total / n


@numba.njit(cache=True, nogil=True)
def knn_mix(queries: np.ndarray, kb: np.ndarray, distributions: np.ndarray, k: int, temperature: float,
            n_familiar: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the softmax-weighted mix of its ``k`` nearest KB rows' shard distributions, and
    the mean cosine similarity of its ``n_familiar`` nearest rows (its familiarity).

    Args:
        queries: ``(n, d)`` float32 query vectors (normalised here; a zero vector stays zero).
        kb: ``(N, d)`` float32 unit rows (the logged queries), ``N >= 1``.
        distributions: ``(N, K)`` float64 shard distributions of the KB rows.
        k, n_familiar: neighbours mixed / averaged for the familiarity (each capped at ``N``).
        temperature: softmax temperature over the neighbours' similarities (> 0).

    Returns:
        ``(n, K)`` float64 scores and ``(n,)`` float64 familiarity. Neighbours are the largest
        similarities; of rows tied at the last place, the lowest are taken; the mix is summed in
        KB row order.
    """
    n = queries.shape[0]
    n_kb, n_shards = distributions.shape
    kk, nf = min(k, n_kb), min(n_familiar, n_kb)
    scores = np.zeros((n, n_shards))
    fam = np.zeros(n)
    unit = _unit_rows(queries)
    sims = np.empty((_BLOCK, n_kb), np.float32)
    weights = np.empty(kk)
    for first in range(0, n, _BLOCK):
        last = min(first + _BLOCK, n)
        # every (query, row) similarity is the same dot product whatever the block holds
        whole = n_kb - n_kb % 4
        for j in range(0, whole, 4):
            for i in range(first, last):
                _dot4(kb, j, unit[i], sims[i - first])
        for j in range(whole, n_kb):
            for i in range(first, last):
                sims[i - first, j] = _dot(kb[j], unit[i])
        for i in range(first, last):
            row_sims = sims[i - first]
            fam[i] = _mean_of_largest(row_sims, nf)
            # softmax over the kk nearest (in row order), then their distributions mixed
            mixed = _nearest(row_sims, kk)
            top = -np.inf
            for a in range(kk):
                top = max(top, row_sims[mixed[a]] / temperature)
            wsum = 0.0
            for a in range(kk):
                weights[a] = np.exp(row_sims[mixed[a]] / temperature - top)
                wsum += weights[a]
            for a in range(kk):
                row = mixed[a]
                w = weights[a] / wsum
                for s in range(n_shards):
                    scores[i, s] += w * distributions[row, s]
    return scores, fam


@numba.njit(cache=True, nogil=True)
def centroid_scores(term_ids: np.ndarray, counts: np.ndarray, starts: np.ndarray, idf: np.ndarray,
                    log_tf: np.ndarray, centroids_t: np.ndarray) -> np.ndarray:
    """Per text ``i`` (its entries ``starts[i]:starts[i + 1]``): the cosine of its sublinear TF-IDF
    vector with every centroid, ``(n, K)`` float32; zeros for a text without terms.

    Args:
        term_ids: term ids of every text's entries, each text's in the order they are summed.
        counts: how often each entry's term occurs in its text (>= 1).
        starts: ``(n + 1,)`` offsets of each text's entries.
        idf: ``(vocabulary,)`` float32 idf.
        log_tf: float32 ``1 + log(tf)`` by tf, for the counts below its length (others are
            computed, with the same float32 rounding one value at a time).
        centroids_t: ``(vocabulary, K)`` float32 unit centroids, transposed.
    """
    n = len(starts) - 1
    n_shards = centroids_t.shape[1]
    out = np.zeros((n, n_shards), np.float32)
    for i in range(n):
        lo, hi = starts[i], starts[i + 1]
        if hi == lo:
            continue
        weights = np.empty(hi - lo, np.float32)
        norm = np.float32(0.0)
        for e in range(lo, hi):
            tf = counts[e]
            sub = log_tf[tf] if tf < len(log_tf) else np.float32(1.0) + np.log(np.float32(tf))
            w = sub * idf[term_ids[e]]
            weights[e - lo] = w
            norm += w * w
        norm = np.sqrt(norm)
        for e in range(lo, hi):
            w = weights[e - lo] / norm
            row = term_ids[e]
            for s in range(n_shards):
                out[i, s] += w * centroids_t[row, s]
    return out


@numba.njit(cache=True, nogil=True)
def standardise_rows(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores (population standard deviation) of ``(n, K)`` float64 scores, summed left
    to right. A row of one value throughout becomes zeros whatever the value (checked exactly:
    its computed mean may miss the value by a rounding, which would make ``+-1`` of nothing), as
    does a row whose standard deviation is at most 1e-12."""
    n, n_shards = scores.shape
    out = np.zeros((n, n_shards))
    for i in range(n):
        lo = hi = scores[i, 0]
        mean = 0.0
        for s in range(n_shards):
            v = scores[i, s]
            lo, hi = min(lo, v), max(hi, v)
            mean += v
        if lo == hi:
            continue
        mean /= n_shards
        var = 0.0
        for s in range(n_shards):
            var += (scores[i, s] - mean) ** 2
        std = np.sqrt(var / n_shards)
        if std > 1e-12:
            for s in range(n_shards):
                out[i, s] = (scores[i, s] - mean) / std
    return out
