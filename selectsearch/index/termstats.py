"""Per-shard term statistics for Taily and CORI, built once and cached in ``<index>/termstats/``.

They are read from the shards' Lucene postings by the compiled Java helper
(``selectsearch.TermStatsBuilder``: two passes over the postings); without ``javac`` every
stored document is analysed in Python instead with the same Anserini analyzer as the Lucene index
(the same terms and counts, bit for bit; 3x slower at 205k documents, and the first ``eval`` of a
1M-document index took +53 s this way against +9 s from the postings). Either way the terms are
the indexed, stemmed terms. For each (shard, term) we keep the document frequency and the sum
and sum of squares of the term's BM25 contribution in the documents containing it, computed
with collection-wide idf and average length (``s_t(d) = idf(t) * tf (k1+1) / (tf + k1 (1 - b + b
dl/avgdl))``), plus each shard's total term count. Built atomically like the index itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.atomic import building
from selectsearch.errors import CorruptIndexError
from selectsearch.lucene.params import DEFAULT_ANALYZER_CLASS

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["Analyzer", "TermStats", "build_term_stats", "dense_columns", "ensure_term_stats"]

log = logging.getLogger(__name__)


class Analyzer:
    """An Anserini analyzer from Python: by default the default English analyzer every build
    indexes with; pass ``index.manifest.analyzer_class`` for the one an index recorded."""

    def __init__(self, java_class: str = DEFAULT_ANALYZER_CLASS) -> None:
        from selectsearch.lucene.java_helpers import TERMS_CLASS
        from selectsearch.lucene.jvm import JNI_LOCK, jclass, optional_jclass

        self._lock = JNI_LOCK  # pyjnius calls are not thread-safe (see JNI_LOCK)
        self._utils = jclass("io.anserini.analysis.AnalyzerUtils")
        self._terms = optional_jclass(TERMS_CLASS)  # one JNI string per text; None: read the list
        self._analyzer = jclass(java_class).newDefaultInstance()

    @property
    def java(self) -> Any:
        """The Java analyzer object (for Java code that analyses queries itself)."""
        return self._analyzer

    def __call__(self, text: str) -> list[str]:
        with self._lock:
            if self._terms is not None:
                joined = str(self._terms.joined(self._analyzer, text))
                return joined.split(" ") if joined else []
            return [str(t) for t in self._utils.analyze(self._analyzer, text).toArray()]


@dataclass
class TermStats:
    """Loaded statistics. ``df``/``sum``/``sumsq`` are ``(K, V)`` sparse CSR matrices."""

    vocabulary: dict[str, int]
    df: Any
    score_sum: Any
    score_sumsq: Any
    shard_tokens: np.ndarray
    shard_docs: np.ndarray
    config: dict[str, Any]
    #: Java class of the analyzer the index (and so these statistics) used: analyse queries with it
    analyzer_class: str = DEFAULT_ANALYZER_CLASS

    def term_ids(self, terms: Sequence[str]) -> np.ndarray:
        """Ids of the known terms among ``terms`` (repeats kept, unknown dropped)."""
        return np.asarray([self.vocabulary[t] for t in terms if t in self.vocabulary], dtype=np.int64)

    def columns(self, term_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dense ``(K, len(term_ids))`` df, score sum and score sum-of-squares."""
        return (self.df_columns(term_ids), _dense_columns(self.score_sum, term_ids),
                _dense_columns(self.score_sumsq, term_ids))

    def df_columns(self, term_ids: np.ndarray) -> np.ndarray:
        """Dense ``(K, len(term_ids))`` document frequencies (what CORI reads)."""
        return _dense_columns(self.df, term_ids)


def _dense_columns(matrix: Any, term_ids: np.ndarray) -> np.ndarray:
    """``matrix[:, term_ids].toarray()`` for a CSC matrix, read straight from its arrays.

    Routing runs this for every query; scipy's fancy indexing costs about 40 µs per call
    (dtype checks, a new sparse matrix), this a few µs for a short query.
    """
    return dense_columns(matrix.indptr, matrix.indices, matrix.data, term_ids, matrix.shape[0])


def dense_columns(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, term_ids: np.ndarray, rows: int,
                  fill: float = 0.0) -> np.ndarray:
    """Columns ``term_ids`` of a CSC matrix (``indptr``/``indices``/``data``) as a dense
    ``(rows, len(term_ids))`` array, ``fill`` where nothing is stored.

    One gather for all columns (the stored entries of every column located with a multi-range
    ``arange``) instead of a numpy slice and assignment per query term: a fixed handful of
    numpy calls whatever the query's length.

    Example:
        >>> indptr, indices, data = np.array([0, 1, 3]), np.array([1, 0, 1]), np.array([5.0, 6.0, 7.0])
        >>> dense_columns(indptr, indices, data, np.array([1, 0]), 2).tolist()
        [[6.0, 0.0], [7.0, 5.0]]
    """
    term_ids = np.asarray(term_ids, dtype=np.int64)
    out = np.full((rows, len(term_ids)), fill, dtype=data.dtype)
    lo = indptr[term_ids]
    counts = indptr[term_ids + 1] - lo
    total = int(counts.sum())
    if total:
        starts = np.cumsum(counts) - counts  # where each column's entries begin in the gather
        pos = np.arange(total) + np.repeat(lo - starts, counts)
        out[indices[pos], np.repeat(np.arange(len(term_ids)), counts)] = data[pos]
    return out


def build_term_stats(index: ShardedIndex, *, k1: float | None = None, b: float | None = None,
                     progress: bool = False, java: bool = True) -> Path:
    """Write ``<index>/termstats``: from the shards' postings in Java, or (``java=False``, or
    without the compiled helper) by analysing every stored document in Python.

    ``k1``, ``b``: BM25 parameters (default: the index's, as its manifest records them).
    """
    k1 = index.manifest.bm25.k1 if k1 is None else k1
    b = index.manifest.bm25.b if b is None else b
    final = index.path / "termstats"
    with building(final) as partial:
        if not (java and _java_term_stats(index, k1, b, partial)):
            _python_term_stats(index, k1, b, partial, progress)
    return final


def _java_term_stats(index: ShardedIndex, k1: float, b: float, out: Path) -> bool:
    """The statistics from the postings by ``selectsearch.TermStatsBuilder``; False without it."""
    from scipy import sparse

    from selectsearch.lucene.indexer import CONTENTS_FIELD, is_java_exception, java_problem
    from selectsearch.lucene.java_helpers import TERMSTATS_CLASS
    from selectsearch.lucene.jvm import JNI_LOCK, optional_jclass, start_jvm

    start_jvm()
    builder = optional_jclass(TERMSTATS_CLASS)
    if builder is None:
        return False
    shards = index.lucene_shards
    folders = [index.shard_path(s) / "lucene" for s in shards]
    try:
        with JNI_LOCK:
            summary = str(builder.build([str(f) for f in folders], shards, CONTENTS_FIELD, float(k1), float(b),
                                        str(out)))
    except Exception as exc:  # jnius raises JavaException (an Exception) for any Java throwable
        if not is_java_exception(exc):
            raise
        damaged = next((f for f in folders if f.name in str(exc) or str(f) in str(exc)), index.path)
        raise CorruptIndexError(f"cannot read the term statistics of {index.path}: {java_problem(damaged, exc)}; "
                                "the index is damaged — `selectsearch verify INDEX` lists every problem") from None
    _, n_terms_text, avgdl_text = summary.split("\t")
    n_terms = int(n_terms_text)
    entries = np.fromfile(out / "entries.bin", dtype=np.dtype([("shard", ">i4"), ("term", ">i4"), ("df", ">f4"),
                                                                ("sum", ">f4"), ("sumsq", ">f4")]))
    shape = (index.n_shards, n_terms)
    for name, column in (("df", "df"), ("score_sum", "sum"), ("score_sumsq", "sumsq")):
        matrix = sparse.csr_matrix((entries[column].astype(np.float32), (entries["shard"], entries["term"])),
                                   shape=shape)
        sparse.save_npz(out / f"{name}.npz", matrix)
    shard_tokens = np.zeros(index.n_shards, np.int64)
    shard_tokens[shards] = np.fromfile(out / "shards.bin", dtype=">i8")
    np.save(out / "shard_tokens.npy", shard_tokens)
    (out / "entries.bin").unlink()
    (out / "shards.bin").unlink()
    (out / "config.json").write_text(json.dumps({"k1": k1, "b": b, "avgdl": float(avgdl_text), "n_terms": n_terms,
                                                 "n_docs": int(index.n_docs), "source": "postings"}))
    return True


def _python_term_stats(index: ShardedIndex, k1: float, b: float, out: Path, progress: bool) -> None:
    """The statistics by analysing every stored document (the path without the Java helper)."""
    from scipy import sparse
    from tqdm import tqdm

    analyzer = Analyzer(index.manifest.analyzer_class)
    vocabulary: dict[str, int] = {}
    postings: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per shard: term ids, tf, doc length
    shard_tokens = np.zeros(index.n_shards, np.int64)
    with tqdm(total=index.n_docs, desc="term stats", unit="doc", disable=not progress) as bar:
        for shard in range(index.n_shards):
            terms_col: list[int] = []
            tf_col: list[int] = []
            dl_col: list[int] = []
            path = index.shard_path(shard) / "docs" / "docs.jsonl"
            if path.exists():
                with path.open("rb") as f:
                    for line in f:
                        tokens = analyzer(json.loads(line)["contents"])
                        counts: dict[int, int] = {}
                        for tok in tokens:
                            tid = vocabulary.setdefault(tok, len(vocabulary))
                            counts[tid] = counts.get(tid, 0) + 1
                        terms_col.extend(counts.keys())
                        tf_col.extend(counts.values())
                        dl_col.extend([len(tokens)] * len(counts))
                        shard_tokens[shard] += len(tokens)
                        bar.update(1)
            postings.append((np.asarray(terms_col, np.int64), np.asarray(tf_col, np.float64),
                             np.asarray(dl_col, np.float64)))
    n_terms = len(vocabulary)
    n_docs = float(index.n_docs)
    global_df = np.zeros(n_terms, np.float64)
    for terms, _, _ in postings:
        global_df += np.bincount(terms, minlength=n_terms)
    idf = np.log(1.0 + (n_docs - global_df + 0.5) / (global_df + 0.5))
    avgdl = shard_tokens.sum() / max(n_docs, 1.0)
    rows_df, rows_sum, rows_sq = [], [], []
    for terms, tf, dl in postings:
        score = idf[terms] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)) if len(terms) else np.empty(0)
        rows_df.append(sparse.csr_matrix(np.bincount(terms, minlength=n_terms).astype(np.float32)))
        rows_sum.append(sparse.csr_matrix(np.bincount(terms, weights=score, minlength=n_terms).astype(np.float32)))
        rows_sq.append(sparse.csr_matrix(np.bincount(terms, weights=score**2, minlength=n_terms).astype(np.float32)))
    sparse.save_npz(out / "df.npz", sparse.vstack(rows_df).tocsr())
    sparse.save_npz(out / "score_sum.npz", sparse.vstack(rows_sum).tocsr())
    sparse.save_npz(out / "score_sumsq.npz", sparse.vstack(rows_sq).tocsr())
    np.save(out / "shard_tokens.npy", shard_tokens)
    terms_sorted = sorted(vocabulary, key=vocabulary.__getitem__)
    (out / "vocabulary.txt").write_text("\n".join(terms_sorted) + "\n", encoding="utf-8")
    (out / "config.json").write_text(json.dumps({"k1": k1, "b": b, "avgdl": float(avgdl), "n_terms": n_terms,
                                                 "n_docs": int(n_docs), "source": "stored documents"}))


def ensure_term_stats(index: ShardedIndex, *, progress: bool = False) -> TermStats:
    """Load ``<index>/termstats``, building it first if missing."""
    from scipy import sparse

    folder = index.path / "termstats"
    if not (folder / "config.json").exists():
        log.info("building per-shard term statistics for %s (once)", index.path)
        build_term_stats(index, progress=progress)
    words = (folder / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    return TermStats(
        vocabulary={w: i for i, w in enumerate(words)},
        df=sparse.load_npz(folder / "df.npz").tocsc(),
        score_sum=sparse.load_npz(folder / "score_sum.npz").tocsc(),
        score_sumsq=sparse.load_npz(folder / "score_sumsq.npz").tocsc(),
        shard_tokens=np.load(folder / "shard_tokens.npy"),
        shard_docs=np.asarray(index.shard_sizes, dtype=np.int64),
        config=json.loads((folder / "config.json").read_text()),
        analyzer_class=index.manifest.analyzer_class,
    )
