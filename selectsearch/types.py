"""Plain records passed between the parts of selectsearch.

Field names follow ir_datasets / ir_measures: ``doc_id``, ``query_id``, ``score``,
``shard_id``, ``relevance``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["Document", "EncodedQueries", "Hit", "Qrels", "Query", "Run", "SearchResult", "SearchTrace"]

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
    """Hits of one query, best first, with the trace of how they were found."""

    hits: list[Hit]
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
