"""Saved model folders: built under ``<folder>.partial``, published atomically, described by a
JSON manifest (format, format version, the command that made it, library versions) that is
checked on load. Shared by every trained model that is not an index (classifiers, ReAugKD
students, multi-task models), so they fail the same clear way on a wrong or newer folder.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from selectsearch.atomic import replace_dir
from selectsearch.errors import ModelError

__all__ = ["config_from_json", "new_model_folder", "publish_model_folder", "read_model_manifest"]

T = TypeVar("T")


def new_model_folder(path: str | os.PathLike[str], *, overwrite: bool) -> tuple[Path, Path]:
    """``(final, partial)``: a fresh, empty ``<path>.partial`` to write the model into.

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
    return final, partial


def publish_model_folder(partial: Path, final: Path, manifest: dict[str, Any], *, format: str, version: int,
                         command: str | None = None, name: str = "config.json") -> Path:
    """Write the manifest last, then move ``partial`` into place (the old folder is kept until
    the new one is complete)."""
    import torch
    import transformers

    body = {"format": format, "format_version": version, **manifest,
            "command": command if command is not None else " ".join(sys.argv),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}
    (partial / name).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    replace_dir(partial, final)
    return final


def read_model_manifest(folder: str | os.PathLike[str], *, format: str, version: int, what: str,
                        hint: str, name: str = "config.json") -> dict[str, Any]:
    """The manifest of a folder written by :func:`publish_model_folder`.

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
    if int(manifest.get("format_version", 0)) > version:
        raise ModelError(f"{path} was written by a newer selectsearch (format version "
                         f"{manifest['format_version']}); upgrade selectsearch")
    return manifest


def config_from_json(cls: type[T], data: dict[str, Any]) -> T:
    """A dataclass from its ``asdict`` JSON: lists back to tuples, unknown keys ignored (older
    or newer fields), missing ones left at their defaults."""
    kwargs = {f.name: tuple(data[f.name]) if isinstance(data[f.name], list) else data[f.name]
              for f in fields(cls) if f.name in data}  # type: ignore[arg-type]
    return cls(**kwargs)
