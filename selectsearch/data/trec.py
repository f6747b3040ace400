"""TREC formats: SGML document files, topic files and qrels files.

Example:
    >>> for doc, line_no in iter_trec_documents("fbis.trec.gz"):  # doctest: +SKIP
    ...     print(doc.doc_id, line_no)
    >>> topics = dict(iter_trec_topics("topics.301-350.txt"))  # doctest: +SKIP
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator

from selectsearch.data._io import iter_lines
from selectsearch.errors import DataFormatError
from selectsearch.types import Document

__all__ = [
    "TOPIC_FIELDS",
    "iter_trec_documents",
    "iter_trec_qrels",
    "iter_trec_topics",
    "parse_trec_document",
]

_DOC_OPEN = re.compile(r"<DOC(?:\s[^>]*)?>", re.IGNORECASE)
_DOC_CLOSE = re.compile(r"</DOC>", re.IGNORECASE)
_DOCNO = re.compile(r"<DOCNO>\s*(.*?)\s*</DOCNO>", re.IGNORECASE | re.DOTALL)
_TITLE = re.compile(
    r"<(HEADLINE|TITLE|HEAD|HL)(?:\s[^>]*)?>(.*?)</\1>", re.IGNORECASE | re.DOTALL
)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _clean(fragment: str) -> str:
    """Strip tags, unescape entities, collapse whitespace."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", fragment))).strip()


def parse_trec_document(body: str, path: str | os.PathLike[str], line_no: int) -> Document:
    """Parse the text between ``<DOC>`` and ``</DOC>``.

    The id is ``<DOCNO>``; the title is the first ``<HEADLINE>``/``<TITLE>``/``<HEAD>``/``<HL>``
    element (if any); the text is everything else with tags stripped.

    Example:
        >>> parse_trec_document("<DOCNO> d1 </DOCNO><TEXT>Hello &amp; bye</TEXT>", "f", 1)
        Document(doc_id='d1', title='', text='Hello & bye')
    """
    m = _DOCNO.search(body)
    if m is None or not m.group(1).strip():
        raise DataFormatError(
            path, line_no, "document has no <DOCNO>id</DOCNO>; give every <DOC> a DOCNO"
        )
    doc_id = _clean(m.group(1))
    rest = body[: m.start()] + " " + body[m.end() :]
    title = ""
    t = _TITLE.search(rest)
    if t is not None:
        title = _clean(t.group(2))
        rest = rest[: t.start()] + " " + rest[t.end() :]
    return Document(doc_id, title, _clean(rest))


def iter_trec_documents(path: str | os.PathLike[str]) -> Iterator[tuple[Document, int]]:
    """Yield ``(Document, line_no)`` for each ``<DOC>`` of a TREC SGML file (plain or gzip).

    ``line_no`` is the 1-based line where the document's ``<DOC>`` tag is. Several documents
    may share a line. Text outside ``<DOC>`` elements is ignored.

    Raises:
        DataFormatError: a ``<DOC>`` without ``<DOCNO>`` or never closed.
    """
    inside = False
    start = 0
    parts: list[str] = []
    for line_no, line in iter_lines(path):
        pending = line
        while True:
            if not inside:
                m = _DOC_OPEN.search(pending)
                if m is None:
                    break
                inside, start, parts = True, line_no, []
                pending = pending[m.end() :]
            c = _DOC_CLOSE.search(pending)
            if c is None:
                parts.append(pending)
                break
            parts.append(pending[: c.start()])
            yield parse_trec_document("\n".join(parts), path, start), start
            inside = False
            pending = pending[c.end() :]
    if inside:
        raise DataFormatError(
            path, start, "<DOC> is never closed by </DOC>; the file may be truncated"
        )


#: The ``field`` values accepted for TREC topics.
TOPIC_FIELDS = ("title", "description", "title+description")

_TOP = re.compile(r"<top>(.*?)</top>", re.IGNORECASE | re.DOTALL)
_TOP_FIELD = re.compile(r"<(num|title|desc|narr)>", re.IGNORECASE)
_CLOSE_FIELD = re.compile(r"</(num|title|desc|narr)>", re.IGNORECASE)
_PREFIX = re.compile(r"^\s*(Number|Topic|Description|Narrative)\s*:\s*", re.IGNORECASE)
_XML_TOPIC = re.compile(
    r"<topic\s[^>]*number\s*=\s*[\"']?([^\"'\s>]+)[^>]*>(.*?)</topic>", re.IGNORECASE | re.DOTALL
)
_XML_FIELD = re.compile(r"<(query|description)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)


def _topic_text(fields: dict[str, str], field: str, path: object, line: int) -> str:
    title, desc = fields.get("title", ""), fields.get("desc", "")
    if field == "title":
        text = title
    elif field == "description":
        text = desc
    elif field == "title+description":
        text = f"{title} {desc}".strip()
    else:
        raise ValueError(f"field must be one of {', '.join(TOPIC_FIELDS)}, not {field!r}")
    if not text:
        raise DataFormatError(
            path,
            line,
            f"topic has no {field} text; pick another field= ({', '.join(TOPIC_FIELDS)})",
        )
    return text


def iter_trec_topics(
    path: str | os.PathLike[str], *, field: str = "title"
) -> Iterator[tuple[str, str]]:
    """Yield ``(query_id, text)`` from a TREC topic file.

    Classic topics (``<top><num> Number: 301 <title> ... <desc> Description: ... </top>``)
    and the XML style (``<topic number="1"><query>..</query><description>..``) are read.

    Args:
        path: the topic file (plain or gzip).
        field: ``"title"`` (default), ``"description"`` or ``"title+description"``.

    Example:
        >>> dict(iter_trec_topics("topics.301-350.txt", field="title"))  # doctest: +SKIP
        {'301': 'International Organized Crime', ...}
    """
    if field not in TOPIC_FIELDS:
        raise ValueError(f"field must be one of {', '.join(TOPIC_FIELDS)}, not {field!r}")
    lines = list(iter_lines(path))  # topic files are small
    text = "\n".join(content for _, content in lines)
    line_starts = [0]
    for _, content in lines:
        line_starts.append(line_starts[-1] + len(content) + 1)

    def line_of(offset: int) -> int:
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    found = False
    for m in _TOP.finditer(text):
        found = True
        line = line_of(m.start())
        chunks = _TOP_FIELD.split(_CLOSE_FIELD.sub(" ", m.group(1)))
        fields: dict[str, str] = {}
        for name, value in zip(chunks[1::2], chunks[2::2], strict=True):
            key = name.lower()
            if key not in fields:
                fields[key] = _clean(_PREFIX.sub("", _clean(value)))
        qid = fields.get("num", "")
        if not qid:
            raise DataFormatError(path, line, "topic has no <num>; give every <top> a number")
        yield qid, _topic_text(fields, field, path, line)
    for m in _XML_TOPIC.finditer(text):
        found = True
        line = line_of(m.start())
        fields = {}
        for f in _XML_FIELD.finditer(m.group(2)):
            key = "title" if f.group(1).lower() == "query" else "desc"
            fields.setdefault(key, _clean(f.group(2)))
        yield m.group(1), _topic_text(fields, field, path, line)
    if not found:
        raise DataFormatError(
            path,
            None,
            "no <top>...</top> or <topic number=...> topics found; is this a topic file?",
        )


def parse_relevance(value: str, path: str | os.PathLike[str], line_no: int) -> int:
    """A relevance grade as ``int`` (``"2"`` and ``"2.0"`` are fine, ``"0.5"`` is not)."""
    try:
        return int(value)
    except ValueError:
        pass
    try:
        f = float(value)
    except ValueError:
        f = float("nan")
    if f.is_integer():
        return int(f)
    raise DataFormatError(
        path, line_no, f"relevance {value!r} is not an integer grade; use 0, 1, 2, ..."
    )


def iter_trec_qrels(path: str | os.PathLike[str]) -> Iterator[tuple[str, str, int, int]]:
    """Yield ``(query_id, doc_id, relevance, line_no)`` from a TREC qrels file.

    Lines are ``qid iteration docid relevance``, separated by whitespace.

    Example:
        >>> next(iter_trec_qrels("qrels.robust04.txt"))  # doctest: +SKIP
        ('301', 'FBIS3-10082', 1, 1)
    """
    for line_no, line in iter_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise DataFormatError(
                path,
                line_no,
                f"expected 4 columns 'query_id iteration doc_id relevance', got {len(parts)}; "
                "fix this line",
            )
        yield parts[0], parts[2], parse_relevance(parts[3], path, line_no), line_no
