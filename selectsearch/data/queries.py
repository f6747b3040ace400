"""Queries: BEIR ``queries.jsonl``, JSONL and TSV files, TREC topic files, ``irds:`` ids.

Example:
    >>> queries = load_queries("../shared/data/scifact", split="test")  # doctest: +SKIP
    >>> len(queries)  # doctest: +SKIP
    300
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from selectsearch.data import beir
from selectsearch.data._io import iter_lines, sniff
from selectsearch.data.jsonl import iter_jsonl, record_id, record_text
from selectsearch.data.qrels import iter_qrels_file
from selectsearch.data.sources import IRDS_PREFIX, existing_path
from selectsearch.data.trec import TOPIC_FIELDS, iter_trec_topics
from selectsearch.errors import DataFormatError

__all__ = ["QUERY_ID_FIELDS", "QUERY_TEXT_FIELDS", "iter_query_file", "load_queries"]

logger = logging.getLogger(__name__)

#: Where a query id may be in a JSONL line, in order of preference.
QUERY_ID_FIELDS = ("_id", "query_id", "id", "qid")
#: Where the query text may be in a JSONL line, in order of preference.
QUERY_TEXT_FIELDS = ("text", "query", "title")
_TSV_HEADER_IDS = {"query_id", "qid", "query-id", "id", "_id"}


def _query_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    head = sniff(path)
    if name.endswith((".jsonl", ".json")) or head.startswith("{"):
        return "jsonl"
    lowered = head.lower()
    if "<top>" in lowered or "<topic" in lowered:
        return "trec"
    return "tsv"


def _iter_tsv_queries(path: Path) -> Iterator[tuple[str, str, int]]:
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        parts = line.split("\t", 1)
        if len(parts) != 2 or not parts[0].strip():
            raise DataFormatError(
                path, line_no, "expected 'query_id<TAB>text'; separate the id and text by a tab"
            )
        qid, text = parts[0].strip(), parts[1].strip()
        if line_no == 1 and qid.lower() in _TSV_HEADER_IDS:
            continue
        yield qid, text, line_no


def iter_query_file(
    path: str | os.PathLike[str], *, field: str | None = None
) -> Iterator[tuple[str, str, int | None]]:
    """Yield ``(query_id, text, line_no)`` from a queries file of any supported format.

    The format is detected: JSONL (``{"_id"|"query_id"|"id", "text"|"query"|"title"}``),
    a TREC topic file, else TSV ``query_id<TAB>text`` (a header line is skipped).

    Args:
        path: the file (plain or gzip).
        field: for TREC topics, ``"title"`` (default), ``"description"`` or
            ``"title+description"``; other formats have a single text.
    """
    p = Path(path)
    fmt = _query_format(p)
    if fmt == "trec":
        for qid, text in iter_trec_topics(p, field=field or "title"):
            yield qid, text, None
        return
    if field not in (None, "title"):
        raise DataFormatError(
            p, None, f"field={field!r} needs a TREC topic file or irds: id; drop field="
        )
    if fmt == "jsonl":
        for line_no, obj in iter_jsonl(p):
            qid = record_id(obj, QUERY_ID_FIELDS, p, line_no)
            yield qid, record_text(obj, QUERY_TEXT_FIELDS, p, line_no).strip(), line_no
    else:
        yield from _iter_tsv_queries(p)


def load_queries(
    source: str | os.PathLike[str], *, split: str | None = None, field: str | None = None
) -> dict[str, str]:
    """Load queries as ``{query_id: text}`` in file order.

    Args:
        source: a BEIR folder (``queries.jsonl``), a queries file (JSONL, TSV, TREC topics;
            optionally gzipped) or ``"irds:<dataset id>"``.
        split: for a BEIR folder, keep only the queries judged in ``qrels/<split>.tsv``
            (file order is kept).
        field: for TREC topics and ``irds:`` datasets with several fields: ``"title"``,
            ``"description"`` or ``"title+description"``.

    Raises:
        DataNotFoundError: missing file, folder or split (the message lists the splits).
        DataFormatError: malformed or duplicate queries (the message names file and line).

    Example:
        >>> load_queries("../shared/data/scifact", split="test")["1"]  # doctest: +SKIP
        '0-dimensional biomaterials show inductive properties.'
        >>> load_queries("topics.301-350.txt", field="description")  # doctest: +SKIP
    """
    if field is not None and field not in TOPIC_FIELDS:
        raise ValueError(f"field must be one of {', '.join(TOPIC_FIELDS)}, not {field!r}")
    if isinstance(source, str) and source.startswith(IRDS_PREFIX):
        from selectsearch.data.irds import irds_queries

        return irds_queries(source[len(IRDS_PREFIX) :], field=field)
    path = existing_path(source)
    keep: set[str] | None = None
    if path.is_dir():
        if split is not None:
            keep = {qid for qid, _, _ in iter_qrels_file(beir.qrels_path(path, split))}
        path = beir.queries_path(path)
    elif split is not None:
        raise DataFormatError(
            path, None, f"split={split!r} only applies to a BEIR folder; drop it or pass the folder"
        )
    queries: dict[str, str] = {}
    seen: set[str] = set()
    for qid, text, line_no in iter_query_file(path, field=field):
        if qid in seen:
            raise DataFormatError(
                path, line_no, f"query id {qid!r} appears twice; keep one line per query"
            )
        seen.add(qid)
        if keep is None or qid in keep:
            queries[qid] = text
    if keep is not None and len(queries) < len(keep):
        missing = sorted(keep - queries.keys())
        logger.warning(
            "%s: %d judged queries of split %r are not in %s (e.g. %s)",
            source, len(missing), split, path.name, ", ".join(missing[:5]),
        )
    return queries
