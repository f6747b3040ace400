"""Document ids: duplicate detection with both positions, and the corpus fingerprint.

Example:
    >>> registry = DocIdRegistry()
    >>> registry.add("d1", "a.jsonl", 1)
    >>> try:
    ...     registry.add("d1", "b.jsonl", 7)
    ... except DuplicateDocIdError as e:
    ...     print(e.first, e.second)
    ('a.jsonl', 1) ('b.jsonl', 7)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from selectsearch.errors import DataFormatError

__all__ = ["DocIdRegistry", "DuplicateDocIdError", "check_unique_ids", "corpus_fingerprint"]


def _where(position: tuple[str, int | None]) -> str:
    path, line = position
    return f"{path}:{line}" if line is not None else path


class DuplicateDocIdError(DataFormatError):
    """The same doc id at two positions of a corpus.

    The message reads ``"<second file>:<line>: duplicate doc id 'X' (first at <file>:<line>);
    remove the duplicate or pass --dedupe first|last"``.

    Attributes:
        doc_id: the repeated id.
        first: ``(file, line)`` of the first occurrence.
        second: ``(file, line)`` of the repeat.
    """

    def __init__(
        self, doc_id: str, first: tuple[str, int | None], second: tuple[str, int | None]
    ) -> None:
        super().__init__(
            second[0],
            second[1],
            f"duplicate doc id {doc_id!r} (first at {_where(first)}); "
            "remove the duplicate or pass --dedupe first|last",
        )
        self.doc_id = doc_id
        self.first = first
        self.second = second

    def __reduce__(self) -> tuple[type[DuplicateDocIdError], tuple[object, ...]]:
        return type(self), (self.doc_id, self.first, self.second)


class DocIdRegistry:
    """Remembers where each doc id was first seen; :meth:`add` raises on a repeat.

    File names are stored once, so the memory cost is one dict entry per document.

    Example:
        >>> reg = DocIdRegistry()
        >>> reg.add("d1", "corpus.jsonl", 1)
        >>> reg.first_position("d1")
        ('corpus.jsonl', 1)
        >>> "d1" in reg, len(reg)
        (True, 1)
    """

    def __init__(self) -> None:
        self._files: list[str] = []
        self._file_index: dict[str, int] = {}
        self._seen: dict[str, tuple[int, int | None]] = {}

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def first_position(self, doc_id: str) -> tuple[str, int | None] | None:
        """``(file, line)`` where ``doc_id`` was first added, or ``None``."""
        entry = self._seen.get(doc_id)
        if entry is None:
            return None
        return self._files[entry[0]], entry[1]

    def check(self, doc_id: str, source_file: str, line: int | None) -> None:
        """Raise :class:`DuplicateDocIdError` when ``doc_id`` was added before."""
        first = self.first_position(doc_id)
        if first is not None:
            raise DuplicateDocIdError(doc_id, first, (source_file, line))

    def add(self, doc_id: str, source_file: str, line: int | None) -> None:
        """Record ``doc_id`` at ``source_file:line``.

        Raises:
            DuplicateDocIdError: ``doc_id`` was added before (names both positions).
        """
        self.check(doc_id, source_file, line)
        index = self._file_index.get(source_file)
        if index is None:
            index = self._file_index[source_file] = len(self._files)
            self._files.append(source_file)
        self._seen[doc_id] = (index, line)


def check_unique_ids(positions: Iterable[tuple[str, str, int | None]]) -> int:
    """Check that the doc ids of ``(doc_id, file, line)`` triples are unique.

    Returns:
        The number of ids checked.

    Raises:
        DuplicateDocIdError: at the first repeat, naming both positions.

    Example:
        >>> check_unique_ids([("d1", "a.jsonl", 1), ("d2", "a.jsonl", 2)])
        2
    """
    registry = DocIdRegistry()
    for doc_id, source_file, line in positions:
        registry.add(doc_id, source_file, line)
    return len(registry)


def corpus_fingerprint(doc_ids: Iterable[str]) -> str:
    """SHA-256 (hex) of the ordered doc ids joined by ``"\\n"`` (no trailing newline).

    Streams: the ids are never held in memory together.

    Example:
        >>> corpus_fingerprint(["a", "b"]) == __import__("hashlib").sha256(b"a\\nb").hexdigest()
        True
    """
    h = hashlib.sha256()
    first = True
    for doc_id in doc_ids:
        if not first:
            h.update(b"\n")
        h.update(doc_id.encode("utf-8"))
        first = False
    return h.hexdigest()
