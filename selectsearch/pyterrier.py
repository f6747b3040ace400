"""Selective search as a PyTerrier transformer (the optional extra ``pyterrier``).

:class:`SelectiveRetriever` is a ``pt.Transformer``: a queries DataFrame (``qid``, ``query``)
in, a results DataFrame out with PyTerrier's columns ``qid``, ``query``, ``docno``, ``score``,
``rank`` (from 0) plus what selective search adds: ``shard_id`` (the hit's shard), ``shards``
(the shards the query searched, a tuple) and ``docs_scored`` (the documents in them, the cost
measure). Routers and budgets are parameters (``route="cori@2"``, ``"hybrid@auto"``), so
routes compare in ``pt.Experiment`` like any retrievers, and PyTerrier's operators compose
them (``retriever % 10``, ``retriever >> reranker``). :func:`load_topics` and
:func:`load_qrels` read any query and judgement source selectsearch reads into PyTerrier's
DataFrames.

PyTerrier's core (the ``pyterrier`` package) runs without Java; selectsearch's own JVM does
the searching. ``import selectsearch`` never imports this module.

Scores are made strictly decreasing down each query's ranking
(:func:`~selectsearch.ranking.strict_scores`), as in selectsearch's run files, so
``pt.Experiment`` scores exactly the ranking returned and gives the metrics of
``selectsearch eval``.

Example:
    >>> import pyterrier as pt  # doctest: +SKIP
    >>> exhaustive = SelectiveRetriever("indexes/scifact-k16", route="all")  # doctest: +SKIP
    >>> topics = load_topics("../shared/data/scifact", split="test")  # doctest: +SKIP
    >>> qrels = load_qrels("../shared/data/scifact", split="test")  # doctest: +SKIP
    >>> pt.Experiment([exhaustive, exhaustive.with_route("cori@2")], topics, qrels, ["nDCG@10"],
    ...               baseline=0, correction="holm")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from typing import Any

from selectsearch.errors import DependencyError

try:
    import pandas as pd
    import pyterrier as pt
except ImportError as exc:  # pragma: no cover - the extra is in dev, so tests always have it
    raise DependencyError(f"selectsearch.pyterrier needs PyTerrier's core ({exc}): "
                          "pip install 'selectsearch[pyterrier]' (the pyterrier package; no Java needed)") from exc

from selectsearch.pyserini_compat import searcher_for, to_dataframe, with_route
from selectsearch.route import Router, RouteSpec
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Qrels, Query

__all__ = ["OUTPUT_COLUMNS", "SelectiveRetriever", "load_qrels", "load_topics", "qrels_frame", "topics_frame"]

#: the columns a :class:`SelectiveRetriever` returns, in order (input columns other than these follow)
OUTPUT_COLUMNS = ("qid", "query", "docno", "score", "rank", "shard_id", "shards", "docs_scored")


class SelectiveRetriever(pt.Transformer):
    """A selective searcher as a PyTerrier retriever.

    Args:
        index: a selectsearch index folder, or an open
            :class:`~selectsearch.search.SelectiveSearcher` (its route is kept unless ``route``
            is given).
        route: route spec (``"all"``, ``"cori@2"``, ``"hybrid@auto"``, ``"hybrid@auto:0.95/8"``)
            or a router object or class; one budget (sweeps such as ``cori@1:4`` are refused:
            make one retriever per budget). Default ``"all"`` for a folder.
        k: hits per query (PyTerrier's ``num_results``); ``retriever % n`` with ``n < k`` searches
            for ``n`` only.
        qrels, seed, router_options: as for :meth:`SelectiveSearcher.open
            <selectsearch.search.SelectiveSearcher.open>` (``qrels``: ``oracle@M`` only).
        threads: Java threads that search a query's shards concurrently.
        **options: other options of :class:`~selectsearch.search.SelectiveSearcher`
            (``retriever="dense"``, ``k1``, ``b``, ``reranker`` ...) when opening a folder.

    Example:
        >>> cori = SelectiveRetriever("indexes/scifact-k16", route="cori@2", k=1000)  # doctest: +SKIP
        >>> (cori % 10).search("vitamin D deficiency and fractures")  # doctest: +SKIP
    """

    def __init__(self, index: str | os.PathLike[str] | SelectiveSearcher,
                 route: str | RouteSpec | Router | type[Router] | None = None, *, k: int = 1000,
                 qrels: Qrels | None = None, seed: int = 0, threads: int = 1,
                 router_options: Mapping[str, Any] | None = None, **options: Any) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k (hits per query) must be an integer of at least 1, got {k!r}")
        searcher = searcher_for(index, route, qrels=qrels, seed=seed, threads=threads, router_options=router_options,
                                **options)
        self.searcher: SelectiveSearcher = searcher
        self.k = k

    @property
    def route(self) -> str:
        """The route searched (e.g. ``cori@2``)."""
        return self.searcher.route_name

    def with_route(self, route: str | RouteSpec | Router | type[Router], *, k: int | None = None,
                   qrels: Qrels | None = None, seed: int = 0,
                   router_options: Mapping[str, Any] | None = None) -> SelectiveRetriever:
        """A retriever on the same open index (JVM, Lucene readers, encoders) with another route."""
        return SelectiveRetriever(with_route(self.searcher, route, qrels=qrels, seed=seed,
                                             router_options=router_options), k=self.k if k is None else k)

    def fuse_rank_cutoff(self, k: int) -> SelectiveRetriever:
        """``self % k`` as one retriever that searches for ``min(k, self.k)`` hits (PyTerrier's fusion hook)."""
        return self if k >= self.k else SelectiveRetriever(self.searcher, k=k)

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        """Search every query of ``inp`` (columns ``qid`` and ``query``; other columns are kept)."""
        pt.validate.query_frame(inp, ["query"])
        extra = [c for c in inp.columns if c not in OUTPUT_COLUMNS]
        if len(inp) == 0:  # PyTerrier probes transformers with empty frames: answer without searching
            return pd.DataFrame({c: pd.Series(dtype=_DTYPES.get(c, object)) for c in (*OUTPUT_COLUMNS, *extra)})
        qids = [str(q) for q in inp["qid"]]
        if len(set(qids)) != len(qids):
            repeated = next(q for q, n in Counter(qids).items() if n > 1)
            raise ValueError(f"qid {repeated!r} appears more than once in the queries frame; qids must be unique")
        results = self.searcher.batch_search([Query(q, str(text)) for q, text in zip(qids, inp["query"], strict=True)],
                                             k=self.k)
        frame = to_dataframe(results)
        per_query = inp.assign(qid=qids).set_index("qid")
        frame.insert(1, "query", frame["qid"].map(per_query["query"]))
        frame["shards"] = frame["qid"].map({q: tuple(r.trace.shards) for q, r in results.items()})
        frame["docs_scored"] = frame["qid"].map({q: int(r.trace.docs_scored) for q, r in results.items()})
        for column in extra:  # PyTerrier's convention: a retriever keeps the queries' other columns
            frame[column] = frame["qid"].map(per_query[column])
        return frame

    def __repr__(self) -> str:
        return f"SelectiveRetriever({self.route!r}, k={self.k})"


_DTYPES = {"score": "float64", "rank": "int64", "shard_id": "int64", "docs_scored": "int64"}


def topics_frame(queries: Mapping[str, str]) -> pd.DataFrame:
    """``{query_id: text}`` as PyTerrier topics (columns ``qid``, ``query``), in the same order."""
    return pd.DataFrame({"qid": pd.Series(list(queries), dtype=object),
                         "query": pd.Series(list(queries.values()), dtype=object)})


def qrels_frame(qrels: Qrels) -> pd.DataFrame:
    """``{query_id: {doc_id: relevance}}`` as PyTerrier qrels (columns ``qid``, ``docno``, ``label``)."""
    rows = [(qid, doc_id, int(rel)) for qid, rels in qrels.items() for doc_id, rel in rels.items()]
    return pd.DataFrame({"qid": pd.Series([r[0] for r in rows], dtype=object),
                         "docno": pd.Series([r[1] for r in rows], dtype=object),
                         "label": pd.Series([r[2] for r in rows], dtype="int64")})


def load_topics(source: str | os.PathLike[str], *, split: str | None = None,
                field: str | None = None) -> pd.DataFrame:
    """Queries of ``source`` (as :func:`selectsearch.data.load_queries` reads them) as PyTerrier topics.

    ``split`` keeps a BEIR folder's queries judged in that split (what ``selectsearch eval
    --split`` evaluates).
    """
    from selectsearch.data import load_queries

    return topics_frame(load_queries(source, split=split, field=field))


def load_qrels(source: str | os.PathLike[str], *, split: str | None = None) -> pd.DataFrame:
    """Judgements of ``source`` (as :func:`selectsearch.data.load_qrels` reads them) as PyTerrier qrels."""
    from selectsearch.data import load_qrels as read_qrels

    return qrels_frame(read_qrels(source, split=split))
