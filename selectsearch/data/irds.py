"""``irds:<id>`` sources through ir_datasets (an optional dependency, imported on first use).

Example:
    >>> docs = iter_irds_documents("beir/scifact")  # doctest: +SKIP
    >>> queries = irds_queries("beir/scifact/test")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from selectsearch.data.sources import IRDS_PREFIX
from selectsearch.errors import DataFormatError, DataNotFoundError, DependencyError, SelectSearchError
from selectsearch.types import Document, Qrels

__all__ = [
    "import_ir_datasets",
    "irds_qrels",
    "irds_queries",
    "iter_irds_documents",
    "load_dataset",
]

INSTALL_HINT = "pip install 'selectsearch[irds]'"
_TEXT_FIELDS = ("text", "body", "contents", "passage", "abstract")
_T = TypeVar("_T")


def import_ir_datasets() -> Any:
    """The ``ir_datasets`` module.

    Raises:
        DependencyError: it is not installed (the message gives the install command).
    """
    try:
        return importlib.import_module("ir_datasets")
    except ImportError as e:
        raise DependencyError(
            f"irds: sources need the ir_datasets package ({e}); install it with: {INSTALL_HINT}"
        ) from None


def load_dataset(dataset_id: str, *, need: str | None = None) -> Any:
    """``ir_datasets.load(dataset_id)``, checking that it provides ``need`` (docs/queries/qrels).

    Raises:
        DependencyError: ir_datasets is not installed.
        DataNotFoundError: unknown id, or the dataset lacks ``need``.
    """
    ir_datasets = import_ir_datasets()
    try:
        dataset = ir_datasets.load(dataset_id)
    except KeyError:
        raise DataNotFoundError(
            f"{IRDS_PREFIX}{dataset_id}: unknown ir_datasets id; "
            "list ids with `ir_datasets list` or see https://ir-datasets.com"
        ) from None
    except Exception as e:  # any failure inside ir_datasets: one clear line
        raise DataNotFoundError(_fetch_failed(dataset_id, e)) from e
    if need is not None and not getattr(dataset, f"has_{need}")():
        raise DataNotFoundError(
            f"{IRDS_PREFIX}{dataset_id}: this dataset has no {need}; "
            f"use an id that has them (often a sub-id such as {dataset_id}/test)"
        )
    return dataset


def _fetch_failed(dataset_id: str, error: BaseException) -> str:
    """One line for a failure inside ir_datasets (offline, a failed download, a corrupt file)."""
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    if len(detail) > 200:
        detail = detail[:200] + "..."
    return (
        f"{IRDS_PREFIX}{dataset_id}: ir_datasets could not read its files ({type(error).__name__}: {detail}); "
        f"fetch them first (e.g. `ir_datasets export {dataset_id} docs` with network access) "
        "or set IR_DATASETS_HOME to where they are"
    )


def _stream(dataset_id: str, entities: Callable[[], Iterable[_T]]) -> Iterator[_T]:
    """Iterate, turning any failure of ir_datasets to fetch or read its files (offline: a
    ``RuntimeError`` from its downloader; a missing file: ``OSError``) into a clear error.

    Errors of selectsearch itself pass through unchanged.
    """
    try:
        yield from entities()
    except SelectSearchError:
        raise
    except Exception as e:  # any failure inside ir_datasets: one clear line
        raise DataNotFoundError(_fetch_failed(dataset_id, e)) from None


def _doc_text(doc: Any, where: str, number: int) -> str:
    for name in _TEXT_FIELDS:
        value = getattr(doc, name, None)
        if isinstance(value, str):
            return value
    if hasattr(doc, "default_text"):
        return str(doc.default_text())
    raise DataFormatError(
        where,
        number,
        f"documents of type {type(doc).__name__} have no text field; use another dataset id",
    )


def iter_irds_documents(dataset_id: str) -> Iterator[tuple[Document, int]]:
    """Yield ``(Document, record_no)`` (1-based) for every document of an ir_datasets id.

    The title is the document's ``title`` field when it has one; the text is its ``text``
    (or ``body``, ``contents``, ...) field, else ``default_text()``.
    """
    dataset = load_dataset(dataset_id, need="docs")
    for number, doc in enumerate(_stream(dataset_id, dataset.docs_iter), start=1):
        title = getattr(doc, "title", "")
        title = title if isinstance(title, str) else ""
        text = _doc_text(doc, IRDS_PREFIX + dataset_id, number)
        yield Document(str(doc.doc_id), title, text), number


def _query_text(query: Any, field: str | None, where: str, number: int) -> str:
    if field is None:
        if hasattr(query, "default_text"):
            return str(query.default_text())
        return str(query.text)
    parts = ["title", "description"] if field == "title+description" else [field]
    values = []
    for name in parts:
        value = getattr(query, name, None)
        if value is None and name == "title":
            value = getattr(query, "text", None)
        if not isinstance(value, str):
            fields = ", ".join(getattr(query, "_fields", ()))
            raise DataFormatError(
                where, number, f"queries have no {name!r} field (fields: {fields}); drop field="
            )
        values.append(value.strip())
    return " ".join(v for v in values if v)


def irds_queries(dataset_id: str, *, field: str | None = None) -> dict[str, str]:
    """``{query_id: text}`` of an ir_datasets id, in dataset order.

    Args:
        dataset_id: e.g. ``"beir/scifact/test"``.
        field: ``None`` for the dataset's ``default_text()``, or ``"title"``,
            ``"description"``, ``"title+description"``.
    """
    dataset = load_dataset(dataset_id, need="queries")
    where = IRDS_PREFIX + dataset_id
    queries: dict[str, str] = {}
    for number, query in enumerate(_stream(dataset_id, dataset.queries_iter), start=1):
        queries[str(query.query_id)] = _query_text(query, field, where, number)
    return queries


def irds_qrels(dataset_id: str) -> Qrels:
    """``{query_id: {doc_id: relevance}}`` of an ir_datasets id (grade 0 kept)."""
    dataset = load_dataset(dataset_id, need="qrels")
    qrels: Qrels = {}
    for qrel in _stream(dataset_id, dataset.qrels_iter):
        qrels.setdefault(str(qrel.query_id), {})[str(qrel.doc_id)] = int(qrel.relevance)
    return qrels
