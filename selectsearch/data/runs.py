"""TREC run files: ``query_id Q0 doc_id rank score tag``, one retrieved document per line.

Example:
    >>> write_run({"q1": [("d3", 2.5), ("d1", 1.0)]}, "bm25.run", tag="bm25")  # doctest: +SKIP
    >>> read_run("bm25.run")  # doctest: +SKIP
    {'q1': {'d3': 2.5, 'd1': 1.0}}
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

from selectsearch.data._io import atomic_write, iter_lines
from selectsearch.errors import DataFormatError
from selectsearch.ranking import sort_scored, strict_scores
from selectsearch.types import Hit, Run

#: One query's documents: ``{doc_id: score}`` or ranked ``(doc_id, score)`` pairs / hits.
RankedDocs: TypeAlias = Mapping[str, float] | Sequence[tuple[str, float]] | Sequence[Hit]

__all__ = ["RankedDocs", "ranked", "read_run", "write_run"]


def read_run(path: str | os.PathLike[str]) -> Run:
    """Read a TREC run file (plain or gzip) into ``{query_id: {doc_id: score}}``.

    Raises:
        DataFormatError: a line without 6 columns, a score that is not a number, or the same
            document twice for one query (the message names the file and line).

    Example:
        >>> run = read_run("runs/bm25.run")  # doctest: +SKIP
    """
    run: Run = {}
    for line_no, line in iter_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise DataFormatError(
                path,
                line_no,
                f"expected 6 columns 'query_id Q0 doc_id rank score tag', got {len(parts)}; "
                "is this a TREC run file?",
            )
        qid, _, doc_id, _, score_s, _ = parts
        try:
            score = float(score_s)
        except ValueError:
            raise DataFormatError(
                path, line_no, f"score {score_s!r} is not a number (column 5); fix this line"
            ) from None
        docs = run.setdefault(qid, {})
        if doc_id in docs:
            raise DataFormatError(
                path,
                line_no,
                f"document {doc_id!r} appears twice for query {qid!r}; "
                "keep one line per (query, document)",
            )
        docs[doc_id] = score
    return run


def ranked(docs: RankedDocs) -> list[tuple[str, float]]:
    """Documents in rank order: a sequence keeps its order; a mapping sorts by ``(-score, doc_id)``.

    Sequence items may be longer tuples whose first two fields are ``doc_id, score``
    (e.g. :class:`selectsearch.types.Hit`).

    Example:
        >>> ranked({"b": 1.0, "a": 1.0, "c": 2.0})
        [('c', 2.0), ('a', 1.0), ('b', 1.0)]
    """
    if isinstance(docs, Mapping):
        return sort_scored(docs.items())
    return [(item[0], item[1]) for item in docs]


def _check_token(value: str, what: str, path: str | os.PathLike[str]) -> str:
    if not value or any(ch.isspace() for ch in value):
        raise DataFormatError(
            path,
            None,
            f"{what} {value!r} is empty or contains whitespace; a TREC run cannot hold it",
        )
    return value


def write_run(
    run: Mapping[str, Sequence[tuple[str, float]]] | Mapping[str, RankedDocs],
    path: str | os.PathLike[str],
    *,
    tag: str = "selectsearch",
) -> None:
    """Write a TREC run file atomically (temporary file, then ``os.replace``).

    Queries are written in the order of ``run``. For each query, a sequence of
    ``(doc_id, score)`` is ranked 1..n in the order given; a ``{doc_id: score}`` mapping is
    sorted as :func:`ranked` does. A name ending in ``.gz`` is gzipped.

    Scores are written with full (float64) precision, and tied scores strictly decreasing down
    the ranking (:func:`~selectsearch.ranking.strict_scores`: lowered by a few units in the
    last place): trec_eval and ir-measures re-sort a run by score and break ties their own ways,
    so this is what makes any evaluator score the ranking written, rank column and all.
    ``read_run(path)`` gives back the written numbers; rounding them to float32 gives back a
    Lucene score exactly.

    Raises:
        DataFormatError: an id or tag containing whitespace, a NaN score, or a sequence whose
            scores rise down the ranking (not in rank order).

    Example:
        >>> write_run({"q1": {"d1": 1.0, "d2": 3.0}}, "out.run", tag="bm25")  # doctest: +SKIP
    """
    _check_token(tag, "tag", path)
    with atomic_write(path) as f:
        for qid, docs in run.items():
            _check_token(str(qid), "query id", path)
            f.writelines(_lines(str(qid), ranked(docs), tag, path))


def _lines(
    qid: str, docs: Sequence[tuple[str, float]], tag: str, path: str | os.PathLike[str]
) -> Iterable[str]:
    for doc_id, score in docs:
        if math.isnan(float(score)):
            raise DataFormatError(
                path, None, f"score of {doc_id!r} for query {qid!r} is NaN; fix the scorer"
            )
    try:
        values = strict_scores([float(score) for _, score in docs])
    except ValueError as exc:
        if "lowest finite" in str(exc):
            raise DataFormatError(path, None, f"query {qid!r}: {exc}") from None
        raise DataFormatError(
            path, None, f"the documents of query {qid!r} are not in rank order (a score rises down "
            "the list); pass them best first, or as a {doc_id: score} mapping"
        ) from None
    for rank, ((doc_id, _), value) in enumerate(zip(docs, values, strict=True), start=1):
        yield f"{qid} Q0 {_check_token(str(doc_id), 'doc id', path)} {rank} {value!r} {tag}\n"
