"""The index manifest: a JSON file written LAST, so its presence means "complete index".

A folder without ``manifest.json`` is not an index. A manifest with a newer
``format_version`` than this code understands is refused with a clear message.

:class:`Manifest` is the typed view every reader uses (``index.manifest.partition.kind``,
``index.manifest.lucene.bm25.k1``); it reads and writes the same JSON as before. Each section
keeps the keys it does not know in ``extra`` and remembers the order of the keys it was read
with, so a manifest read and written again (``--add-backend faiss``) loses nothing, and a
manifest written by an older build (without ``backends``, ``checksums``, ``lucene.bm25``, ...)
still loads, its missing fields taking the values those builds used.

Example:
    >>> m = Manifest.from_json({"format": FORMAT, "format_version": 1, "lucene": {"bm25": {"k1": 1.2, "b": 0.75}},
    ...                         "shards": [{"shard_id": 0, "path": "shards/000", "n_docs": 3}]})
    >>> m.lucene.bm25.k1, m.shards[0].n_docs, m.shards[0].backends
    (1.2, 3, [])
    >>> Manifest.from_json(m.to_json()) == m
    True
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from selectsearch.errors import ManifestVersionError, NotAnIndexError
from selectsearch.lucene.params import DEFAULT_ANALYZER, DEFAULT_ANALYZER_CLASS, DEFAULT_BM25, Bm25, analyzer_class

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST_NAME", "CorpusSection", "DenseSection", "LuceneRangesSection",
           "LuceneSection", "Manifest", "PartitionSection", "ShardEntry", "command_line", "library_versions",
           "read_manifest", "write_manifest"]

FORMAT = "selectsearch-sharded-index"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"

_S = TypeVar("_S", bound="_Section")


@dataclass(frozen=True)
class _Section:
    """A JSON object with typed known keys (the dataclass fields).

    ``extra`` holds the keys a section does not declare; ``keys`` the order the JSON had (empty
    for a section made in code, which writes every field that is not ``None``).
    """

    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, kw_only=True)
    keys: tuple[str, ...] = field(default=(), repr=False, compare=False, kw_only=True)

    #: fields holding a nested section (or, for ``shards``, a list of them)
    _NESTED: ClassVar[Mapping[str, type[_Section]]] = {}

    @classmethod
    def _fields(cls) -> list[dataclasses.Field[Any]]:
        return [f for f in dataclasses.fields(cls) if f.name not in ("extra", "keys")]

    @classmethod
    def from_json(cls: type[_S], data: Mapping[str, Any]) -> _S:
        """The section of a JSON object (unknown keys go to ``extra``)."""
        names = {f.name for f in cls._fields()}
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names or value is None:  # an explicit null is written back as it was
                extra[key] = value
            elif key in cls._NESTED:
                nested = cls._NESTED[key]
                known[key] = (tuple(nested.from_json(v) for v in value) if isinstance(value, list)
                              else nested.from_json(value))
            else:
                known[key] = copy.deepcopy(value)  # a section never shares a list or dict with its JSON
        return cls(**known, extra=copy.deepcopy(extra), keys=tuple(data))

    def to_json(self) -> dict[str, Any]:
        """The JSON object: the fields read (or set, or all for a section made in code), then ``extra``,
        in the order the section was read with."""
        out: dict[str, Any] = {}
        for f in self._fields():
            value = getattr(self, f.name)
            if value is None or (f.name in self.extra and value == _default(f)):
                continue  # absent, or read as an explicit null (written back from ``extra``)
            if self.keys and f.name not in self.keys and value == _default(f):
                continue  # absent when read and unchanged: stays absent
            if isinstance(value, _Section):
                value = value.to_json()
            elif isinstance(value, tuple):
                value = [v.to_json() if isinstance(v, _Section) else copy.deepcopy(v) for v in value]
            else:
                value = copy.deepcopy(value)
            out[f.name] = value
        for key, value in self.extra.items():
            out.setdefault(key, copy.deepcopy(value))
        order = {key: i for i, key in enumerate(self.keys)}
        return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


@dataclass(frozen=True)
class Bm25Section(_Section):
    """``lucene.bm25``: the BM25 parameters the index is scored with."""

    k1: float = DEFAULT_BM25.k1
    b: float = DEFAULT_BM25.b

    @property
    def params(self) -> Bm25:
        """As :class:`selectsearch.lucene.params.Bm25`."""
        return Bm25(float(self.k1), float(self.b))


@dataclass(frozen=True)
class LuceneSection(_Section):
    """``lucene``: how the shards' Lucene indexes were built and are scored (older manifests
    without a key take the value every build used: :mod:`selectsearch.lucene.params`)."""

    analyzer: str = DEFAULT_ANALYZER
    field: str = "contents"
    contents: str = "title + newline + text"
    similarity: str = "BM25"
    bm25: Bm25Section = dataclasses.field(default_factory=Bm25Section)  # ``field`` is a key here
    positions: bool = True
    docvectors: bool = True

    _NESTED: ClassVar[Mapping[str, type[_Section]]] = {"bm25": Bm25Section}

    @property
    def analyzer_class(self) -> str:
        """Java class of the analyzer (the recorded name is its first word)."""
        return analyzer_class(self.analyzer)


@dataclass(frozen=True)
class DenseSection(_Section):
    """``dense``: the FAISS backend (:func:`selectsearch.dense.build.build_faiss_shards`)."""

    backend: str = "faiss"
    model: str = ""
    max_length: int = 256
    dim: int = 0
    metric: str = "inner_product"
    pooling: str | None = None
    normalize: bool | None = None
    config: dict[str, Any] = field(default_factory=dict)
    faiss_version: str | None = None
    embedding_cache: str | None = None
    build_seconds: float | None = None


@dataclass(frozen=True)
class CorpusSection(_Section):
    """``corpus``: what was indexed (``Corpus.describe()`` plus count and fingerprint)."""

    sources: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    n_docs: int = 0
    fingerprint: str = ""
    duplicates_dropped: int = 0


@dataclass(frozen=True)
class PartitionSection(_Section):
    """``partition``: the fitted partition's config (``kind`` and its own keys, in ``extra``),
    shard sizes, balance and fit time."""

    kind: str = ""
    model: str | None = None
    embedding_cache: str | None = None
    sizes: list[int] = field(default_factory=list)
    balance: dict[str, float] = field(default_factory=dict)
    fit_seconds: float | None = None

    @property
    def model_dir(self) -> str:
        """Folder of the partition's model under ``partition/`` (a MICO partition's ``model``)."""
        return str(self.model or "model")


@dataclass(frozen=True)
class ShardEntry(_Section):
    """One entry of ``shards``: folder, size, backends (and the FAISS index's type and size)."""

    shard_id: int = 0
    path: str = ""
    n_docs: int = 0
    backends: list[str] = field(default_factory=list)
    faiss: dict[str, Any] | None = None


@dataclass(frozen=True)
class LuceneRangesSection(_Section):
    """``lucene_ranges``: ONE Lucene index holding the Lucene shards' documents, shard after shard
    (:mod:`selectsearch.index.ranges`): shard ``shards[i]`` is its doc ids from the sum of
    ``sizes[:i]`` on, ``sizes[i]`` of them."""

    path: str = "lucene"
    shards: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    seconds: float | None = None


@dataclass(frozen=True)
class Manifest(_Section):
    """The typed manifest of an index (see the module docs)."""

    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    created: str | None = None
    command: list[str] = field(default_factory=list)
    versions: dict[str, str] | None = None
    corpus: CorpusSection = field(default_factory=CorpusSection)
    build: dict[str, Any] = field(default_factory=dict)
    partition: PartitionSection | None = None
    lucene: LuceneSection | None = None
    dense: DenseSection | None = None
    backends: list[str] | None = None
    shards: tuple[ShardEntry, ...] = ()
    checksums: dict[str, dict[str, Any]] = field(default_factory=dict)
    build_seconds: float | None = None
    backends_added: list[dict[str, Any]] | None = None
    lucene_ranges: LuceneRangesSection | None = None

    _NESTED: ClassVar[Mapping[str, type[_Section]]] = {
        "corpus": CorpusSection, "partition": PartitionSection, "lucene": LuceneSection, "dense": DenseSection,
        "shards": ShardEntry, "lucene_ranges": LuceneRangesSection}

    @classmethod
    def read(cls, folder: str | os.PathLike[str]) -> Manifest:
        """Read and validate the manifest of the index at ``folder`` (see :func:`read_manifest`)."""
        return cls.from_json(read_manifest(Path(folder)))

    def write(self, folder: str | os.PathLike[str]) -> Path:
        """Write it atomically as this version's format (see :func:`write_manifest`)."""
        body = {k: v for k, v in self.to_json().items() if k not in ("format", "format_version")}
        return write_manifest(Path(folder), body)

    @property
    def partition_kind(self) -> str | None:
        """``partition.kind`` (``None`` without a partition section)."""
        return self.partition.kind if self.partition is not None else None

    @property
    def partition_json(self) -> dict[str, Any]:
        """The ``partition`` section as JSON (``{}`` without one), e.g. for a report."""
        return self.partition.to_json() if self.partition is not None else {}

    @property
    def bm25(self) -> Bm25:
        """The BM25 parameters the index is scored with (the defaults without a Lucene section)."""
        return self.lucene.bm25.params if self.lucene is not None else DEFAULT_BM25

    @property
    def analyzer_class(self) -> str:
        """Java class of the analyzer the shards were indexed with."""
        return self.lucene.analyzer_class if self.lucene is not None else DEFAULT_ANALYZER_CLASS


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
