"""Integrity of a built index: cheap checks on every open, thorough ones in ``selectsearch verify``.

A damaged index must fail loudly, never answer wrongly: one line deleted from a shard's
``doc_ids.txt`` shifts every doc id after it, a shifted ``docs.offsets.npy`` makes
``index.doc(a)`` return another document, and flipped bytes in a Lucene file change rankings.

**On open** (:func:`quick_check`, run by :meth:`ShardedIndex.open`; a few milliseconds for
SciFact's 16 shards — it reads each shard's ``doc_ids.txt`` and offsets, which the first search
reads anyway, and ~16 lines of each document store):

- every shard folder, its ``doc_ids.txt``, ``docs.offsets.npy`` and document store exist, and
  a Lucene shard has a ``segments_N`` file;
- ``doc_ids.txt`` has as many rows as the manifest says the shard has documents;
- the offsets are int64, one per row, distinct, inside the store, and a sample of rows (first,
  last and evenly spaced ones) points at the line of the document with that id;
- the byte size of every file the manifest has a checksum for is unchanged.

When Lucene opens a shard (first search), its document count must equal the ``doc_ids.txt``
rows (:meth:`ShardedIndex.lucene`) and Lucene's exceptions become :class:`CorruptIndexError`.

**In** ``selectsearch verify`` (:func:`verify_index`): the sha256 of every file recorded in the
manifest at build time (``doc_ids.txt``, ``docs.offsets.npy``, the partition files; not the
Lucene files, which carry their own checksums, nor the document stores), every row's offset,
Lucene's ``CheckIndex`` on every shard (every file's checksum, then its structure), and the
Lucene doc order against ``doc_ids.txt``. Hashing is kept out of the open path on purpose:
its cost grows with the collection.

Example:
    >>> problems, notes = verify_index("indexes/scifact-k16")  # doctest: +SKIP
    >>> [str(p) for p in problems]  # doctest: +SKIP
    ['shard 003 shards/003/doc_ids.txt: 224 rows, but the shard has 225 documents']
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.index.manifest import Manifest, ShardEntry
from selectsearch.index.shard_files import store_ids_and_offsets

__all__ = ["CHECKSUM_FILES", "Problem", "quick_check", "record_checksums", "verify_index"]

#: per-shard files whose checksums the manifest records (small: about 20 bytes per document)
CHECKSUM_FILES = ("doc_ids.txt", "docs.offsets.npy")
#: rows of each shard whose offsets are checked on open
SAMPLE_ROWS = 16
_ID_PREFIX = b'{"id":'


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an index: which shard (``None``: the index itself), which file, what."""

    shard: int | None
    file: str
    message: str

    def __str__(self) -> str:
        where = f"shard {self.shard:03d} " if self.shard is not None else ""
        return f"{where}{self.file}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``selectsearch verify --json``)."""
        return {"shard": self.shard, "file": self.file, "message": self.message}


def file_digest(path: Path) -> dict[str, Any]:
    """``{"sha256", "bytes"}`` of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def record_checksums(root: Path, shards: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Checksums of the small files of a build at ``root`` (recorded in the manifest).

    Keys are paths relative to the index folder: each shard's :data:`CHECKSUM_FILES` and every
    file under ``partition/``.
    """
    out: dict[str, dict[str, Any]] = {}
    for shard in shards:
        for name in CHECKSUM_FILES:
            path = root / shard["path"] / name
            if path.is_file():
                out[f"{shard['path']}/{name}"] = file_digest(path)
    partition = root / "partition"
    if partition.is_dir():
        for path in sorted(p for p in partition.rglob("*") if p.is_file()):
            out[path.relative_to(root).as_posix()] = file_digest(path)
    return out


def _line_id(head: bytes) -> str | None:
    """The ``id`` of a document-store line from its first bytes (``None``: not readable)."""
    try:
        if head.startswith(_ID_PREFIX):
            value, _ = json.JSONDecoder().raw_decode(head[len(_ID_PREFIX):].decode("utf-8", "ignore"))
        else:
            value = json.loads(head.split(b"\n", 1)[0])["id"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _read_ids(path: Path) -> tuple[list[str] | None, str | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, "missing"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({exc})"
    if text and not text.endswith("\n"):
        return text.split("\n"), "the last row has no line end (the file was cut or edited)"
    return (text.split("\n")[:-1] if text else []), None


def _check_shard(root: Path, entry: ShardEntry, recorded: dict[str, dict[str, Any]],
                 full: bool) -> tuple[list[Problem], list[str] | None]:
    """Checks of one shard (``full``: every row's offset, not a sample). Returns its doc ids too."""
    shard = int(entry.shard_id)
    rel = str(entry.path)
    folder = root / rel
    n_docs = int(entry.n_docs)
    problems: list[Problem] = []

    def problem(name: str, message: str) -> None:
        problems.append(Problem(shard, f"{rel}/{name}" if name else rel, message))

    if not folder.is_dir():
        problem("", "the shard folder is missing")
        return problems, None
    for name in CHECKSUM_FILES:
        record = recorded.get(f"{rel}/{name}")
        path = folder / name
        if record is not None and path.is_file() and path.stat().st_size != int(record["bytes"]):
            problem(name, f"{path.stat().st_size} bytes, but the build wrote {record['bytes']}: the file was changed")
    ids, trouble = _read_ids(folder / "doc_ids.txt")
    if trouble:
        problem("doc_ids.txt", trouble)
    if ids is not None and len(ids) != n_docs:
        problem("doc_ids.txt", f"{len(ids)} rows, but the shard has {n_docs} documents (manifest)")
    if "lucene" in entry.backends and not any((folder / "lucene").glob("segments_*")):
        problem("lucene", "no Lucene index here (no segments_N file)")
    store = folder / "docs" / "docs.jsonl"
    try:
        offsets = np.load(folder / "docs.offsets.npy", allow_pickle=False)
    except FileNotFoundError:
        problem("docs.offsets.npy", "missing")
        return problems, ids
    except (OSError, ValueError) as exc:
        problem("docs.offsets.npy", f"unreadable ({exc})")
        return problems, ids
    if not store.is_file():
        problem("docs/docs.jsonl", "the document store is missing")
        return problems, ids
    size = store.stat().st_size
    if offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) != n_docs:
        problem("docs.offsets.npy", f"{offsets.dtype} array of shape {offsets.shape}, expected int64 ({n_docs},)")
        return problems, ids
    if n_docs:
        ordered = np.sort(offsets)
        if ordered[0] != 0 or ordered[-1] >= size or not bool(np.all(np.diff(ordered) > 0)):
            problem("docs.offsets.npy", "offsets are not distinct line starts inside docs/docs.jsonl")
            return problems, ids
    if ids is None or len(ids) != n_docs or not n_docs:
        return problems, ids
    if full:
        store_ids, store_offsets = store_ids_and_offsets(store)
        at = dict(zip(store_offsets, store_ids, strict=True))
        wrong = [r for r, off in enumerate(offsets.tolist()) if at.get(off) != ids[r]]
        if len(store_ids) != n_docs:
            problem("docs/docs.jsonl", f"{len(store_ids)} documents, but the shard has {n_docs}")
    else:
        rows = np.unique(np.linspace(0, n_docs - 1, min(SAMPLE_ROWS, n_docs)).astype(np.int64)).tolist()
        wrong = []
        with store.open("rb") as f:
            for r in rows:
                f.seek(int(offsets[r]))
                if _line_id(f.read(4096)) != ids[r]:
                    wrong.append(r)
    if wrong:
        r = wrong[0]
        checked = "rows" if full else "sampled rows"
        problem("docs.offsets.npy", f"{len(wrong)} {checked} point at another document of docs/docs.jsonl "
                                    f"(row {r}, {ids[r]!r}, at byte {int(offsets[r])}); it does not match doc_ids.txt")
    return problems, ids


def quick_check(path: str | os.PathLike[str], manifest: Manifest) -> list[Problem]:
    """The cheap checks run on every open (see the module docstring); ``[]`` when none fails."""
    root = Path(path)
    recorded = manifest.checksums
    problems: list[Problem] = []
    for entry in manifest.shards:
        problems.extend(_check_shard(root, entry, recorded, full=False)[0])
    if manifest.partition is not None and not (root / "partition").is_dir():
        problems.append(Problem(None, "partition", "the partition folder is missing"))
    ranges = manifest.lucene_ranges
    if ranges is not None and not any((root / ranges.path).glob("segments_*")):
        problems.append(Problem(None, ranges.path, "the shards' one Lucene index is missing (no segments_N file)"))
    return problems


def verify_index(path: str | os.PathLike[str], *, lucene: bool = True) -> tuple[list[Problem], list[str]]:
    """Every check: the cheap ones, checksums, every offset, and Lucene's ``CheckIndex``.

    Args:
        path: the index folder.
        lucene: also run Lucene's checks (starts the JVM).

    Returns:
        ``(problems, notes)``: what is wrong (empty for a healthy index), and remarks such as
        "no checksums recorded" for an index built before checksums were recorded.

    Raises:
        NotAnIndexError: no manifest (nothing to check against).
    """
    root = Path(path)
    manifest = Manifest.read(root)
    recorded = manifest.checksums
    notes: list[str] = []
    problems: list[Problem] = []
    shard_ids: dict[int, list[str] | None] = {}
    for entry in manifest.shards:
        found, ids = _check_shard(root, entry, recorded, full=True)
        problems.extend(found)
        shard_ids[int(entry.shard_id)] = ids
    if manifest.partition is not None and not (root / "partition").is_dir():
        problems.append(Problem(None, "partition", "the partition folder is missing"))
    if not recorded:
        notes.append("no checksums recorded (index built by an older selectsearch): checksums not verified; "
                     "rebuild the index to record them")
    shard_of = {str(e.path): int(e.shard_id) for e in manifest.shards}
    for rel, record in recorded.items():
        file = root / rel
        shard = next((s for p, s in shard_of.items() if rel.startswith(p + "/")), None)
        if not file.is_file():
            if file.parent.is_dir():  # a missing shard folder is reported once, above
                problems.append(Problem(shard, rel, "missing"))
            continue
        if file_digest(file)["sha256"] != record.get("sha256"):
            problems.append(Problem(shard, rel, "sha256 differs from the one recorded at build time: the file was "
                                                "changed or damaged"))
    if lucene and "lucene" in (manifest.backends if manifest.backends is not None else ["lucene"]):
        from selectsearch.lucene.indexer import check_lucene_index
        from selectsearch.lucene.jvm import start_jvm

        start_jvm()
        for entry in manifest.shards:
            lucene_dir = root / entry.path / "lucene"
            if "lucene" not in entry.backends or not any(lucene_dir.glob("segments_*")):
                continue  # reported above
            shard = int(entry.shard_id)
            found_lucene, lucene_ids = check_lucene_index(lucene_dir)
            for line in found_lucene:
                named, _, message = line.partition(": ")
                where = Path(named).relative_to(root).as_posix() if named.startswith(str(root)) else named
                problems.append(Problem(shard, where, message or line))
            ids = shard_ids.get(shard)
            if lucene_ids is not None and ids is not None and lucene_ids != ids:
                rel = f"{entry.path}/doc_ids.txt"
                if len(lucene_ids) != len(ids):
                    problems.append(Problem(shard, rel, f"{len(ids)} rows, but the Lucene index has "
                                                        f"{len(lucene_ids)} documents"))
                else:
                    row = next(i for i, (a, b) in enumerate(zip(ids, lucene_ids, strict=True)) if a != b)
                    problems.append(Problem(shard, rel, f"row {row} is {ids[row]!r}, but Lucene's document {row} is "
                                                        f"{lucene_ids[row]!r}: doc ids are not in Lucene's order"))
        ranges = manifest.lucene_ranges
        if ranges is not None and any((root / ranges.path).glob("segments_*")):
            problems.extend(_check_one_index(root, ranges.path, [shard_ids.get(int(s)) for s in ranges.shards]))
    elif not lucene:
        notes.append("Lucene checks skipped (--no-lucene)")
    return problems, notes


def _check_one_index(root: Path, rel: str, shard_ids: list[list[str] | None]) -> list[Problem]:
    """Lucene's checks of the shards' one index, and its doc ids: the shards', shard after shard."""
    from selectsearch.lucene.indexer import check_lucene_index

    found, ids = check_lucene_index(root / rel)
    problems = [Problem(None, rel, line.partition(": ")[2] or line) for line in found]
    if ids is None or any(s is None for s in shard_ids):
        return problems
    expected = [doc for s in shard_ids for doc in (s or [])]
    if ids != expected:
        row = next((i for i, (a, b) in enumerate(zip(ids, expected, strict=False)) if a != b),
                   min(len(ids), len(expected)))
        problems.append(Problem(None, rel, f"document {row} is {ids[row] if row < len(ids) else None!r}, the shards "
                                           f"hold {expected[row] if row < len(expected) else None!r} there "
                                           f"({len(ids)} documents, the shards {len(expected)})"))
    return problems
