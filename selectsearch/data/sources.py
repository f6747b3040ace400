"""Where data lives: the shared data folder, source paths and ``irds:`` ids.

Example:
    >>> resolve_data_dir() / "scifact"  # doctest: +SKIP
    PosixPath('/work/shared/data/scifact')
"""

from __future__ import annotations

import os
from pathlib import Path

from selectsearch import settings
from selectsearch.errors import DataNotFoundError
from selectsearch.settings import DATA_ENV

__all__ = ["DATA_ENV", "IRDS_PREFIX", "existing_path", "is_irds", "resolve_data_dir"]

#: Prefix of an ir_datasets id given as a source, e.g. ``"irds:beir/scifact/test"``.
IRDS_PREFIX = "irds:"


def resolve_data_dir(
    path: str | os.PathLike[str] | None = None, *, must_exist: bool = True
) -> Path:
    """The data folder: ``path``, else ``$SELECTSEARCH_DATA``, else ``<repo>/../shared/data``.

    Args:
        path: an explicit folder (e.g. the CLI's ``--data``).
        must_exist: raise when the folder does not exist.

    Raises:
        DataNotFoundError: the folder does not exist (and ``must_exist``).

    Example:
        >>> resolve_data_dir("/tmp", must_exist=False)
        PosixPath('/tmp')
    """
    if path is not None:
        folder, origin = Path(path), "the given path"
    elif (from_env := settings.data_root()) is not None:
        folder, origin = from_env, f"${DATA_ENV}"
    else:
        folder, origin = settings.default_data_root(), "the default <repo>/../shared/data"
    folder = folder.expanduser().resolve()
    if must_exist and not folder.is_dir():
        raise DataNotFoundError(
            f"data folder {folder} (from {origin}) does not exist; "
            f"set {DATA_ENV} or pass --data to the folder holding scifact/, wikipedia/, ..."
        )
    return folder


def is_irds(source: object) -> bool:
    """True for a string source such as ``"irds:beir/scifact"``."""
    return isinstance(source, str) and source.startswith(IRDS_PREFIX)


def existing_path(source: str | os.PathLike[str]) -> Path:
    """``source`` as an absolute path that exists.

    Raises:
        DataNotFoundError: it does not exist; the message suggests the same name under the
            data folder when that exists.
    """
    p = Path(source).expanduser()
    if p.exists():
        return p.resolve()
    hint = f"check the path, or set {DATA_ENV}"
    if not p.is_absolute():
        try:
            candidate = resolve_data_dir() / p
        except DataNotFoundError:
            candidate = None
        if candidate is not None and candidate.exists():
            hint = f"did you mean {candidate}?"
    raise DataNotFoundError(f"{source}: no such file or folder; {hint}")
