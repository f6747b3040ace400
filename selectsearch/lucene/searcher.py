"""BM25 over a set of Lucene shard indexes with collection-wide statistics.

**How scores stay exact across shards.** All shard indexes are opened together under one
Lucene ``MultiReader``. An ``IndexSearcher`` over that reader computes BM25's document
frequencies, document count and average length over *all* shards — exactly the statistics a
single index over the whole collection would have — so a document's score never depends on
which shard holds it or which other shards are searched. Searching a subset of shards adds a
non-scoring ``FILTER`` clause on the ``shard`` field: a shard whose segment lacks the shard's
term yields no scorer, so Lucene skips it entirely and the cost is that of the selected shards
only. Lucene's top-k collector then merges the selected shards' hits in one pass.

We chose this over a global statistics table (which needs a custom ``Similarity`` written in
Java) and over re-scoring from document vectors (slow): it reuses Lucene's own BM25 and
dynamic pruning unchanged, and ``search all shards`` is byte-for-byte single-index BM25. The
shards remain separate Lucene indexes that can also be opened (and distributed) on their own.

Hits cross the JNI boundary as (global Lucene docid, float score) pairs only; mapping docids to
string ids happens in numpy on the Python side, which is what makes us faster than
``LuceneSearcher.batch_search`` at large k (it materialises a Java result object per hit).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.lucene.indexer import CONTENTS_FIELD, SHARD_FIELD, open_directory_reader
from selectsearch.lucene.java_helpers import GLOBAL_STATS_CLASS, HITS_CLASS
from selectsearch.lucene.jvm import JNI_LOCK, jclass, optional_jclass
from selectsearch.lucene.params import DEFAULT_ANALYZER_CLASS, DEFAULT_BM25

__all__ = ["ShardedLuceneSearcher"]


class ShardedLuceneSearcher:
    """Search any subset of shard indexes with collection-wide BM25 statistics.

    Args:
        shard_dirs: Lucene index folders, in shard order (shard ``i`` is ``shard_dirs[i]``).
        k1, b: BM25 parameters.
        analyzer: Java class of the query analyzer (the one the shards were indexed with).

    Example:
        >>> s = ShardedLuceneSearcher([Path("idx/shard-000/lucene"), Path("idx/shard-001/lucene")])  # doctest: +SKIP
        >>> docids, scores = s.search("vitamin d", k=10, shards=[1])  # doctest: +SKIP
    """

    def __init__(self, shard_dirs: Sequence[Path], *, k1: float = DEFAULT_BM25.k1, b: float = DEFAULT_BM25.b,
                 analyzer: str = DEFAULT_ANALYZER_CLASS, threads: int = 1) -> None:
        self.shard_dirs = [Path(d) for d in shard_dirs]
        self._readers = [open_directory_reader(d) for d in self.shard_dirs]
        sizes = [int(r.maxDoc()) for r in self._readers]
        self.shard_sizes = np.asarray(sizes, dtype=np.int64)
        #: global docid of the first document of each shard
        self.doc_bases = np.concatenate([[0], np.cumsum(self.shard_sizes)[:-1]]).astype(np.int64)
        multi_reader = jclass("org.apache.lucene.index.MultiReader")(*self._readers)
        from jnius import cast

        self._reader = multi_reader
        searcher_cls = jclass("org.apache.lucene.search.IndexSearcher")
        reader = cast("org.apache.lucene.index.IndexReader", multi_reader)
        if threads > 1:
            # Lucene searches slices of the selected shards' segments concurrently in Java.
            self._executor = jclass("java.util.concurrent.Executors").newFixedThreadPool(int(threads))
            self._searcher = searcher_cls(reader, self._executor)
        else:
            self._executor = None
            self._searcher = searcher_cls(reader)
        self._searcher.setSimilarity(jclass("org.apache.lucene.search.similarities.BM25Similarity")(k1, b))
        self._analyzer = jclass(analyzer).newDefaultInstance()
        self._local = threading.local()
        self._occur = jclass("org.apache.lucene.search.BooleanClause$Occur")
        self._bool_builder = jclass("org.apache.lucene.search.BooleanQuery$Builder")
        self._term_query = jclass("org.apache.lucene.search.TermQuery")
        self._term = jclass("org.apache.lucene.index.Term")
        self._shard_filters: dict[int, Any] = {}
        self._hits: Any = optional_jclass(HITS_CLASS)  # bulk copy of hits; None: one by one
        # searchers over a subset of shards with the collection's statistics (None: filter instead)
        self._global_stats: Any = optional_jclass(GLOBAL_STATS_CLASS) if self._hits is not None else None
        self._term_cache = self._global_stats.newTermCache() if self._global_stats is not None else None
        self._subsets: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._cast = cast

    @property
    def n_shards(self) -> int:
        """Number of shards."""
        return len(self._readers)

    def _query_generator(self) -> Any:
        # BagOfWordsQueryGenerator is cheap; one per thread avoids sharing Java state.
        gen = getattr(self._local, "qgen", None)
        if gen is None:
            gen = self._local.qgen = jclass("io.anserini.search.query.BagOfWordsQueryGenerator")()
        return gen

    def _shard_filter(self, shard: int) -> Any:
        q = self._shard_filters.get(shard)
        if q is None:
            q = self._shard_filters[shard] = self._term_query(self._term(SHARD_FIELD, str(shard)))
        return q

    def build_query(self, text: str, shards: Sequence[int] | None) -> Any:
        """The Lucene query for ``text`` restricted to ``shards`` (``None``: all shards)."""
        query = self._query_generator().buildQuery(CONTENTS_FIELD, self._analyzer, text)
        if shards is None or len(set(shards)) >= self.n_shards:
            return query
        shard_filter = self._bool_builder()
        for s in sorted(set(int(x) for x in shards)):
            shard_filter.add(self._shard_filter(s), self._occur.SHOULD)
        builder = self._bool_builder()
        builder.add(query, self._occur.MUST)
        builder.add(shard_filter.build(), self._occur.FILTER)
        return builder.build()

    def _subset_searcher(self, shards: tuple[int, ...]) -> Any:
        """A cached searcher over ``shards`` that scores with the whole collection's statistics."""
        sub = self._subsets.pop(shards, None)
        if sub is None:
            readers = [self._cast("org.apache.lucene.index.IndexReader", self._readers[i]) for i in shards]
            sub = self._global_stats.over(readers, self._searcher, self._executor, self._term_cache)
            if len(self._subsets) >= 512:
                self._subsets.popitem(last=False)[1].close()
        self._subsets[shards] = sub  # most recently used last
        return sub

    def _search_subset(self, text: str, k: int, shards: list[int]) -> tuple[np.ndarray, np.ndarray]:
        # only the selected shards' segments are touched; docids come back local to the subset
        sub = self._subset_searcher(tuple(shards))
        top = sub.search(self._query_generator().buildQuery(CONTENTS_FIELD, self._analyzer, text), int(k))
        local = np.asarray(self._hits.docs(top), dtype=np.int64)
        scores = np.asarray(self._hits.scores(top), dtype=np.float32)
        sizes = self.shard_sizes[shards]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        which = np.searchsorted(starts, local, side="right") - 1
        return local - starts[which] + self.doc_bases[shards][which], scores

    def search(self, text: str, k: int, shards: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (global docids int64, scores float32), best first, over ``shards``.

        Safe to call from several Python threads: the calls into Java are serialised by
        :data:`~selectsearch.lucene.jvm.JNI_LOCK` (pyjnius is not thread-safe); the searcher's own
        ``threads`` still search a query's shards in parallel in Java.
        """
        with JNI_LOCK:
            return self._search(text, k, shards)

    def _search(self, text: str, k: int, shards: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
        if shards is not None and len(shards) == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        if shards is not None and self._global_stats is not None:
            selected = sorted({int(x) for x in shards})
            if len(selected) < self.n_shards:
                return self._search_subset(text, k, selected)
        top = self._searcher.search(self.build_query(text, shards), int(k))
        if self._hits is not None:
            return (np.asarray(self._hits.docs(top), dtype=np.int64),
                    np.asarray(self._hits.scores(top), dtype=np.float32))
        score_docs = top.scoreDocs
        # two attribute reads per hit is all that crosses JNI; plain lists are the fastest sink
        docids = np.fromiter((sd.doc for sd in score_docs), dtype=np.int64, count=len(score_docs))
        scores = np.fromiter((sd.score for sd in score_docs), dtype=np.float32, count=len(score_docs))
        return docids, scores

    def batch_search(self, texts: Sequence[str], k: int,
                     shards: Sequence[Sequence[int] | None] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`search` for many queries, one after the other.

        Queries are not spread over Python threads on purpose: pyjnius is not safe for
        concurrent calls from several threads (pyjnius issues 287 and 563). Parallelism comes
        from Java instead — pass ``threads`` to the constructor.
        """
        shard_lists: Sequence[Sequence[int] | None] = shards if shards is not None else [None] * len(texts)
        if len(shard_lists) != len(texts):
            raise ValueError(f"{len(texts)} queries but {len(shard_lists)} shard lists")
        return [self.search(t, k, s) for t, s in zip(texts, shard_lists, strict=True)]

    def close(self) -> None:
        """Release the Lucene readers (and the search threads)."""
        for sub in self._subsets.values():
            sub.close()
        self._subsets.clear()
        if self._executor is not None:
            self._executor.shutdown()
        self._reader.close()
