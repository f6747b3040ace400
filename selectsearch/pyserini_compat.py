"""Use a selective searcher as you would use pyserini's ``LuceneSearcher``.

:class:`SelectiveLuceneSearcher` answers pyserini's calls — ``search(q, k)``,
``batch_search(queries, qids, k, threads)``, ``doc(docid)``, ``num_docs`` — over a sharded
index searched through a router, so code written for pyserini runs on selective search by
changing the line that opens the searcher. Its hits (:class:`StoredHit`) have pyserini's
``docid`` and ``score``, and the ``raw`` and ``contents`` that pyserini's hits had before 1.x
(pyserini 1.x reads them through ``doc()``, which works here too); the document of ``doc()``
(:class:`StoredDocument`) has pyserini's ``docid()``, ``contents()`` and ``raw()``.
:func:`to_dataframe` turns results (these, or :meth:`SelectiveSearcher.batch_search
<selectsearch.search.SelectiveSearcher.batch_search>`'s) into a pandas DataFrame with
PyTerrier's column names.

What differs from pyserini: ``raw`` is the JSON record of selectsearch's document store
(``{"id", "contents", "shard"}``), not the source document as indexed; there is no
``lucene_docid``/``lucene_document`` (a document lives in one shard's Lucene index of many);
and ``batch_search``'s ``threads`` does not start query threads — a batch crosses into the JVM
once, and the Java threads per query are set when the searcher is opened (``threads=``).

Example:
    >>> searcher = SelectiveLuceneSearcher("indexes/scifact-k16", route="cori@2")  # doctest: +SKIP
    >>> hits = searcher.search("vitamin D deficiency and fractures", k=10)  # doctest: +SKIP
    >>> hits[0].docid, hits[0].score, hits[0].contents[:40]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from selectsearch.ranking import strict_scores
from selectsearch.route import Router, RouteSpec
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Hit, Qrels, Query, SearchResult

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from selectsearch.index.sharded import ShardedIndex

__all__ = ["FRAME_COLUMNS", "SelectiveLuceneSearcher", "StoredDocument", "StoredHit", "searcher_for", "to_dataframe",
           "with_route"]

#: the columns of :func:`to_dataframe`, in order (PyTerrier's names; ``rank`` starts at 0 as in PyTerrier)
FRAME_COLUMNS = ("qid", "docno", "score", "rank", "shard_id")


class HitLike(Protocol):
    """What :func:`to_dataframe` reads of a hit (:class:`~selectsearch.types.Hit` or :class:`StoredHit`)."""

    @property
    def doc_id(self) -> str: ...

    @property
    def score(self) -> float: ...

    @property
    def shard_id(self) -> int: ...


class StoredHit:
    """A hit with pyserini's attributes: ``docid``, ``score``, and the stored ``raw``/``contents``.

    ``raw`` and ``contents`` are read from the index's document store when asked for (one seek
    each), so a list of 1000 hits costs nothing until a text is used. ``doc_id`` and
    ``shard_id`` are those of :class:`~selectsearch.types.Hit`.
    """

    __slots__ = ("_index", "docid", "score", "shard_id")

    def __init__(self, hit: Hit, index: ShardedIndex) -> None:
        self.docid: str = hit.doc_id
        self.score: float = hit.score
        self.shard_id: int = hit.shard_id
        self._index = index

    @property
    def doc_id(self) -> str:
        """``docid`` under selectsearch's name."""
        return self.docid

    @property
    def raw(self) -> str:
        """The stored document as a JSON string (``{"id", "contents", "shard"}``)."""
        return json.dumps(self._index.doc(self.docid), ensure_ascii=False)

    @property
    def contents(self) -> str:
        """The indexed text (title and text, joined by a newline)."""
        return str(self._index.doc(self.docid)["contents"])

    def to_hit(self) -> Hit:
        """The plain :class:`~selectsearch.types.Hit`."""
        return Hit(self.docid, self.score, self.shard_id)

    def __repr__(self) -> str:
        return f"StoredHit(docid={self.docid!r}, score={self.score!r}, shard_id={self.shard_id})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredHit):
            return NotImplemented
        return (self.docid, self.score, self.shard_id) == (other.docid, other.score, other.shard_id)

    def __hash__(self) -> int:
        return hash((self.docid, self.score, self.shard_id))


class StoredDocument:
    """A stored document with pyserini's ``Document`` methods: ``docid()``, ``id()``, ``contents()``, ``raw()``."""

    __slots__ = ("_record",)

    def __init__(self, record: Mapping[str, Any]) -> None:
        self._record = dict(record)

    def docid(self) -> str:
        """The document's id."""
        return str(self._record["id"])

    def id(self) -> str:
        """The document's id (pyserini has both names)."""
        return self.docid()

    def contents(self) -> str:
        """The indexed text."""
        return str(self._record["contents"])

    def raw(self) -> str:
        """The stored record as a JSON string."""
        return json.dumps(self._record, ensure_ascii=False)

    def __repr__(self) -> str:
        return f"StoredDocument(docid={self.docid()!r})"


class SelectiveLuceneSearcher:
    """pyserini's ``LuceneSearcher`` interface over selective search.

    Args:
        index_dir: a selectsearch index folder, or an open
            :class:`~selectsearch.search.SelectiveSearcher` to wrap (its route is kept unless
            ``route`` is given).
        route: route spec (``"all"``, ``"cori@2"``, ``"hybrid@auto"`` ...) or router; default
            ``"all"`` for a folder, the searcher's own route for a searcher.
        qrels, seed, router_options: as for :meth:`SelectiveSearcher.open
            <selectsearch.search.SelectiveSearcher.open>` (``qrels`` only for ``oracle@M``).
        threads: Java threads that search a query's shards concurrently.
        **options: other options of :class:`~selectsearch.search.SelectiveSearcher` (``k1``,
            ``b``, ``retriever``, ``reranker`` ...) when opening a folder.

    Example:
        >>> searcher = SelectiveLuceneSearcher("indexes/scifact-k16", route="cori@2")  # doctest: +SKIP
        >>> results = searcher.batch_search(["vitamin D", "statins"], ["q1", "q2"], k=10, threads=2)  # doctest: +SKIP
        >>> results["q1"][0].docid, searcher.doc(results["q1"][0].docid).contents()  # doctest: +SKIP
    """

    def __init__(self, index_dir: str | os.PathLike[str] | SelectiveSearcher,
                 route: str | RouteSpec | Router | type[Router] | None = None, *, qrels: Qrels | None = None,
                 seed: int = 0, threads: int = 1, router_options: Mapping[str, Any] | None = None,
                 **options: Any) -> None:
        searcher = searcher_for(index_dir, route, qrels=qrels, seed=seed, threads=threads,
                                router_options=router_options, **options)
        self.searcher: SelectiveSearcher = searcher

    @property
    def num_docs(self) -> int:
        """Documents in the whole index (every shard)."""
        return int(self.searcher.index.n_docs)

    @property
    def route(self) -> str:
        """The route this searcher searches with (e.g. ``cori@2``)."""
        return self.searcher.route_name

    def with_route(self, route: str | RouteSpec | Router | type[Router], *, qrels: Qrels | None = None,
                   seed: int = 0, router_options: Mapping[str, Any] | None = None) -> SelectiveLuceneSearcher:
        """The same open index searched with another route."""
        return SelectiveLuceneSearcher(with_route(self.searcher, route, qrels=qrels, seed=seed,
                                                  router_options=router_options))

    def search(self, q: str, k: int = 10) -> list[StoredHit]:
        """The top ``k`` hits of query text ``q``, best first (ties by doc id)."""
        if not isinstance(q, str):
            raise TypeError(f"q must be the query text (str), got {type(q).__name__}")
        return self.batch_search([q], ["q"], k=k)["q"]

    def batch_search(self, queries: Sequence[str], qids: Sequence[str], k: int = 10, threads: int = 1
                     ) -> dict[str, list[StoredHit]]:
        """``{qid: hits}`` for parallel lists of query texts and ids, as pyserini's ``batch_search``.

        ``threads`` is accepted for pyserini's signature; the batch is routed once and crosses
        into the JVM once whatever its value (see the module docs).

        Raises:
            ValueError: lists of different lengths, a repeated qid, ``k`` or ``threads`` below 1.
        """
        if isinstance(queries, str) or isinstance(qids, str):
            raise TypeError("batch_search takes lists of query texts and ids; use search() for one query")
        if len(queries) != len(qids):
            raise ValueError(f"{len(queries)} queries but {len(qids)} qids")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        seen: set[str] = set()
        for qid in qids:
            if str(qid) in seen:
                raise ValueError(f"qid {qid!r} appears more than once; qids name the results and must be unique")
            seen.add(str(qid))
        results = self.searcher.batch_search([Query(str(qid), text) for qid, text in zip(qids, queries, strict=True)],
                                             k=k)
        index = self.searcher.index
        return {qid: [StoredHit(h, index) for h in r.hits] for qid, r in results.items()}

    def doc(self, docid: str) -> StoredDocument | None:
        """The stored document ``docid``, or ``None`` when the index has none (as pyserini)."""
        try:
            return StoredDocument(self.searcher.index.doc(str(docid)))
        except KeyError:
            return None

    def __repr__(self) -> str:
        return f"SelectiveLuceneSearcher({str(self.searcher.index.path)!r}, route={self.route!r})"


def searcher_for(index: str | os.PathLike[str] | SelectiveSearcher,
                 route: str | RouteSpec | Router | type[Router] | None = None, *, qrels: Qrels | None = None,
                 seed: int = 0, threads: int = 1, router_options: Mapping[str, Any] | None = None,
                 **options: Any) -> SelectiveSearcher:
    """An index folder opened (``route`` default ``all``), or an open searcher, re-routed when
    ``route`` or ``router_options`` are given; ``options`` only configure a searcher being opened."""
    if not isinstance(index, SelectiveSearcher):
        return SelectiveSearcher.open(index, route="all" if route is None else route, qrels=qrels, seed=seed,
                                      threads=threads, router_options=router_options, **options)
    if options:
        raise TypeError(f"options {', '.join(sorted(options))} configure a searcher being opened; the "
                        "searcher given is already open (derive one with its with_* methods)")
    if route is None and not router_options:
        return index
    return with_route(index, route or index.route_name, qrels=qrels, seed=seed, router_options=router_options)


def with_route(searcher: SelectiveSearcher, route: str | RouteSpec | Router | type[Router], *,
               qrels: Qrels | None = None, seed: int = 0,
               router_options: Mapping[str, Any] | None = None) -> SelectiveSearcher:
    """``searcher`` with another route (sharing its open engines), with router options if any."""
    from selectsearch.route import as_route, make_router

    spec = as_route(route)
    router = make_router(spec, searcher.index, qrels=qrels, seed=seed, **dict(router_options or {}))
    return searcher.with_router(router, spec.budget, str(spec))


def to_dataframe(results: Mapping[str, SearchResult | Sequence[HitLike]] | Sequence[HitLike], *,
                 qid: str = "q") -> pd.DataFrame:
    """Results as a pandas DataFrame with columns :data:`FRAME_COLUMNS`, one row per hit.

    ``results`` is ``{qid: SearchResult}`` (:meth:`SelectiveSearcher.batch_search
    <selectsearch.search.SelectiveSearcher.batch_search>`), ``{qid: [hit, ...]}``
    (:meth:`SelectiveLuceneSearcher.batch_search`), or one query's list of hits (its ``qid``
    column is ``qid``). Rows keep each query's order; ``rank`` starts at 0 (PyTerrier's
    convention). ``score`` is made strictly decreasing down each query
    (:func:`~selectsearch.ranking.strict_scores`), as in run files, so any evaluator scores
    exactly this order; hits keep their exact scores.

    Example:
        >>> to_dataframe({"q1": [Hit("d2", 3.0, 0), Hit("d1", 1.5, 1)]}).to_dict("list")  # doctest: +ELLIPSIS
        {'qid': ['q1', 'q1'], 'docno': ['d2', 'd1'], 'score': [3.0, 1.5], 'rank': [0, 1], 'shard_id': [0, 1]}
    """
    import pandas as pd

    per_query = results.items() if isinstance(results, Mapping) else [(qid, results)]
    qids: list[str] = []
    docnos: list[str] = []
    scores: list[float] = []
    ranks: list[int] = []
    shards: list[int] = []
    for query_id, value in per_query:
        hits: Sequence[HitLike] = value.hits if isinstance(value, SearchResult) else value
        qids += [str(query_id)] * len(hits)
        docnos += [h.doc_id for h in hits]
        scores += strict_scores([h.score for h in hits])
        ranks += range(len(hits))
        shards += [int(h.shard_id) for h in hits]
    return pd.DataFrame({"qid": pd.Series(qids, dtype=object), "docno": pd.Series(docnos, dtype=object),
                         "score": pd.Series(scores, dtype="float64"), "rank": pd.Series(ranks, dtype="int64"),
                         "shard_id": pd.Series(shards, dtype="int64")})
