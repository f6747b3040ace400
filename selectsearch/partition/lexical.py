"""``kmeans`` in the lexical space: TF-IDF vectors, k-means fitted on a document sample.

As in Kulkarni & Callan's topical shards: fit k-means on a sample of the collection (cheap, no
neural model), then assign every document to its nearest centroid. We use spherical k-means on
L2-normalised sublinear TF-IDF vectors (cosine similarity), which handles the very different
lengths of documents and queries better than raw Euclidean k-means.

The fitted space (vocabulary, idf, centroids, stop words) is saved as plain files, and
:class:`LexicalSpace.transform` reproduces scikit-learn's ``TfidfVectorizer.transform`` with
numpy/scipy only, so routing a query never imports scikit-learn.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from selectsearch.partition.base import (
    CorpusScan,
    FittedPartition,
    Partitioner,
    QuerySpace,
    register_partition,
)
from selectsearch.types import Document

__all__ = ["LexicalKMeansPartition", "LexicalKMeansPartitioner", "LexicalSpace", "tokenize"]

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str, stop_words: frozenset[str] = frozenset()) -> list[str]:
    """Lower-cased alphanumeric tokens of two or more characters, stop words removed."""
    return [t for t in _TOKEN.findall(text.lower()) if len(t) > 1 and t not in stop_words]


class LexicalSpace(QuerySpace):
    """Sublinear TF-IDF (L2-normalised) over a fixed vocabulary, scored against unit centroids."""

    def __init__(self, vocabulary: list[str], idf: np.ndarray, centroids: np.ndarray,
                 stop_words: frozenset[str]) -> None:
        if idf.shape != (len(vocabulary),) or centroids.shape[1] != len(vocabulary):
            raise ValueError(
                f"vocabulary {len(vocabulary)}, idf {idf.shape}, centroids {centroids.shape} disagree"
            )
        self.vocabulary = vocabulary
        self.index = {t: i for i, t in enumerate(vocabulary)}
        self.idf = idf.astype(np.float32)
        self.centroids = centroids
        self.stop_words = stop_words
        import scipy.sparse  # noqa: F401  (loaded with the space, not on the first routed query)

    @property
    def centroids(self) -> np.ndarray:
        """``(K, vocabulary)`` unit centroids (float32)."""
        return self._centroids

    @centroids.setter
    def centroids(self, value: np.ndarray) -> None:
        self._centroids = np.asarray(value, dtype=np.float32)
        # (vocabulary, K), C-contiguous: a sparse row times the non-contiguous `centroids.T` made
        # scipy copy the whole matrix on every call (K x vocabulary floats: 2.5 ms per query on
        # 32 shards x 290k terms, more than the search it routes)
        self._centroids_t = np.ascontiguousarray(self._centroids.T)

    @property
    def centroids_t(self) -> np.ndarray:
        """``(vocabulary, K)``: :attr:`centroids` transposed, C-contiguous (what products read)."""
        return self._centroids_t

    def transform(self, texts: Sequence[str]) -> Any:
        """``scipy.sparse.csr_matrix`` of L2-normalised sublinear TF-IDF rows.

        Whole batches at once: the texts' term ids are counted together (one ``np.unique`` over
        ``row * vocabulary + term``), so a document costs its tokenisation and one norm, not a
        ``Counter`` and a handful of small numpy calls (1.8x faster on Home Depot's products). The
        weights are :meth:`query_scores`' up to float rounding (a vectorised ``log`` over the
        whole batch, a norm per row).
        """
        from scipy import sparse

        n_terms = len(self.vocabulary)
        index, stop_words = self.index, self.stop_words
        ids: list[int] = []
        lengths = np.zeros(len(texts), np.int64)
        for i, text in enumerate(texts):
            before = len(ids)
            ids.extend([index[t] for t in tokenize(text, stop_words) if t in index])
            lengths[i] = len(ids) - before
        keys, tf = np.unique(np.repeat(np.arange(len(texts), dtype=np.int64), lengths) * n_terms
                             + np.asarray(ids, np.int64), return_counts=True)
        rows, cols = np.divmod(keys, n_terms)
        weights = (1.0 + np.log(tf.astype(np.float32))) * self.idf[cols]
        indptr = np.searchsorted(rows, np.arange(len(texts) + 1))
        for start, end in zip(indptr[:-1].tolist(), indptr[1:].tolist(), strict=True):
            if end > start:
                weights[start:end] /= np.linalg.norm(weights[start:end])
        return sparse.csr_matrix((weights.astype(np.float32, copy=False), cols, indptr),
                                 shape=(len(texts), n_terms))

    def query_scores(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), K)`` cosine of each text's TF-IDF vector with the unit centroids.

        The rows of each text's terms are gathered from the transposed centroids, weighted and
        summed in term-id order (the products and sums of scipy's sparse-times-dense product),
        for the whole batch at once: one router call costs a handful of numpy calls whatever
        the number of texts (a batch of 300 SciFact queries: 24 -> 8 us per query). Every step
        is either elementwise or a reduction over one text's own entries (``np.add.reduceat``),
        and the sublinear tf comes from a fixed table, so a text scores the same alone or in
        any batch (``tests/core/test_partition.py``).
        """
        n_k = self._centroids_t.shape[1]
        out = np.zeros((len(texts), n_k), dtype=np.float32)
        index, stop_words = self.index, self.stop_words
        counts = [Counter(index[t] for t in tokenize(text, stop_words) if t in index) for text in texts]
        rows = [i for i, c in enumerate(counts) if c]
        if not rows:
            return out
        terms = [sorted(counts[i].items()) for i in rows]
        cols = np.array([t for pairs in terms for t, _ in pairs], dtype=np.int64)
        w = _sublinear_tf(np.array([n for pairs in terms for _, n in pairs], dtype=np.int64)) * self.idf[cols]
        if len(rows) == 1:  # one routed query: the same reductions, fewer calls
            starts = _FIRST
            w /= np.sqrt(np.add.reduceat(w * w, starts))
        else:
            lengths = np.array([len(pairs) for pairs in terms])
            starts = np.cumsum(lengths) - lengths
            w /= np.repeat(np.sqrt(np.add.reduceat(w * w, starts)), lengths)
        out[rows] = np.add.reduceat(w[:, None] * self._centroids_t[cols], starts, axis=0)
        return out


#: the start of the only text's entries (see :meth:`LexicalSpace.query_scores`)
_FIRST = np.zeros(1, dtype=np.intp)
#: ``1 + log(tf)`` for tf = 0 .. 4095 (float32; index 0 unused), computed once: a lookup gives
#: every text the same value whatever array it sits in (a vectorised ``log`` may round the last
#: bit of an element differently by its position in a long or short array)
_LOG_TF = (1.0 + np.log(np.maximum(np.arange(4096, dtype=np.float32), 1.0))).astype(np.float32)


def _sublinear_tf(tf: np.ndarray) -> np.ndarray:
    """``1 + log(tf)`` (float32) of positive term counts, from :data:`_LOG_TF` where it reaches."""
    small = tf < len(_LOG_TF)
    if small.all():
        return _LOG_TF[tf]
    out = np.empty(len(tf), np.float32)
    out[small] = _LOG_TF[tf[small]]
    out[~small] = [np.float32(1.0) + np.log(np.float32(t)) for t in tf[~small].tolist()]  # one by one: same rounding
    return out


@register_partition
class LexicalKMeansPartition(FittedPartition):
    """Nearest-centroid assignment in :class:`LexicalSpace`."""

    kind: ClassVar[str] = "kmeans-lexical"

    def __init__(self, space: LexicalSpace, params: dict[str, Any]) -> None:
        self.space = space
        self.n_shards = space.centroids.shape[0]
        self.params = params

    def assign(self, docs: Sequence[Document], positions: np.ndarray) -> np.ndarray:
        # a batch: one sparse product (query_scores is made for one query at a time)
        space = self.space
        scores = np.asarray(space.transform([d.contents for d in docs]) @ space.centroids_t, dtype=np.float32)
        # ties (e.g. an empty document) go to the lowest shard id: argmax is first-max
        return np.argmax(scores, axis=1).astype(np.int32)

    def query_space(self) -> LexicalSpace:
        return self.space

    def save(self, folder: Path) -> dict[str, Any]:
        (folder / "vocabulary.txt").write_text("\n".join(self.space.vocabulary) + "\n", encoding="utf-8")
        (folder / "stop_words.txt").write_text("\n".join(sorted(self.space.stop_words)) + "\n")
        np.save(folder / "idf.npy", self.space.idf)
        np.save(folder / "centroids.npy", self.space.centroids)
        config = {"kind": self.kind, "n_shards": self.n_shards, **self.params}
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        return config

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> LexicalKMeansPartition:
        vocabulary = (folder / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
        stop_words = frozenset((folder / "stop_words.txt").read_text().split())
        space = LexicalSpace(vocabulary, np.load(folder / "idf.npy"), np.load(folder / "centroids.npy"),
                             stop_words)
        params = {k: v for k, v in config.items() if k not in ("kind", "n_shards")}
        return cls(space, params)


@dataclass(frozen=True)
class LexicalKMeansPartitioner(Partitioner):
    """Spherical k-means on TF-IDF vectors of a document sample.

    Args:
        seed: seeds the sample and k-means.
        sample_size: documents sampled to fit the vocabulary, idf and centroids.
        vocab_size: most frequent terms kept (document frequency >= 2, <= 50% of the sample).
        n_init: k-means restarts (best inertia kept).
    """

    seed: int = 0
    sample_size: int = 20_000
    vocab_size: int = 50_000
    n_init: int = 2
    name: ClassVar[str] = "kmeans-lexical"

    def fit(self, scan: CorpusScan, *, n_shards: int, progress: bool = False) -> LexicalKMeansPartition:
        from sklearn.cluster import KMeans
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

        if len(scan.sample) < n_shards:
            from selectsearch.errors import SelectSearchError

            raise SelectSearchError(
                f"k-means needs at least as many documents as shards ({len(scan.sample)} < {n_shards}); "
                "use fewer --shards"
            )
        stop_words = frozenset(ENGLISH_STOP_WORDS)
        vectorizer = TfidfVectorizer(
            tokenizer=lambda t: tokenize(t, stop_words), lowercase=False, token_pattern=None,
            min_df=2 if len(scan.sample) >= 100 else 1, max_df=0.5 if len(scan.sample) >= 100 else 1.0,
            max_features=self.vocab_size, sublinear_tf=True, dtype=np.float32,
        )
        vectorizer.fit([d.contents for d in scan.sample])
        vocabulary = [str(t) for t in vectorizer.get_feature_names_out()]
        idf = vectorizer.idf_.astype(np.float32)
        space = LexicalSpace(vocabulary, idf, np.zeros((n_shards, len(vocabulary)), np.float32), stop_words)
        x = space.transform([d.contents for d in scan.sample])
        km = KMeans(n_clusters=n_shards, n_init=self.n_init, random_state=self.seed, max_iter=100)
        km.fit(x)
        centroids = km.cluster_centers_.astype(np.float32)
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        space.centroids = centroids
        params = {"seed": self.seed, "sample_size": self.sample_size, "vocab_size": len(vocabulary),
                  "n_init": self.n_init, "space": "lexical", "features": "tfidf-sublinear-l2"}
        return LexicalKMeansPartition(space, params)
