"""A shard group: one process, one JVM, the shards it hosts.

**Exact scores.** A group opens the Lucene indexes of *all* shards under one ``MultiReader``
(memory-mapped: unselected shards cost term-dictionary lookups, not postings reads) so BM25's
document frequencies, document count and average length are collection-wide, and it only ever
searches the shards it hosts (the non-scoring shard filter of
:class:`~selectsearch.lucene.searcher.ShardedLuceneSearcher`). Its hits therefore carry exactly
the scores in-process search gives, and global Lucene docids that every group agrees on. This
needs the index folder on storage every node can read (a shared or replicated file system).

Without shared storage, the exact alternative is a statistics exchange in the style of
Elasticsearch's ``dfs_query_then_fetch``: the coordinator keeps the collection-wide ``N``,
``sum(doc length)`` and per-term ``df``/``ttf`` (the per-shard term statistics that
``selectsearch.index.termstats`` already builds, summed), sends them with each query, and each
group scores with them — in Lucene an ``IndexSearcher`` subclass overriding
``collectionStatistics`` and ``termStatistics`` (a few lines of Java; pyjnius cannot subclass
Java classes, which is why this version shares the reader instead).

Every method runs on the actor's single thread (Ray's default for a synchronous actor), which
is what pyjnius requires.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ShardGroup", "query_error"]


def query_error(exc: BaseException) -> dict[str, Any]:
    """The per-query error of a search that raised: ``{"error", "message", "status"}``.

    Lucene's ``TooManyClauses`` (more distinct terms than one query may have) is the query's
    fault (422, ``too_many_terms``); anything else is the server's (500, ``search_failed``).

    Example:
        >>> query_error(RuntimeError("boom"))["status"]
        500
    """
    text = f"{type(exc).__name__}: {exc}"
    if "TooManyClauses" in text or "maxClauseCount" in text:
        return {"error": "too_many_terms", "status": 422,
                "message": "the query has more distinct terms than Lucene accepts in one query; shorten it"}
    return {"error": "search_failed", "status": 500, "message": f"searching this query failed ({text[:300]})"}


class ShardGroup:
    """Search a fixed set of shards of an index with collection-wide statistics.

    Args:
        index_path: the index folder (readable from this process).
        shards: shard ids this group hosts.
        group_id: this group's number (for traces).
        java_heap: ``-Xmx`` of this process's JVM.

    Example:
        >>> group = ShardGroup("indexes/scifact-k16", [0, 1, 2, 3])  # doctest: +SKIP
        >>> [(docids, scores)], stats = group.search(["vitamin d"], 10, [[0, 2]])  # doctest: +SKIP
    """

    def __init__(self, index_path: str | os.PathLike[str], shards: Sequence[int], *, group_id: int = 0,
                 java_heap: str | None = None) -> None:
        from selectsearch.index.sharded import ShardedIndex
        from selectsearch.lucene.jvm import start_jvm

        if java_heap:
            start_jvm(java_heap)
        self.index = ShardedIndex.open(Path(index_path))
        self.group_id = int(group_id)
        self.shards = tuple(sorted(int(s) for s in shards))
        self._hosted = frozenset(self.shards)
        self._lucene_pos = {s: i for i, s in enumerate(self.index.lucene_shards)}
        unknown = [s for s in self.shards if s not in self._lucene_pos]
        if unknown:
            from selectsearch.serve.config import ServeError

            raise ServeError(f"group {group_id}: shards {unknown} have no Lucene index in {index_path}")
        t = time.perf_counter()
        self._lucene = self.index.lucene()
        self._lucene.search("warm up", 1, [self._lucene_pos[self.shards[0]]])
        self.open_ms = (time.perf_counter() - t) * 1000.0
        self.started = time.time()
        self._delay_s = 0.0
        self._fail_text: str | None = None
        self._calls = 0

    def search(self, texts: Sequence[str], depth: int, shard_lists: Sequence[Sequence[int]]
               ) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
        """Top ``depth`` (global docids, scores) of each text over its shards (all hosted here).

        Returns the per-query hits and ``{"group", "pid", "wall_ms", "cpu_ms", "errors"}`` of
        this call (thread CPU time: the search runs on this thread, JNI included). A query whose
        search raises fails alone: its hits are empty and ``errors[position]`` says why
        (``{"error", "message", "status"}``, see :func:`query_error`); the other queries of the
        call are answered.
        """
        if len(texts) != len(shard_lists):
            raise ValueError(f"{len(texts)} queries but {len(shard_lists)} shard lists")
        t_wall, t_cpu = time.perf_counter(), time.thread_time()
        self._calls += 1
        if self._delay_s:
            time.sleep(self._delay_s)
        for shards in shard_lists:
            foreign = [s for s in shards if s not in self._hosted]
            if foreign:
                raise ValueError(f"group {self.group_id} does not host shards {foreign}")
        out = []
        errors: dict[int, dict[str, Any]] = {}
        for j, (text, shards) in enumerate(zip(texts, shard_lists, strict=True)):
            try:
                if self._fail_text is not None and text == self._fail_text:
                    raise RuntimeError("injected fault: this query text always fails")
                out.append(self._lucene.search(text, int(depth), [self._lucene_pos[int(s)] for s in shards]))
            except Exception as exc:  # this query only (Lucene refused it, ...): never the whole batch
                errors[j] = query_error(exc)
                out.append((np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)))
        stats = {"group": self.group_id, "pid": os.getpid(), "wall_ms": (time.perf_counter() - t_wall) * 1000.0,
                 "cpu_ms": (time.thread_time() - t_cpu) * 1000.0, "errors": errors}
        return out, stats

    def ping(self) -> dict[str, Any]:
        """Liveness and identity: pid, hosted shards, start time, calls served, injected delay, index folder."""
        return {"group": self.group_id, "pid": os.getpid(), "shards": list(self.shards), "started": self.started,
                "open_ms": self.open_ms, "calls": self._calls, "delay_s": self._delay_s, "index": str(self.index.path)}

    def inject_fault(self, *, delay_s: float = 0.0, crash: bool = False, fail_text: str | None = None) -> None:
        """Fault drills: slow every later search by ``delay_s``, make every later search of the
        query text ``fail_text`` raise (``None``: none), or exit the process at once (``crash``;
        Ray restarts the actor when ``max_restarts`` allows)."""
        self._delay_s = float(delay_s)
        self._fail_text = fail_text
        if crash:
            os._exit(1)
