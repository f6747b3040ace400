"""JSON Lines readers: one JSON object per line, plain or gzip-compressed.

Document lines look like BEIR's ``{"_id": "4983", "title": "...", "text": "..."}``; Pyserini's
``{"id": ..., "contents": ...}`` and ``{"doc_id": ..., "text": ...}`` are accepted too.

Example:
    >>> for doc, line_no in iter_jsonl_documents("corpus.jsonl.gz"):  # doctest: +SKIP
    ...     print(line_no, doc.doc_id)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from selectsearch.data._io import JSONDecodeError, iter_lines, json_loads
from selectsearch.errors import DataFormatError
from selectsearch.types import Document

__all__ = ["iter_jsonl", "iter_jsonl_documents", "record_id", "record_text", "to_document"]

#: Where a document id may be, in order of preference.
DOC_ID_FIELDS = ("_id", "doc_id", "id", "docid")


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_no, object)`` for every non-blank line; line numbers are 1-based.

    Raises:
        DataFormatError: a line is not valid JSON or not a JSON object.

    Example:
        >>> rows = list(iter_jsonl("queries.jsonl"))  # doctest: +SKIP
    """
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json_loads(line)
        except JSONDecodeError as e:
            raise DataFormatError(
                path, line_no, f"malformed JSON ({e}); fix or delete this line"
            ) from None
        if not isinstance(obj, dict):
            raise DataFormatError(
                path,
                line_no,
                f"expected a JSON object per line, got {type(obj).__name__}; "
                "write one {...} object per line",
            )
        yield line_no, obj


def record_id(
    obj: dict[str, Any], fields: Sequence[str], path: str | os.PathLike[str], line_no: int
) -> str:
    """The first of ``fields`` present (and not null) in ``obj``, as a string."""
    for name in fields:
        value = obj.get(name)
        if value is not None:
            if isinstance(value, dict | list):
                raise DataFormatError(
                    path,
                    line_no,
                    f"field {name!r} must be a string or number, not {value!r}; fix this record",
                )
            text = str(value).strip()
            if not text:
                raise DataFormatError(
                    path, line_no, f"field {name!r} is empty; give every record a non-empty id"
                )
            return text
    raise DataFormatError(
        path,
        line_no,
        f"no id field: expected one of {', '.join(repr(f) for f in fields)}; "
        f"found {sorted(obj)}; add an id to this record",
    )


def _string_field(obj: dict[str, Any], name: str, path: str | os.PathLike[str], line: int) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataFormatError(
            path,
            line,
            f"field {name!r} must be a string, got {type(value).__name__}; fix this record",
        )
    return value


def record_text(
    obj: dict[str, Any], fields: Sequence[str], path: str | os.PathLike[str], line_no: int
) -> str:
    """The first of ``fields`` present (and not null) in ``obj``; must be a string."""
    for name in fields:
        if obj.get(name) is not None:
            return _string_field(obj, name, path, line_no)
    raise DataFormatError(
        path,
        line_no,
        f"no text field: expected one of {', '.join(repr(f) for f in fields)}; "
        f"found {sorted(obj)}; add the text to this record",
    )


def to_document(obj: dict[str, Any], path: str | os.PathLike[str], line_no: int) -> Document:
    """Turn one parsed JSON line into a :class:`Document`.

    Text comes from ``title`` + ``text``, else ``contents``, else ``text`` alone; a record
    with none of them (or with only a ``title``) is an error.

    Example:
        >>> to_document({"_id": 7, "title": "T", "text": "body"}, "c.jsonl", 1)
        Document(doc_id='7', title='T', text='body')
    """
    doc_id = record_id(obj, DOC_ID_FIELDS, path, line_no)
    if obj.get("text") is not None:
        return Document(
            doc_id,
            _string_field(obj, "title", path, line_no),
            _string_field(obj, "text", path, line_no),
        )
    if obj.get("contents") is not None:
        return Document(doc_id, "", _string_field(obj, "contents", path, line_no))
    raise DataFormatError(
        path,
        line_no,
        f"document {doc_id!r} has no text: expected 'text' (with optional 'title') or "
        f"'contents'; found {sorted(obj)}; add the text to this record",
    )


def iter_jsonl_documents(path: str | os.PathLike[str]) -> Iterator[tuple[Document, int]]:
    """Yield ``(Document, line_no)`` for every line of a JSONL corpus file.

    Example:
        >>> docs = iter_jsonl_documents("scifact/corpus.jsonl")  # doctest: +SKIP
        >>> next(docs)[0].doc_id  # doctest: +SKIP
        '4983'
    """
    for line_no, obj in iter_jsonl(path):
        yield to_document(obj, path, line_no), line_no
