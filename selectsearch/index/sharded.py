"""Open a built sharded index: manifest, shard doc ids, document store, partition, Lucene, FAISS.

Opening is cheap: the manifest and doc ids are read eagerly (and checked: see
:func:`selectsearch.index.integrity.quick_check`), the JVM and the Lucene readers only on the
first search, FAISS indexes and the query encoder only on the first dense search,
the partition model only when a router asks for it.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.index.manifest import Manifest, ShardEntry

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.lucene.searcher import ShardedLuceneSearcher
    from selectsearch.partition.base import FittedPartition

__all__ = ["ShardedIndex"]


class ShardedIndex:
    """A built index folder (see :mod:`selectsearch.index.build` for the layout).

    Example:
        >>> index = ShardedIndex.open("indexes/scifact-k16")  # doctest: +SKIP
        >>> index.n_shards, index.n_docs  # doctest: +SKIP
        (16, 5183)
        >>> index.doc("4983")["contents"][:40]  # doctest: +SKIP
    """

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest
        self.shards: list[ShardEntry] = list(manifest.shards)
        self.shard_sizes = np.asarray([s.n_docs for s in self.shards], dtype=np.int64)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, check: bool = True) -> ShardedIndex:
        """Open the index at ``path``.

        Args:
            path: the index folder.
            check: run the cheap integrity checks (shard folders, ``doc_ids.txt`` rows,
                offsets; a few milliseconds) and refuse a damaged index.

        Raises:
            NotAnIndexError: no manifest.
            CorruptIndexError: a check failed; the message names the shard and the file.
        """
        folder = Path(path)
        index = cls(folder, Manifest.read(folder))
        if check:
            from selectsearch.index.integrity import quick_check

            problems = quick_check(folder, index.manifest)
            if problems:
                from selectsearch.errors import CorruptIndexError

                more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
                raise CorruptIndexError(f"{folder} is damaged: {problems[0]}{more}; rebuild it with `selectsearch "
                                        f"index ... --out {folder} --overwrite` (`selectsearch verify {folder}` "
                                        "lists every problem)")
        return index

    @property
    def n_shards(self) -> int:
        """Number of shards K."""
        return len(self.shards)

    @property
    def n_docs(self) -> int:
        """Documents in the collection."""
        return int(self.shard_sizes.sum())

    def shard_path(self, shard: int) -> Path:
        """Folder of shard ``shard``."""
        return self.path / self.shards[shard].path

    def shard_doc_ids(self, shard: int) -> list[str]:
        """Doc ids of a shard, in Lucene doc order (FAISS rows follow the same order)."""
        text = (self.shard_path(shard) / "doc_ids.txt").read_text(encoding="utf-8")
        return text.split("\n")[:-1] if text else []

    @cached_property
    def backends(self) -> tuple[str, ...]:
        """Search backends of the index: ``lucene``, ``faiss`` or both (from the manifest)."""
        if self.manifest.backends is not None:
            return tuple(self.manifest.backends)
        found = {b for s in self.shards for b in s.backends}
        return tuple(b for b in ("lucene", "faiss") if b in found) or ("lucene",)

    def has_backend(self, backend: str) -> bool:
        """Whether the index was built (or extended) with ``backend``."""
        return backend in self.backends or (backend == "faiss" and self.manifest.dense is not None)

    @cached_property
    def lucene_shards(self) -> list[int]:
        """Shards that have a Lucene index (empty shards have none)."""
        return [s.shard_id for s in self.shards if "lucene" in s.backends]

    @cached_property
    def global_doc_ids(self) -> np.ndarray:
        """Doc id of each global Lucene docid (shards concatenated in :attr:`lucene_shards` order)."""
        ids: list[str] = []
        for s in self.lucene_shards:
            ids.extend(self.shard_doc_ids(s))
        return np.asarray(ids, dtype=object)

    @cached_property
    def doc_id_ranks(self) -> np.ndarray:
        """Rank of each global Lucene docid's doc id string among all of them (int32).

        Ordering tied hits by this rank orders them by doc id, as
        :func:`~selectsearch.ranking.order_by_score` does, with integers: the Lucene engine cuts
        its top k by it (see "Ties" in :mod:`selectsearch.lucene.searcher`).
        """
        ids = self.global_doc_ids
        ranks = np.empty(len(ids), dtype=np.int32)
        ranks[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids), dtype=np.int32)
        return ranks

    @cached_property
    def global_shard_ids(self) -> np.ndarray:
        """Shard of each global Lucene docid."""
        return np.repeat(np.asarray(self.lucene_shards, dtype=np.int32), self.shard_sizes[self.lucene_shards])

    @cached_property
    def shard_of_doc(self) -> dict[str, int]:
        """``{doc_id: shard}`` for the whole collection (built on first use; any backend)."""
        out: dict[str, int] = {}
        for s in range(self.n_shards):
            if self.shard_sizes[s]:
                out.update(dict.fromkeys(self.shard_doc_ids(s), s))
        return out

    def lucene(self, *, k1: float | None = None, b: float | None = None, threads: int = 1,
               one_index: bool = True) -> ShardedLuceneSearcher:
        """A :class:`ShardedLuceneSearcher` over all shards (starts the JVM), cutting and ordering
        tied hits by doc id (:attr:`doc_id_ranks`).

        With ``one_index`` (the default) and an index that has its shards merged into one Lucene
        index (``selectsearch index --lucene-ranges``; :mod:`selectsearch.index.ranges`), that one
        is searched, and the shard indexes only for queries over a few shards
        (:data:`~selectsearch.lucene.searcher.SHARD_INDEXES_UP_TO`): same hits and scores, less
        work. It is checked first: its recorded shards and sizes are the manifest's, its document
        count theirs, and the first and last document of every shard are where they should be.

        Raises:
            ShardedIndexError: the index has no Lucene backend (built with ``--backend faiss``).
            CorruptIndexError: a Lucene index does not hold the documents the manifest says.
        """
        from selectsearch.lucene.searcher import ShardedLuceneSearcher

        if not self.has_backend("lucene"):
            from selectsearch.errors import ShardedIndexError

            raise ShardedIndexError(f"{self.path} has no Lucene backend (built with --backend faiss); search it with "
                                    "--retriever dense, or rebuild with --backend lucene,faiss")

        bm25 = self.manifest.bm25  # what the build recorded (the defaults for older manifests)
        ranges = self.manifest.lucene_ranges if one_index else None
        expected = self.shard_sizes[self.lucene_shards]
        if ranges is not None and (list(ranges.shards), list(ranges.sizes)) != (self.lucene_shards, expected.tolist()):
            self._damaged(f"{ranges.path}/ was merged from shards {ranges.shards} of sizes {ranges.sizes}, the "
                          f"manifest has shards {self.lucene_shards} of sizes {expected.tolist()}")
        searcher = ShardedLuceneSearcher(  # Lucene's own errors become CorruptIndexError (open_directory_reader)
            [self.shard_path(s) / "lucene" for s in self.lucene_shards],
            k1=bm25.k1 if k1 is None else k1,
            b=bm25.b if b is None else b,
            analyzer=self.manifest.analyzer_class,
            threads=threads,
            one_index=None if ranges is None else self.path / ranges.path,
            shard_sizes=None if ranges is None else expected.tolist(),
            shard_labels=self.lucene_shards,
        )
        if ranges is not None:
            self._check_ranges(searcher)
        for shard, want, got in zip(self.lucene_shards, expected.tolist(), searcher.shard_sizes.tolist(),
                                    strict=True):
            if want != got:
                searcher.close()
                self._damaged(f"shard {shard:03d} {self.shards[shard].path}/lucene has {got} documents, but its "
                              f"doc_ids.txt and the manifest have {want}")
        searcher.set_tie_ranks(self.doc_id_ranks)  # ties cut by doc id: the same top k for any sharding
        return searcher

    def _check_ranges(self, searcher: ShardedLuceneSearcher) -> None:
        """Refuse a one index whose shard boundaries hold other documents than the shards'."""
        ends = np.concatenate([searcher.doc_bases, searcher.doc_bases + searcher.shard_sizes - 1])
        ends = np.unique(ends[ends >= 0])
        found = searcher.stored_ids(ends.tolist())
        want = self.global_doc_ids[ends].tolist()
        for docid, got, expect in zip(ends.tolist(), found, want, strict=True):
            if got != expect:
                searcher.close()
                self._damaged(f"{searcher.one_index} holds {got!r} at doc {docid}, where its shards hold {expect!r}")

    def _damaged(self, problem: str) -> None:
        from selectsearch.errors import CorruptIndexError

        raise CorruptIndexError(f"{self.path} is damaged: {problem}; rebuild it with `selectsearch index ... --out "
                                f"{self.path} --overwrite` (`selectsearch verify {self.path}` lists every problem)")

    @cached_property
    def partition(self) -> FittedPartition:
        """The fitted partition saved with the index."""
        from selectsearch.partition.base import load_partition

        return load_partition(self.path / "partition")

    @cached_property
    def _store_offsets(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for s in range(self.n_shards):
            offsets = np.load(self.shard_path(s) / "docs.offsets.npy")
            for doc_id, off in zip(self.shard_doc_ids(s), offsets.tolist(), strict=True):
                out[doc_id] = (s, int(off))
        return out

    def doc(self, doc_id: str) -> dict[str, Any]:
        """The stored document ``{"id", "contents", "shard"}`` (raises ``KeyError`` if absent)."""
        shard, offset = self._store_offsets[doc_id]
        with (self.shard_path(shard) / "docs" / "docs.jsonl").open("rb") as f:
            f.seek(offset)
            record: dict[str, Any] = json.loads(f.readline())
        return record

    def describe(self) -> dict[str, Any]:
        """Summary for ``selectsearch info``."""
        m = self.manifest
        part = m.partition_json
        corpus = m.corpus.to_json()
        dense = m.dense.to_json() if m.dense is not None else None
        return {
            "path": str(self.path),
            "format_version": m.format_version,
            "created": m.created,
            "command": " ".join(m.command),
            "corpus": {k: corpus.get(k) for k in ("sources", "n_docs", "fingerprint")},
            "partition": {k: v for k, v in part.items() if k not in ("sizes",)},
            "shard_sizes": part.get("sizes"),
            "backends": list(self.backends),
            **({"dense": {k: dense.get(k) for k in ("model", "dim", "metric", "config")}} if dense is not None else {}),
            **({"lucene_ranges": {"path": m.lucene_ranges.path, "shards": len(m.lucene_ranges.shards),
                                  "seconds": m.lucene_ranges.seconds}} if m.lucene_ranges is not None else {}),
            "versions": m.versions,
            "build_seconds": m.build_seconds,
        }
