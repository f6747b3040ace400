"""The index manifest: a JSON file written LAST, so its presence means "complete index".

A folder without ``manifest.json`` is not an index. A manifest with a newer
``format_version`` than this code understands is refused with a clear message.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from selectsearch.errors import ManifestVersionError, NotAnIndexError

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST_NAME", "library_versions", "read_manifest", "write_manifest"]

FORMAT = "selectsearch-sharded-index"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


def library_versions() -> dict[str, str]:
    """Versions of the libraries an index depends on (recorded in manifests)."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("selectsearch", "pyserini", "numpy", "scikit-learn", "faiss-cpu", "torch", "transformers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    try:
        from selectsearch.lucene.jvm import anserini_jar

        versions["anserini"] = anserini_jar().name.removeprefix("anserini-").removesuffix("-fatjar.jar")
    except Exception:  # pragma: no cover - recorded when available
        pass
    return versions


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically (temp file + rename) and return its path."""
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
    path = Path(folder) / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and validate the manifest of the index at ``folder``.

    Raises:
        NotAnIndexError: no folder, or no manifest (e.g. an interrupted build).
        ManifestVersionError: written by a newer selectsearch.
    """
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise NotAnIndexError(f"{folder} does not exist; build it with `selectsearch index CORPUS --out {folder}`")
    if not path.exists():
        hint = " (an interrupted build: delete it and build again)" if folder.name.endswith(".partial") else ""
        raise NotAnIndexError(
            f"{folder} is not a selectsearch index: no {MANIFEST_NAME}{hint}; "
            f"build one with `selectsearch index CORPUS --out {folder}`"
        )
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise NotAnIndexError(f"{path} is not valid JSON ({exc}); rebuild the index with --overwrite") from exc
    if manifest.get("format") != FORMAT:
        raise NotAnIndexError(f"{path} is not a selectsearch index manifest (format {manifest.get('format')!r})")
    version = int(manifest.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise ManifestVersionError(
            f"{folder} was written by a newer selectsearch (index format {version}; this version reads "
            f"up to {FORMAT_VERSION}); upgrade selectsearch (pip install -U selectsearch) or rebuild the index"
        )
    return manifest


def command_line() -> list[str]:
    """The command that is running (recorded in manifests)."""
    return [Path(sys.argv[0]).name, *sys.argv[1:]]
