"""Errors raised at the boundaries of selectsearch.

Every error is a :class:`SelectSearchError`; its message says what went wrong *and* what to
do next. The CLI prints the message on one line to stderr and exits with code 2.
"""

from __future__ import annotations

__all__ = [
    "CorruptIndexError",
    "DataFormatError",
    "DataNotFoundError",
    "DependencyError",
    "IndexExistsError",
    "ManifestVersionError",
    "ModelError",
    "NotAnIndexError",
    "RouteSpecError",
    "SelectSearchError",
    "ShardedIndexError",
]


class SelectSearchError(Exception):
    """Base class of every error selectsearch raises on purpose."""


class DataFormatError(SelectSearchError):
    """A malformed input record. The message names the file and the 1-based line number."""

    def __init__(self, path: object, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.problem = problem


class DataNotFoundError(SelectSearchError):
    """A data file, folder, split or dataset id that does not exist."""


class ShardedIndexError(SelectSearchError):
    """Problems with a built index."""


class NotAnIndexError(ShardedIndexError):
    """A folder that has no selectsearch manifest."""


class CorruptIndexError(ShardedIndexError):
    """A damaged index (missing or changed files, Lucene corruption); the message names shard and file."""


class IndexExistsError(ShardedIndexError):
    """Refusing to overwrite an existing index."""


class ManifestVersionError(ShardedIndexError):
    """The index was written by a newer selectsearch."""


class RouteSpecError(SelectSearchError):
    """An unknown or malformed route spec such as ``centroid@x``."""


class DependencyError(SelectSearchError):
    """An optional dependency (or the Java runtime) is missing; the message says how to install it."""


class ModelError(SelectSearchError):
    """A model folder that is missing files or does not match what it is used with."""
