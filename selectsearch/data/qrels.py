"""Relevance judgements: BEIR ``qrels/<split>.tsv``, TREC qrels files, ``irds:`` ids.

Example:
    >>> qrels = load_qrels("../shared/data/scifact", split="test")  # doctest: +SKIP
    >>> len(qrels)  # doctest: +SKIP
    300
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from selectsearch.data import beir
from selectsearch.data._io import iter_lines
from selectsearch.data.sources import IRDS_PREFIX, existing_path
from selectsearch.data.trec import parse_relevance
from selectsearch.errors import DataFormatError
from selectsearch.types import Qrels

__all__ = ["iter_qrels_file", "load_qrels"]

_HEADER_WORDS = {"query-id", "query_id", "qid", "query", "topic"}


def iter_qrels_file(path: str | os.PathLike[str]) -> Iterator[tuple[str, str, int]]:
    """Yield ``(query_id, doc_id, relevance)`` from a qrels file.

    Two layouts, chosen by the first data line and then required on every line:
    TREC ``qid iteration docid relevance`` (whitespace-separated) and BEIR
    ``query-id<TAB>corpus-id<TAB>score`` (a header line is skipped).

    Raises:
        DataFormatError: a line with the wrong number of columns or a non-integer grade.
    """
    columns = 0
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        parts = [p.strip() for p in parts]
        if columns == 0:
            if len(parts) == 3 and parts[0].lower() in _HEADER_WORDS:
                columns = 3
                continue  # BEIR header "query-id corpus-id score"
            if len(parts) not in (3, 4):
                raise DataFormatError(
                    path,
                    line_no,
                    f"expected 'query_id doc_id relevance' (BEIR TSV) or "
                    f"'query_id 0 doc_id relevance' (TREC), got {len(parts)} columns; "
                    "fix this line",
                )
            columns = len(parts)
        if len(parts) != columns:
            layout = "query_id doc_id relevance" if columns == 3 else "query_id 0 doc_id relevance"
            raise DataFormatError(
                path,
                line_no,
                f"expected {columns} columns '{layout}', got {len(parts)}; fix this line",
            )
        doc_id = parts[1] if columns == 3 else parts[2]
        yield parts[0], doc_id, parse_relevance(parts[-1], path, line_no)


def load_qrels(source: str | os.PathLike[str], *, split: str | None = None) -> Qrels:
    """Load relevance judgements as ``{query_id: {doc_id: relevance}}``.

    Grades of 0 are kept (ir_measures needs them to tell judged from unjudged).

    Args:
        source: a BEIR folder (with ``split``), a qrels file (TREC or BEIR TSV, optionally
            gzipped) or ``"irds:<dataset id>"``.
        split: the BEIR split (``qrels/<split>.tsv``); may be omitted when there is only one.

    Raises:
        DataNotFoundError: missing file or split (the message lists the splits that exist).
        DataFormatError: a malformed line (the message names file and line).

    Example:
        >>> load_qrels("../shared/data/scifact", split="test")["1"]  # doctest: +SKIP
        {'31715818': 1}
        >>> load_qrels("qrels.robust04.txt")  # doctest: +SKIP
    """
    if isinstance(source, str) and source.startswith(IRDS_PREFIX):
        from selectsearch.data.irds import irds_qrels

        return irds_qrels(source[len(IRDS_PREFIX) :])
    path = existing_path(source)
    if path.is_dir():
        path = beir.qrels_path(path, split)
    elif split is not None:
        raise DataFormatError(
            path, None, f"split={split!r} only applies to a BEIR folder; drop it or pass the folder"
        )
    qrels: Qrels = {}
    for qid, doc_id, rel in iter_qrels_file(Path(path)):
        qrels.setdefault(qid, {})[doc_id] = rel
    return qrels
