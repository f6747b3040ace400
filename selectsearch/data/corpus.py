"""Corpora: what ``selectsearch index SOURCE`` reads, streamed one document at a time.

A source is a BEIR folder, a corpus file (JSONL or TREC SGML, optionally gzipped), a folder
of such files, or ``"irds:<ir_datasets id>"``; several sources combine into one corpus.

Example:
    >>> corpus = open_corpus(["data/scifact", "data/wikipedia"])  # doctest: +SKIP
    >>> for doc, source_file, line_no in corpus.iter_with_positions():  # doctest: +SKIP
    ...     registry.add(doc.doc_id, source_file, line_no)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeAlias

from selectsearch.data import beir
from selectsearch.data._io import sniff
from selectsearch.data.ids import DocIdRegistry, corpus_fingerprint
from selectsearch.data.jsonl import iter_jsonl_documents
from selectsearch.data.sources import IRDS_PREFIX, existing_path
from selectsearch.data.trec import iter_trec_documents
from selectsearch.errors import DataFormatError, DataNotFoundError
from selectsearch.types import Document

__all__ = ["Corpus", "CorpusFile", "CorpusSource", "detect_format", "open_corpus"]

_JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
_TREC_SUFFIXES = (".trec", ".sgml", ".sgm")
_SNIFF_SUFFIXES = ("", ".txt", ".dat")
_NOT_CORPUS = {"queries.jsonl", "queries.jsonl.gz"}  # BEIR queries sitting next to passages
_ACCEPTED = ".jsonl[.gz] or TREC SGML .trec/.sgml/.txt[.gz] with <DOC><DOCNO>..</DOCNO>..</DOC>"

#: ``(document, source file or irds id, 1-based line or record number)``
Positioned = tuple[Document, str, int | None]


def detect_format(path: str | os.PathLike[str], *, sniff_any: bool = True) -> str | None:
    """``"jsonl"``, ``"trec"`` or ``None`` for a corpus file, from its name and first bytes.

    Args:
        path: the file (``.gz`` is looked through).
        sniff_any: look inside files of any extension; otherwise only extensionless,
            ``.txt`` and ``.dat`` files are sniffed (folder scans skip ``README.md`` etc.).

    Example:
        >>> detect_format("passages-00.jsonl.gz")  # doctest: +SKIP
        'jsonl'
    """
    p = Path(path)
    name = p.name.lower().removesuffix(".gz")
    if name.endswith(_JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(_TREC_SUFFIXES):
        return "trec"
    if not sniff_any and Path(name).suffix not in _SNIFF_SUFFIXES:
        return None
    head = sniff(p, 64)
    if head.startswith("{"):
        return "jsonl"
    if head[:4].lower() == "<doc":
        return "trec"
    return None


class CorpusFile(NamedTuple):
    """One corpus file and its format (``"jsonl"`` or ``"trec"``)."""

    path: Path
    format: str

    def iter_with_positions(self) -> Iterator[Positioned]:
        """Yield ``(Document, file, line_no)`` for every document of the file."""
        where = str(self.path)
        reader = iter_jsonl_documents if self.format == "jsonl" else iter_trec_documents
        for doc, line_no in reader(self.path):
            yield doc, where, line_no


def _scan_folder(folder: Path) -> list[CorpusFile]:
    """Corpus files under ``folder`` (recursive, sorted; a nested BEIR folder gives its corpus)."""
    found: list[CorpusFile] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(root)
        if here != folder and beir.is_beir_folder(here) and (
            (here / "corpus.jsonl").is_file() or (here / "corpus.jsonl.gz").is_file()
        ):
            found.append(CorpusFile(beir.corpus_path(here), "jsonl"))
            dirs[:] = []
            continue
        for name in sorted(names):
            if name.startswith(".") or name in _NOT_CORPUS:
                continue
            fmt = detect_format(here / name, sniff_any=False)
            if fmt is not None:
                found.append(CorpusFile(here / name, fmt))
    return found


@dataclass(frozen=True)
class CorpusSource:
    """One parsed source of a corpus.

    Attributes:
        spec: the absolute path, or ``"irds:<id>"``.
        kind: ``"beir"``, ``"file"``, ``"folder"`` or ``"irds"``.
        files: the files read, in order (empty for ``irds``).

    Example:
        >>> src = CorpusSource.parse("../shared/data/wikipedia")  # doctest: +SKIP
        >>> src.kind, len(src.files)  # doctest: +SKIP
        ('folder', 4)
    """

    spec: str
    kind: str
    files: tuple[CorpusFile, ...] = ()

    @classmethod
    def parse(cls, source: str | os.PathLike[str] | CorpusSource) -> CorpusSource:
        """Recognise a source string or path.

        Raises:
            DataNotFoundError: nothing at that path, an empty folder or an unknown irds id.
            DataFormatError: a file whose format cannot be recognised.
            DependencyError: ``irds:`` without ir_datasets installed.
        """
        if isinstance(source, CorpusSource):
            return source
        if isinstance(source, str) and source.startswith(IRDS_PREFIX):
            from selectsearch.data.irds import load_dataset

            dataset_id = source[len(IRDS_PREFIX) :]
            load_dataset(dataset_id, need="docs")
            return cls(IRDS_PREFIX + dataset_id, "irds")
        path = existing_path(source)
        if path.is_dir():
            if (path / "corpus.jsonl").is_file() or (path / "corpus.jsonl.gz").is_file():
                return cls(str(path), "beir", (CorpusFile(beir.corpus_path(path), "jsonl"),))
            files = _scan_folder(path)
            if not files:
                raise DataNotFoundError(
                    f"{path}: no corpus files found; expected a BEIR folder (corpus.jsonl) or "
                    f"files named {_ACCEPTED}"
                )
            return cls(str(path), "folder", tuple(files))
        fmt = detect_format(path)
        if fmt is None:
            raise DataFormatError(
                path,
                None,
                f"cannot tell the corpus format; expected {_ACCEPTED} "
                "(rename the file with the right extension)",
            )
        return cls(str(path), "file", (CorpusFile(path, fmt),))

    def iter_with_positions(self) -> Iterator[Positioned]:
        """Yield ``(Document, file or irds id, line_no)`` for every document of the source."""
        if self.kind == "irds":
            from selectsearch.data.irds import iter_irds_documents

            for doc, number in iter_irds_documents(self.spec[len(IRDS_PREFIX) :]):
                yield doc, self.spec, number
            return
        for corpus_file in self.files:
            yield from corpus_file.iter_with_positions()

    def describe(self) -> dict[str, Any]:
        """JSON-able description: spec, kind and files with their formats."""
        return {
            "source": self.spec,
            "kind": self.kind,
            "files": [{"path": str(f.path), "format": f.format} for f in self.files],
        }


#: A source as given: a path, ``"irds:<id>"`` or an already parsed :class:`CorpusSource`.
SourceLike: TypeAlias = str | os.PathLike[str] | CorpusSource


class Corpus:
    """A streamed, re-iterable corpus over one or more sources.

    Each iteration re-opens the files; nothing is loaded into memory.

    Example:
        >>> corpus = open_corpus("../shared/data/scifact")  # doctest: +SKIP
        >>> sum(1 for _ in corpus)  # doctest: +SKIP
        5183
    """

    def __init__(self, sources: Sequence[CorpusSource]) -> None:
        if not sources:
            raise DataNotFoundError("no corpus source given; pass a BEIR folder, file or irds: id")
        self._sources = tuple(sources)

    @property
    def sources(self) -> tuple[CorpusSource, ...]:
        """The parsed sources, in reading order."""
        return self._sources

    def __iter__(self) -> Iterator[Document]:
        for doc, _, _ in self.iter_with_positions():
            yield doc

    def __repr__(self) -> str:
        return f"Corpus({[s.spec for s in self._sources]!r})"

    def iter_with_positions(self) -> Iterator[Positioned]:
        """Yield ``(Document, source_file, line_no)``; ``source_file`` is an absolute path
        (or the ``irds:`` id, with ``line_no`` the 1-based record number).

        Example:
            >>> corpus = open_corpus("c.jsonl")  # doctest: +SKIP
            >>> for doc, where, line in corpus.iter_with_positions():  # doctest: +SKIP
            ...     print(f"{where}:{line}", doc.doc_id)
        """
        for source in self._sources:
            yield from source.iter_with_positions()

    def iter_checked(self) -> Iterator[Document]:
        """Like iterating, but raise :class:`DuplicateDocIdError` at the first repeated id.

        Holds one dict entry per document id while iterating.
        """
        registry = DocIdRegistry()
        for doc, where, line in self.iter_with_positions():
            registry.add(doc.doc_id, where, line)
            yield doc

    def doc_ids(self) -> Iterator[str]:
        """The doc ids in corpus order."""
        for doc in self:
            yield doc.doc_id

    def count(self) -> int:
        """Number of documents (reads the whole corpus)."""
        return sum(1 for _ in self.iter_with_positions())

    def fingerprint(self) -> str:
        """:func:`corpus_fingerprint` of the ordered doc ids (reads the whole corpus)."""
        return corpus_fingerprint(self.doc_ids())

    def describe(self) -> dict[str, Any]:
        """JSON-able description for manifests.

        Returns:
            ``{"sources": [abs path or irds id, ...], "formats": [kind, ...],
            "files": [{"path", "format"}, ...]}``.
        """
        return {
            "sources": [s.spec for s in self._sources],
            "formats": [s.kind for s in self._sources],
            "files": [f for s in self._sources for f in s.describe()["files"]],
        }


def open_corpus(
    sources: SourceLike | Sequence[SourceLike],
) -> Corpus:
    """Open one or more corpus sources as a single streamed :class:`Corpus`.

    Sources are checked now (they exist, their format is known); documents are read only
    when iterating.

    Args:
        sources: a BEIR folder, a corpus file (``.jsonl``, ``.jsonl.gz``, TREC SGML
            ``.trec``/``.sgml``/``.txt``, gzipped or not), a folder of such files,
            ``"irds:<id>"``, or a list of these (read in order).

    Raises:
        DataNotFoundError: a missing path, an empty folder, or an unknown irds id.
        DataFormatError: a file of unknown format.

    Example:
        >>> corpus = open_corpus(["data/scifact", "data/wikipedia"])  # doctest: +SKIP
        >>> corpus.describe()["formats"]  # doctest: +SKIP
        ['beir', 'folder']
    """
    if isinstance(sources, str | os.PathLike | CorpusSource):
        items: Sequence[SourceLike] = [sources]
    else:
        items = sources
    return Corpus([CorpusSource.parse(s) for s in items])
