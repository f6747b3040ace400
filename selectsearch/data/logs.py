"""Click logs for MICO: ``(query text, clicked doc id, clicks)`` triples.

Two file layouts (plain or gzip): TSV ``query<TAB>doc_id[<TAB>clicks]`` and JSONL
``{"query": ..., "doc_id": ..., "clicks": ...}``; clicks default to 1.0. Building logs from a
BEIR folder's train qrels is the caller's job.

Example:
    >>> for query, doc_id, clicks in iter_logs("clicks.tsv.gz"):  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from selectsearch.data._io import iter_lines, sniff
from selectsearch.data.jsonl import DOC_ID_FIELDS, iter_jsonl, record_id, record_text
from selectsearch.data.sources import existing_path
from selectsearch.errors import DataFormatError

__all__ = ["iter_logs"]

_QUERY_FIELDS = ("query", "text", "query_text")
_HEADER_WORDS = {"query", "query_text", "text"}


def _clicks(value: Any, path: Path, line_no: int) -> float:
    try:
        clicks = float(value)
    except (TypeError, ValueError):
        clicks = math.nan
    if not math.isfinite(clicks) or clicks < 0:
        raise DataFormatError(
            path, line_no, f"clicks {value!r} is not a non-negative number; fix or drop the column"
        )
    return clicks


def _iter_records(path: Path) -> Iterator[tuple[str, str, float, int]]:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".json")) or sniff(path, 16).startswith("{"):
        for line_no, obj in iter_jsonl(path):
            query = record_text(obj, _QUERY_FIELDS, path, line_no).strip()
            doc_id = record_id(obj, DOC_ID_FIELDS, path, line_no)
            raw = obj.get("clicks")
            clicks = 1.0 if raw is None else _clicks(raw, path, line_no)
            yield query, doc_id, clicks, line_no
        return
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        parts = line.split("\t")
        if line_no == 1 and parts[0].strip().lower() in _HEADER_WORDS:
            continue
        if len(parts) not in (2, 3) or not parts[0].strip() or not parts[1].strip():
            raise DataFormatError(
                path,
                line_no,
                f"expected 'query<TAB>doc_id[<TAB>clicks]', got {len(parts)} tab-separated "
                "columns; separate columns by tabs",
            )
        clicks = _clicks(parts[2].strip(), path, line_no) if len(parts) == 3 else 1.0
        yield parts[0].strip(), parts[1].strip(), clicks, line_no


def iter_logs(
    source: str | os.PathLike[str], *, corpus_ids: AbstractSet[str] | None = None
) -> Iterator[tuple[str, str, float]]:
    """Stream ``(query_text, doc_id, clicks)`` from a click log file.

    Args:
        source: a TSV (``query<TAB>doc_id[<TAB>clicks]``, an optional ``query...`` header
            line is skipped) or JSONL file (``{"query", "doc_id", "clicks"?}``), plain or gzip.
        corpus_ids: when given, every logged document must be in it; the file is checked
            in a first pass before anything is yielded.

    Raises:
        DataFormatError: a malformed line, or documents that are not in ``corpus_ids`` (the
            message lists up to 5 of them and how many there are).

    Example:
        >>> pairs = list(iter_logs("logs.tsv", corpus_ids={"d1", "d2"}))  # doctest: +SKIP
    """
    path = existing_path(source)
    if corpus_ids is not None:
        _check_known(path, corpus_ids)
    for query, doc_id, clicks, _ in _iter_records(path):
        yield query, doc_id, clicks


def _check_known(path: Path, corpus_ids: AbstractSet[str]) -> None:
    unknown: dict[str, int] = {}
    records = 0
    first_line = 0
    for _, doc_id, _, line_no in _iter_records(path):
        if doc_id not in corpus_ids:
            if not unknown:
                first_line = line_no
            records += 1
            unknown[doc_id] = unknown.get(doc_id, 0) + 1
    if unknown:
        examples = ", ".join(repr(d) for d in list(unknown)[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise DataFormatError(
            path,
            first_line,
            f"{records} log records name {len(unknown)} doc ids that are not in the corpus "
            f"({examples}{more}); filter the log to the corpus or index those documents",
        )
