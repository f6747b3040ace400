"""Saved model folders: built under ``<folder>.partial``, published atomically, described by a
JSON manifest (format, format version, the command that made it, library versions) that is
checked on load. Every trained model that is not an index goes through here (classifiers,
ReAugKD students, multi-task models, MICO models), so they are written the same safe way and
fail the same clear way on a wrong or newer folder.

Example:
    >>> with model_folder("models/m", overwrite=True) as partial:  # doctest: +SKIP
    ...     torch.save(weights, partial / "head.pt")
    ...     write_model_manifest(partial, {"labels": labels}, format="my-model", version=1)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from selectsearch.atomic import replace_dir
from selectsearch.errors import ModelError
from selectsearch.train.arguments import arguments_from_dict

__all__ = ["config_from_json", "manifest_version", "model_folder", "read_model_manifest", "write_model_manifest"]

T = TypeVar("T")


@contextmanager
def model_folder(path: str | os.PathLike[str], *, overwrite: bool) -> Iterator[Path]:
    """Build a model folder: yields a fresh, empty ``<path>.partial`` to write into; when the
    block ends it replaces ``path`` (the old folder is kept until the new one is complete), and
    when the block raises it is removed. Write the manifest last, with :func:`write_model_manifest`.

    Raises:
        ModelError: ``path`` exists and ``overwrite`` is false.
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise ModelError(f"{final} exists; choose another output folder or pass overwrite")
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        yield partial
        replace_dir(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def write_model_manifest(folder: Path, manifest: dict[str, Any], *, format: str, version: int,
                         command: str | None = None, name: str = "config.json") -> Path:
    """Write the manifest of a model folder: ``format``, ``format_version``, ``manifest``, the
    command that made it and library versions. Write it last: a folder without it is no model."""
    import torch
    import transformers

    body = {"format": format, "format_version": version, **manifest,
            "command": command if command is not None else " ".join(sys.argv),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}
    path = folder / name
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


def read_model_manifest(folder: str | os.PathLike[str], *, format: str, version: int, what: str,
                        hint: str, name: str = "config.json") -> dict[str, Any]:
    """The manifest of a folder written by :func:`write_model_manifest`.

    Raises:
        ModelError: no manifest (``hint`` says how to make one), another format, or a newer version.
    """
    path = Path(folder)
    manifest_path = path / name
    if not manifest_path.exists():
        raise ModelError(f"{path} is not a {what} (no {name}); {hint}")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != format:
        raise ModelError(f"{path} holds {manifest.get('format')!r}, not a {what}")
    found = manifest_version(manifest)
    if found > version:
        raise ModelError(f"{path} was written by a newer selectsearch (format version {found}); upgrade selectsearch")
    return manifest


def manifest_version(manifest: dict[str, Any]) -> int:
    """The format version of a manifest (``version`` in MICO folders written before 0.18)."""
    return int(manifest.get("format_version", manifest.get("version", 0)))


def config_from_json(cls: type[T], data: dict[str, Any]) -> T:
    """A config dataclass from its ``asdict`` JSON: training settings saved under their old names
    are read under the new ones, lists become tuples, unknown keys are ignored (older or newer
    fields) and missing ones left at their defaults."""
    return arguments_from_dict(cls, data)
