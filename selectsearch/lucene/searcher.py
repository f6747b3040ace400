"""BM25 over a set of Lucene shard indexes with collection-wide statistics.

**How scores stay exact across shards.** All shard indexes are opened together under one
Lucene ``MultiReader``. BM25's document frequencies, document count and average length are
taken over *all* shards — exactly the statistics a single index over the whole collection would
have — so a document's score never depends on which shard holds it or which other shards are
searched, and ``search all shards`` is byte-for-byte single-index BM25. The shards remain
separate Lucene indexes that can also be opened (and distributed) on their own.

**The engine.** With the compiled helper (:mod:`selectsearch.lucene.batch_java`, needs a
``javac`` on the machine) a whole batch of queries crosses into Java once: each query is built by
Anserini's ``BagOfWordsQueryGenerator``, its terms are looked up once in each selected shard only,
the selected shards are scored into one top-k heap with Lucene's dynamic pruning, and all hits
come back as one byte buffer of (offsets, global docids, scores) that numpy reads without a copy
per hit. Mapping docids to string ids happens in numpy on the Python side, only for the hits
returned. This is what makes a query's cost follow the postings it scores rather than a fixed
per-query and per-shard overhead (profile: ``eval/results/cost/engine-profile.md``).

**Ties.** Lucene keeps the top k by (score descending, docid ascending), and a docid is only a
position in the shards' layout: of equally scored documents at the k-th place, which ones make
the cut would depend on how the collection was sharded. Given ``tie_ranks`` (each global docid's
rank among the doc id strings; :attr:`~selectsearch.index.sharded.ShardedIndex.doc_id_ranks`,
what :meth:`~selectsearch.index.sharded.ShardedIndex.lucene` passes) the batch engine cuts and
orders by (score descending, doc id ascending) instead — the project's one order
(:mod:`selectsearch.ranking`), the same for any sharding of the same documents and for any k.

**One index.** Separate shard indexes cost one term-dictionary lookup per query term in every
shard searched, and a scorer per term per shard: over 32 shards, half of a k=10 query that
searches them all. ``one_index`` searches a copy of the shards merged into ONE Lucene index in
shard order (``selectsearch index --lucene-ranges``), where a shard is a range of doc ids: a
query term is looked up once, the selected ranges are scored by the same scorer where they follow
each other, and searching every shard is searching one index. Scores and hits are the same
(the statistics are the collection's either way); the shard indexes stay, for distributing, and
for queries that search only a few shards (:data:`SHARD_INDEXES_UP_TO`), which their own indexes
serve a little cheaper.

**Without the helper** (no ``javac``: :mod:`selectsearch.lucene.java_helpers` says where it is
looked for, and a warning says so once) each query is one Lucene search built through pyjnius:
the all-shards ``IndexSearcher`` with a non-scoring ``FILTER`` clause on the ``shard`` field (a
shard whose segment lacks the shard's term yields no scorer, so Lucene skips it), hits read one
by one. About 2.4x slower, same results (with tie ranks it searches deeper while the k-th hit's
score is tied, then cuts by rank).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.errors import CorruptIndexError
from selectsearch.lucene.indexer import CONTENTS_FIELD, ID_FIELD, SHARD_FIELD, open_directory_reader
from selectsearch.lucene.java_helpers import BATCH_CLASS, warn_slow_path
from selectsearch.lucene.jvm import JNI_LOCK, jclass, optional_jclass
from selectsearch.lucene.params import DEFAULT_ANALYZER_CLASS, DEFAULT_BM25

__all__ = ["DF_CACHE_TERMS", "SHARD_INDEXES_UP_TO", "TERM_CACHE_STATES", "BatchHits", "ShardedLuceneSearcher"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchHits:
    """Hits of a batch of queries as flat arrays: query ``i``'s are ``[offsets[i], offsets[i + 1])``,
    best first: score descending, then by tie rank (:attr:`ShardedLuceneSearcher.ties_by_rank`)
    or else by global docid."""

    offsets: np.ndarray  #: int64, ``n + 1`` entries
    docids: np.ndarray  #: int64 global Lucene docids
    scores: np.ndarray  #: float32 BM25 scores

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def query(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(docids, scores)`` of query ``i`` (views, no copy)."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.docids[a:b], self.scores[a:b]

    def split(self) -> list[BatchHits]:
        """One :class:`BatchHits` per query."""
        return [BatchHits(np.asarray([0, len(d)], np.int64), d, sc) for d, sc in map(self.query, range(len(self)))]

    @staticmethod
    def join(parts: Sequence[BatchHits]) -> BatchHits:
        """The queries of ``parts``, in order, as one :class:`BatchHits`."""
        sizes = [int(p.offsets[-1]) for p in parts]
        offsets = [np.asarray([0], np.int64)] + [p.offsets[1:] + base for p, base in
                                                 zip(parts, np.cumsum([0, *sizes[:-1]]), strict=True)]
        return BatchHits(np.concatenate(offsets).astype(np.int64),
                         np.concatenate([p.docids for p in parts]).astype(np.int64, copy=False),
                         np.concatenate([p.scores for p in parts]).astype(np.float32, copy=False))


#: Collection-wide document frequencies kept in Java for subset searches, in terms. A miss costs
#: one term lookup in every shard not searched; the bound keeps memory at a few tens of MB while
#: holding the head of any query stream's (Zipfian) term distribution.
DF_CACHE_TERMS = 1 << 18

#: Per-shard term states of recent query terms kept in Java (one state per term per shard; 0: off,
#: the default). On, a repeated term costs no term-dictionary lookup in any shard — the largest
#: per-shard cost of searching many shards (40% of a k=10 query over 32 shards, profile in
#: ``eval/results/cost/engine-profile.md``); about 100 bytes per state. Off by default because its
#: benefit depends on how often a query stream repeats terms, which a benchmark replaying the same
#: queries overstates; pass ``term_cache`` to turn it on.
TERM_CACHE_STATES = 0

#: With the shards merged into one index (``one_index``), a query searching at most this share of
#: the shards is searched in the shard indexes instead (same hits and scores): at 5M documents a
#: few ranges of the merged index cost 5-15% more than the same shards' own indexes (a larger term
#: dictionary, postings entered far from their start), while from about a tenth of the shards on,
#: the merged index is cheaper (one term lookup instead of one per shard): 21% at 16 of 128 shards,
#: 24-37% at all of them (``eval/serve/one_index_ab.py``; ``eval/results/cost/engine-profile.md``,
#: section 7). 0: always the merged index.
SHARD_INDEXES_UP_TO = 1 / 16


class ShardedLuceneSearcher:
    """Search any subset of shard indexes with collection-wide BM25 statistics.

    Args:
        shard_dirs: Lucene index folders, in shard order (shard ``i`` is ``shard_dirs[i]``).
        k1, b: BM25 parameters.
        analyzer: Java class of the query analyzer (the one the shards were indexed with).
        threads: Java threads that search the selected shards of one query concurrently.
        term_cache: per-shard term states of recent query terms to keep (see :data:`TERM_CACHE_STATES`).
        tie_ranks: rank of each global docid among the doc id strings (``None``: ties by docid,
            Lucene's order); see "Ties" in the module docs.
        one_index: search this ONE Lucene index instead, which holds the shards' documents in shard
            order (:func:`~selectsearch.lucene.indexer.merge_shard_indexes`): shard ``i`` is its doc
            ids ``[doc_bases[i], doc_bases[i] + shard_sizes[i])``. Same hits and scores; each query
            term is looked up once whatever the shards searched (see "One index" in the module docs).
        shard_sizes: documents per shard (needed with ``one_index``; ``shard_dirs`` are then opened
            only for the queries of :data:`SHARD_INDEXES_UP_TO`).
        shard_labels: the value of each shard's documents' ``shard`` field, which the per-query
            path filters on (default ``0 .. n-1``). :meth:`ShardedIndex.lucene` passes the
            manifest's shard numbers: after an empty shard (no Lucene index) they are not the
            searcher's.

    Example:
        >>> s = ShardedLuceneSearcher([Path("idx/shard-000/lucene"), Path("idx/shard-001/lucene")])  # doctest: +SKIP
        >>> docids, scores = s.search("vitamin d", k=10, shards=[1])  # doctest: +SKIP
    """

    def __init__(self, shard_dirs: Sequence[Path], *, k1: float = DEFAULT_BM25.k1, b: float = DEFAULT_BM25.b,
                 analyzer: str = DEFAULT_ANALYZER_CLASS, threads: int = 1,
                 term_cache: int | None = None, tie_ranks: np.ndarray | None = None,
                 one_index: Path | None = None, shard_sizes: Sequence[int] | None = None,
                 shard_labels: Sequence[int] | None = None) -> None:
        self.shard_dirs = [Path(d) for d in shard_dirs]
        labels = range(len(self.shard_dirs)) if shard_labels is None else shard_labels
        if len(labels) != len(self.shard_dirs):
            raise ValueError(f"{len(labels)} shard labels for {len(self.shard_dirs)} shards")
        #: the ``shard`` field value of each shard's documents (see ``shard_labels``)
        self.shard_labels = [str(int(x)) for x in labels]
        #: the one index searched (``None``: the shard indexes, opened together)
        self.one_index = None if one_index is None else Path(one_index)
        if self.one_index is None:
            readers = [open_directory_reader(d) for d in self.shard_dirs]
            sizes = [int(r.maxDoc()) for r in readers]
            opened = jclass("org.apache.lucene.index.MultiReader")(*readers)
        else:
            if shard_sizes is None or len(shard_sizes) != len(self.shard_dirs):
                raise ValueError("one_index needs shard_sizes, one per shard")
            sizes = [int(x) for x in shard_sizes]
            opened = open_directory_reader(self.one_index)
            if int(opened.maxDoc()) != sum(sizes):
                held = int(opened.maxDoc())
                opened.close()
                raise CorruptIndexError(f"{self.one_index} holds {held} documents, its shards {sum(sizes)}; the "
                                        "index is damaged — rebuild it with `selectsearch index ... --overwrite`")
        self.shard_sizes = np.asarray(sizes, dtype=np.int64)
        #: global docid of the first document of each shard
        self.doc_bases = np.concatenate([[0], np.cumsum(self.shard_sizes)[:-1]]).astype(np.int64)
        from jnius import cast

        self._reader = opened
        reader = cast("org.apache.lucene.index.IndexReader", opened)
        similarity = jclass("org.apache.lucene.search.similarities.BM25Similarity")(k1, b)
        self._analyzer = jclass(analyzer).newDefaultInstance()
        self._batch: Any = _open_batch(reader, None if self.one_index is None else sizes, similarity,
                                       self._analyzer, threads)  # None: the per-query path
        #: with one_index: the shard indexes' engine, for queries searching a few shards (see
        #: :data:`SHARD_INDEXES_UP_TO`)
        self._batch_shards: Any = None
        if self._batch is not None and self.one_index is not None and SHARD_INDEXES_UP_TO > 0:
            self._batch_shards = self._open_shard_engine(similarity, threads)
        for engine in self._engines():
            engine.setTermCache(int(TERM_CACHE_STATES if term_cache is None else term_cache))
        self._tie_ranks: np.ndarray | None = None
        self.set_tie_ranks(tie_ranks)
        searcher_cls = jclass("org.apache.lucene.search.IndexSearcher")
        if threads > 1 and self._batch is None:
            # Lucene searches slices of the selected shards' segments concurrently in Java.
            self._executor = jclass("java.util.concurrent.Executors").newFixedThreadPool(int(threads))
            self._searcher = searcher_cls(reader, self._executor)
        else:
            self._executor = None
            self._searcher = searcher_cls(reader)
        self._searcher.setSimilarity(similarity)
        self._local = threading.local()
        self._occur = jclass("org.apache.lucene.search.BooleanClause$Occur")
        self._bool_builder = jclass("org.apache.lucene.search.BooleanQuery$Builder")
        self._term_query = jclass("org.apache.lucene.search.TermQuery")
        self._term = jclass("org.apache.lucene.index.Term")
        self._shard_filters: dict[int, Any] = {}

    def _open_shard_engine(self, similarity: Any, threads: int) -> Any:
        readers = [open_directory_reader(d) for d in self.shard_dirs]
        for d, r, want in zip(self.shard_dirs, readers, self.shard_sizes.tolist(), strict=True):
            if int(r.maxDoc()) != want:
                got = int(r.maxDoc())
                for x in readers:
                    x.close()
                raise CorruptIndexError(f"{d} holds {got} documents, the shard {want}; the index is damaged — "
                                        "rebuild it with `selectsearch index ... --overwrite`")
        from jnius import cast

        self._shard_reader = jclass("org.apache.lucene.index.MultiReader")(*readers)
        return _open_batch(cast("org.apache.lucene.index.IndexReader", self._shard_reader), None, similarity,
                           self._analyzer, threads)

    def _engines(self) -> list[Any]:
        return [e for e in (self._batch, self._batch_shards) if e is not None]

    def _engine(self, shards: int | None) -> Any:
        """The engine for a query searching ``shards`` shards (``None``: all): see :data:`SHARD_INDEXES_UP_TO`."""
        if self._batch_shards is not None and shards is not None and shards <= SHARD_INDEXES_UP_TO * self.n_shards:
            return self._batch_shards
        return self._batch

    @property
    def n_shards(self) -> int:
        """Number of shards."""
        return len(self.shard_sizes)

    def set_tie_ranks(self, tie_ranks: np.ndarray | None) -> None:
        """Cut and order tied hits by ``tie_ranks`` (one per global docid; ``None``: by docid).

        Raises:
            ValueError: not one rank per document of the shards.
        """
        if tie_ranks is None:
            self._tie_ranks = None
        else:
            ranks = np.asarray(tie_ranks, dtype=np.int32)
            if ranks.shape != (int(self.shard_sizes.sum()),):
                raise ValueError(f"tie_ranks has shape {ranks.shape}, the shards hold {int(self.shard_sizes.sum())} "
                                 "documents")
            self._tie_ranks = ranks
        if self._batch is not None:
            with JNI_LOCK:
                raw = None if self._tie_ranks is None else self._tie_ranks.astype("<i4", copy=False).tobytes()
                for engine in self._engines():
                    engine.setTieRanks(raw)

    @property
    def ties_by_rank(self) -> bool:
        """Whether hits are cut and ordered by tie rank on equal scores (else by docid, Lucene's order)."""
        return self._tie_ranks is not None

    @property
    def batched(self) -> bool:
        """Whether queries are searched by the compiled Java batch engine (else one by one)."""
        return self._batch is not None

    def _query_generator(self) -> Any:
        # BagOfWordsQueryGenerator is cheap; one per thread avoids sharing Java state.
        gen = getattr(self._local, "qgen", None)
        if gen is None:
            gen = self._local.qgen = jclass("io.anserini.search.query.BagOfWordsQueryGenerator")()
        return gen

    def _shard_filter(self, shard: int) -> Any:
        q = self._shard_filters.get(shard)
        if q is None:
            q = self._shard_filters[shard] = self._term_query(self._term(SHARD_FIELD, self.shard_labels[shard]))
        return q

    def build_query(self, text: str, shards: Sequence[int] | None) -> Any:
        """The Lucene query for ``text`` restricted to ``shards`` (``None``: all shards), as the
        per-query path searches it."""
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

    def search(self, text: str, k: int, shards: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (global docids int64, scores float32), best first, over ``shards`` (``None``: all).

        Safe to call from several Python threads: the calls into Java are serialised by
        :data:`~selectsearch.lucene.jvm.JNI_LOCK` (pyjnius is not thread-safe); the searcher's own
        ``threads`` still search a query's shards in parallel in Java.
        """
        docids, scores = self.search_batch([text], k, [shards]).query(0)
        return docids, scores

    def batch_search(self, texts: Sequence[str], k: int,
                     shards: Sequence[Sequence[int] | None] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`search` for many queries: ``[(docids, scores), ...]`` in input order."""
        hits = self.search_batch(texts, k, shards)
        return [hits.query(i) for i in range(len(texts))]

    def search_batch(self, texts: Sequence[str], k: int,
                     shards: Sequence[Sequence[int] | None] | None = None) -> BatchHits:
        """Top ``k`` of every query over its own shards (``shards[i]``; ``None``: all shards), as
        flat arrays. With the compiled helper the whole batch is one call into Java.

        Queries are not spread over Python threads on purpose: pyjnius is not safe for
        concurrent calls from several threads (pyjnius issues 287 and 563). Parallelism comes
        from Java instead — pass ``threads`` to the constructor.

        Raises:
            ValueError: ``shards`` and ``texts`` differ in length, or a shard number is out of range.
        """
        shard_lists: Sequence[Sequence[int] | None] = shards if shards is not None else [None] * len(texts)
        if len(shard_lists) != len(texts):
            raise ValueError(f"{len(texts)} queries but {len(shard_lists)} shard lists")
        selected = [None if s is None else self._checked(s) for s in shard_lists]
        if not texts or k < 1:
            return BatchHits(np.zeros(len(texts) + 1, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
        with JNI_LOCK:
            if self._batch is not None:
                return self._search_batched(list(texts), int(k), selected)
            parts = [self._search_ranked(t, int(k), s) for t, s in zip(texts, selected, strict=True)]
        sizes = [len(d) for d, _ in parts]
        return BatchHits(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                         np.concatenate([d for d, _ in parts]).astype(np.int64, copy=False),
                         np.concatenate([sc for _, sc in parts]).astype(np.float32, copy=False))

    def search_routed(self, text: str, scorer: Any, budget: int, engine_shard: Sequence[int], k: int
                      ) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray] | None:
        """Route ``text`` by a router that scores in Java (``scorer``: a ``selectsearch.CoriScorer``)
        and search the ``budget`` shards it ranks best, in ONE call into Java: ``(docids, scores,
        the chosen shards best first, the router's score of every shard)``; ``None`` without the
        compiled engine. ``engine_shard[s]`` is router shard ``s``'s number in this searcher (-1:
        an empty shard, chosen but with nothing to search).

        The shards chosen are those of ranking the scores in Python (score descending, then shard
        id; :func:`~selectsearch.ranking.rank_by_scores`) and the hits those of :meth:`search_batch`.
        """
        if self._batch is None:
            return None
        with JNI_LOCK:
            engine = self._engine(int(budget))
            raw = engine.searchRouted(text, scorer, int(budget), list(engine_shard), int(k)).tostring()
        hits, end = _decode_hits(raw, 1)
        chosen = min(int(budget), len(engine_shard))
        shards = np.frombuffer(raw, dtype="<i4", count=chosen, offset=end).tolist()
        router_scores = np.frombuffer(raw, dtype="<f8", count=len(engine_shard), offset=end + 4 * chosen)
        return hits.docids, hits.scores, shards, router_scores.astype(np.float64)

    def _checked(self, shards: Sequence[int]) -> list[int]:
        out = [int(x) for x in shards]
        if out and (min(out) < 0 or max(out) >= self.n_shards):
            raise ValueError(f"shard numbers must be in [0, {self.n_shards}), got {sorted(set(out))}")
        return out

    def _search_batched(self, texts: list[str], k: int, selected: list[list[int] | None]) -> BatchHits:
        engines = [self._engine(None if s is None else len(set(s))) for s in selected]
        if any(e is not engines[0] for e in engines):  # some queries on each engine: one call each
            parts: dict[int, BatchHits] = {}
            for engine in self._engines():
                mine = [i for i, e in enumerate(engines) if e is engine]
                parts.update(zip(mine, self._search_on(engine, [texts[i] for i in mine], k,
                                                       [selected[i] for i in mine]).split(), strict=True))
            return BatchHits.join([parts[i] for i in range(len(texts))])
        return self._search_on(engines[0], texts, k, selected)

    def _search_on(self, engine: Any, texts: list[str], k: int, selected: list[list[int] | None]) -> BatchHits:
        n = len(texts)
        if n == 1:  # one query: no String[] and offsets to build across JNI
            raw = engine.searchQuery(texts[0], selected[0], k).tostring()
        elif all(s is None for s in selected):
            raw = engine.search(texts, None, None, k).tostring()
        else:
            every = list(range(self.n_shards))
            lists = [every if s is None else s for s in selected]
            offsets = np.concatenate([[0], np.cumsum([len(s) for s in lists])]).tolist()
            flat = [x for s in lists for x in s]
            raw = engine.search(texts, offsets, flat, k).tostring()
        return _decode_hits(raw, n)[0]

    def _search_ranked(self, text: str, k: int, shards: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """The per-query path's top ``k`` cut by tie rank: Lucene cuts by docid, so it searches
        one hit deeper, and deeper again while the last hit ties with the k-th, then re-cuts."""
        if self._tie_ranks is None:
            return self._search_one(text, k, shards)
        want = k + 1
        while True:
            docids, scores = self._search_one(text, want, shards)
            if len(docids) < want or scores[-1] < scores[k - 1]:
                break
            want *= 2
        order = np.lexsort((self._tie_ranks[docids], -scores))[:k]
        return docids[order], scores[order]

    def _search_one(self, text: str, k: int, shards: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """The per-query path (no compiled helper): one pyjnius search, hits read one by one."""
        if shards is not None and len(shards) == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        top = self._searcher.search(self.build_query(text, shards), int(k))
        score_docs = top.scoreDocs
        # two attribute reads per hit is all that crosses JNI; plain lists are the fastest sink
        docids = np.fromiter((sd.doc for sd in score_docs), dtype=np.int64, count=len(score_docs))
        scores = np.fromiter((sd.score for sd in score_docs), dtype=np.float32, count=len(score_docs))
        return docids, scores

    def stored_ids(self, docids: Sequence[int]) -> list[str]:
        """The ``id`` field stored with each global docid (one Lucene stored-fields read each)."""
        with JNI_LOCK:
            fields = self._reader.storedFields()
            return [str(fields.document(int(d)).get(ID_FIELD)) for d in docids]

    def close(self) -> None:
        """Release the Lucene readers (and the search threads)."""
        for engine in self._engines():
            engine.close()
        if self._batch_shards is not None:
            self._shard_reader.close()
        if self._executor is not None:
            self._executor.shutdown()
        self._reader.close()


def _decode_hits(raw: bytes, n: int) -> tuple[BatchHits, int]:
    """The hits of ``n`` queries from the Java engine's buffer (``BatchSearch.search``'s format:
    int32 offsets, int32 global docids, float32 scores), and the byte offset where they end."""
    ends = np.frombuffer(raw, dtype="<i4", count=n + 1)
    total = int(ends[-1])
    start = 4 * (n + 1)
    docids = np.frombuffer(raw, dtype="<i4", count=total, offset=start).astype(np.int64)
    scores = np.frombuffer(raw, dtype="<f4", count=total, offset=start + 4 * total).astype(np.float32)
    return BatchHits(ends.astype(np.int64), docids, scores), start + 8 * total


def _open_batch(reader: Any, shard_sizes: list[int] | None, similarity: Any, analyzer: Any, threads: int) -> Any:
    """The Java batch engine over ``reader`` (shard ``i`` of ``shard_sizes`` documents, in order;
    ``None``: the reader's sub-readers), or ``None`` when the helper is not compiled here."""
    batch_cls = optional_jclass(BATCH_CLASS)
    if batch_cls is None:
        # helper_classpath has warned when it could not compile; this covers a JVM started by
        # someone else (e.g. pyserini imported first), without the helper on its classpath
        warn_slow_path(f"the Java helper {BATCH_CLASS} is not on the JVM's classpath")
        return None
    try:
        return batch_cls(reader, shard_sizes, similarity, analyzer, CONTENTS_FIELD, max(1, int(threads)),
                         DF_CACHE_TERMS)
    except Exception as exc:  # jnius raises a JavaException subclass of Exception
        warn_slow_path(f"the Java batch engine could not start ({exc})")
        return None
