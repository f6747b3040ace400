"""Plain records passed between the parts of selectsearch.

Field names follow ir_datasets / ir_measures: ``doc_id``, ``query_id``, ``score``,
``shard_id``, ``relevance``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, overload

__all__ = ["Document", "EncodedQueries", "Hit", "HitList", "Qrels", "Query", "Run", "SearchResult", "SearchTrace"]

#: ``{query_id: {doc_id: relevance}}`` — the shape ir_measures accepts.
Qrels = dict[str, dict[str, int]]
#: ``{query_id: {doc_id: score}}`` — the shape ir_measures accepts.
Run = dict[str, dict[str, float]]


class Document(NamedTuple):
    """A corpus document. ``contents`` is what gets indexed: title and text in one field."""

    doc_id: str
    title: str
    text: str

    @property
    def contents(self) -> str:
        """Title and text joined by a newline (BEIR "flat" convention); no title gives the text."""
        return f"{self.title}\n{self.text}" if self.title else self.text


class Query(NamedTuple):
    """A query with its id."""

    query_id: str
    text: str


class Hit(NamedTuple):
    """One search result.

    ``docid`` is ``doc_id`` under pyserini's name, so code written for pyserini's hits
    (``hit.docid``, ``hit.score``) reads these too; :mod:`selectsearch.pyserini_compat` adds
    ``raw`` and ``contents``.
    """

    doc_id: str
    score: float
    shard_id: int

    @property
    def docid(self) -> str:
        """``doc_id``, under the name pyserini's hits use."""
        return self.doc_id


class HitList(Sequence[Hit]):
    """A query's hits, best first, kept as columns and made into :class:`Hit` objects when read.

    A search at k=1000 returns 1,000 hits, of which a reranker reads 100 and a results page 10;
    one Python object per hit cost more CPU than searching two shards of 205k documents (about
    0.3 ms per 1,000 hits, ``eval/results/cost/engine-profile.md``). A HitList is a read-only
    list of Hit — ``len``, indexing, slicing (a HitList again, no copy), iteration, ``==`` with
    any list of hits, ``+``, pickling — that makes the objects of what is read, once.
    :attr:`doc_ids`, :attr:`scores` and :attr:`shard_ids` read whole columns without them.

    Args:
        ids: doc id strings, indexed by ``rows`` (e.g. every document of an index, an object array).
        rows: positions in ``ids``/``shards`` of the hits, best first (an int array).
        scores: the hits' scores, aligned with ``rows``.
        shards: shard ids, indexed by ``rows`` like ``ids``.

    Example:
        >>> import numpy as np
        >>> hits = HitList(np.array(["a", "b", "c"], dtype=object), np.array([2, 0]), np.array([3.0, 1.5]),
        ...                np.array([0, 0, 1]))
        >>> hits[0], hits[1:] == [Hit("a", 1.5, 0)], hits.doc_ids
        (Hit(doc_id='c', score=3.0, shard_id=1), True, ['c', 'a'])
    """

    __slots__ = ("_ids", "_made", "_rows", "_scores", "_shards")

    def __init__(self, ids: Any, rows: Any, scores: Any, shards: Any) -> None:
        if len(rows) != len(scores):
            raise ValueError(f"{len(rows)} rows but {len(scores)} scores")
        self._ids, self._rows, self._scores, self._shards = ids, rows, scores, shards
        self._made: list[Hit] | None = None

    @property
    def doc_ids(self) -> list[str]:
        """The hits' doc ids, best first."""
        return self._ids[self._rows].tolist()

    @property
    def scores(self) -> list[float]:
        """The hits' scores, best first."""
        return self._scores.tolist()

    @property
    def shard_ids(self) -> list[int]:
        """The hits' shards, best first."""
        return self._shards[self._rows].tolist()

    def _hits(self) -> list[Hit]:
        if self._made is None:
            new = tuple.__new__  # Hit's own __new__ checks arguments; these are known to fit
            self._made = [new(Hit, h) for h in zip(self.doc_ids, self.scores, self.shard_ids, strict=True)]
        return self._made

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> Hit: ...

    @overload
    def __getitem__(self, i: slice) -> HitList: ...

    def __getitem__(self, i: int | slice) -> Hit | HitList:
        if isinstance(i, slice):
            return HitList(self._ids, self._rows[i], self._scores[i], self._shards)
        if self._made is not None:
            return self._made[i]
        row = self._rows[i]  # IndexError as a list's
        return Hit(self._ids[row], float(self._scores[i]), int(self._shards[row]))

    def __iter__(self) -> Iterator[Hit]:
        return iter(self._hits())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, HitList)):  # a list never equals a tuple
            return self._hits() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-list semantics: unhashable, like a list

    def __add__(self, other: Sequence[Hit]) -> list[Hit]:
        return [*self._hits(), *other]

    def __radd__(self, other: Sequence[Hit]) -> list[Hit]:
        return [*other, *self._hits()]

    def __repr__(self) -> str:
        return repr(self._hits())

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # only this query's hits travel (not the index-wide id column the rows point into)
        import numpy as np

        n = len(self._rows)
        return HitList, (np.asarray(self.doc_ids, dtype=object), np.arange(n), self._scores,
                         np.asarray(self.shard_ids, dtype=np.int32))


@dataclass
class SearchTrace:
    """What one query cost: which shards, how many documents, and time per stage (ms).

    ``docs_scored`` counts the documents in the searched shards — the standard
    selective-search cost measure (Lucene's dynamic pruning may skip some of them).
    ``timings_ms`` has at least ``route`` and ``search``; rerankers and classifiers add
    their own stages. ``extra`` carries stage outputs such as query-classifier predictions.
    """

    query_id: str
    route: str
    shards: list[int]
    docs_scored: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    missing_shards: list[int] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """A JSON-serialisable dict (one line of a ``--trace`` file)."""
        return {
            "query_id": self.query_id,
            "route": self.route,
            "shards": list(self.shards),
            "docs_scored": self.docs_scored,
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "missing_shards": list(self.missing_shards),
            **({"extra": self.extra} if self.extra else {}),
        }


class SearchResult(NamedTuple):
    """Hits of one query, best first, with the trace of how they were found.

    ``hits`` is a list of :class:`Hit`, or a :class:`HitList` (which reads as one) when the
    engine returns its hits as columns.
    """

    hits: Sequence[Hit]
    trace: SearchTrace


@dataclass(frozen=True)
class EncodedQueries:
    """Query embeddings a router computed while ranking, offered to a dense retriever that uses
    the same encoder, so a routed dense query is encoded once (the cost stays in ``route``).

    ``model``/``max_length``/``precision`` identify the encoder (as in the embedding cache key);
    ``vectors`` is ``(len(texts), dim)`` float32, one row per text.
    """

    model: str
    max_length: int
    precision: str
    texts: tuple[str, ...]
    vectors: Any

    def rows_for(self, texts: list[str] | tuple[str, ...]) -> Any | None:
        """The vectors of exactly these texts in this order, or ``None``."""
        return self.vectors if tuple(texts) == self.texts else None
