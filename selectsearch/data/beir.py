"""The BEIR folder layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

Any of the JSONL files may be gzipped (``corpus.jsonl.gz``).

Example:
    >>> splits("../shared/data/scifact")  # doctest: +SKIP
    ['test', 'train']
    >>> qrels_path("../shared/data/scifact", "test")  # doctest: +SKIP
    PosixPath('../shared/data/scifact/qrels/test.tsv')
"""

from __future__ import annotations

import os
from pathlib import Path

from selectsearch.errors import DataNotFoundError

__all__ = ["corpus_path", "is_beir_folder", "qrels_path", "queries_path", "splits"]


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def is_beir_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder holding ``corpus.jsonl(.gz)``, ``queries.jsonl(.gz)`` or ``qrels/``."""
    p = Path(path)
    return p.is_dir() and (
        _first_existing(p, ("corpus.jsonl", "corpus.jsonl.gz", "queries.jsonl", "queries.jsonl.gz"))
        is not None
        or (p / "qrels").is_dir()
    )


def corpus_path(folder: str | os.PathLike[str]) -> Path:
    """``corpus.jsonl`` (or ``corpus.jsonl.gz``) of a BEIR folder.

    Raises:
        DataNotFoundError: neither file exists.
    """
    p = _first_existing(Path(folder), ("corpus.jsonl", "corpus.jsonl.gz"))
    if p is None:
        raise DataNotFoundError(
            f"{folder}: no corpus.jsonl or corpus.jsonl.gz; pass a BEIR folder or a corpus file"
        )
    return p


def queries_path(folder: str | os.PathLike[str]) -> Path:
    """``queries.jsonl`` (or ``queries.jsonl.gz``) of a BEIR folder.

    Raises:
        DataNotFoundError: neither file exists.
    """
    p = _first_existing(Path(folder), ("queries.jsonl", "queries.jsonl.gz"))
    if p is None:
        raise DataNotFoundError(
            f"{folder}: no queries.jsonl or queries.jsonl.gz; pass a BEIR folder or a queries file"
        )
    return p


def splits(source: str | os.PathLike[str]) -> list[str]:
    """The qrels splits of a BEIR folder (names of ``qrels/*.tsv``, sorted).

    Raises:
        DataNotFoundError: ``source`` is not a folder.

    Example:
        >>> splits("../shared/data/scifact")  # doctest: +SKIP
        ['test', 'train']
    """
    folder = Path(source)
    if not folder.is_dir():
        raise DataNotFoundError(
            f"{folder}: not a folder; pass a BEIR folder (with qrels/<split>.tsv)"
        )
    qrels = folder / "qrels"
    if not qrels.is_dir():
        return []
    names = set()
    for p in qrels.iterdir():
        if p.is_file():
            for suffix in (".tsv", ".tsv.gz"):
                if p.name.endswith(suffix):
                    names.add(p.name[: -len(suffix)])
    return sorted(names)


def qrels_path(folder: str | os.PathLike[str], split: str | None) -> Path:
    """``qrels/<split>.tsv`` (or ``.tsv.gz``) of a BEIR folder.

    With ``split=None`` the only split is used; with several, one must be named.

    Raises:
        DataNotFoundError: the split does not exist (the message lists those that do).
    """
    available = splits(folder)
    if split is None:
        if len(available) == 1:
            split = available[0]
        else:
            raise DataNotFoundError(
                f"{folder}: pass a split; available: {', '.join(available) or 'none (no qrels/)'}"
            )
    p = _first_existing(Path(folder) / "qrels", (f"{split}.tsv", f"{split}.tsv.gz"))
    if p is None:
        raise DataNotFoundError(
            f"{folder}: no qrels for split {split!r}; "
            f"available splits: {', '.join(available) or 'none (no qrels/ folder)'}"
        )
    return p
