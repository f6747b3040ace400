"""Shard groups on Ray as one shard searcher: fan out, retry on replicas, merge exactly.

:class:`RemoteShards` is the serving coordinator's :class:`~selectsearch.pipeline.ShardSearcher`:
the same job as :mod:`selectsearch.pipeline.shards` in process, over actors
(:class:`~selectsearch.serve.actor.ShardGroup`) that each hold a group of shards.

1. **Fan out** one call per shard group that holds a selected shard, only those groups, with
   each query's selected shards of that group. A replica is picked round-robin among the
   healthy ones; a call that fails (actor died, queue full) is retried on another replica
   while the deadline allows.
2. **Merge** when every group answered or the deadline passed: per query, the groups' top
   ``depth`` lists are cut to the global top ``depth`` by ``(-score, doc id)`` — the order each
   group's engine cut its own list by (:attr:`~selectsearch.index.sharded.ShardedIndex.doc_id_ranks`),
   so the cut equals in-process search over the union of the shards — and returned in that
   order, the one :mod:`selectsearch.ranking` gives every list. Shards whose group did not answer
   are the query's ``missing_shards``; a query whose search raised in a group fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selectsearch.index.sharded import ShardedIndex
from selectsearch.pipeline.stages import Retrieved
from selectsearch.ranking import order_by_score
from selectsearch.serve.config import RequestError, ServeConfig, ServeError
from selectsearch.serve.placement import check_placement, plan_groups
from selectsearch.types import Hit, Query

__all__ = ["RemoteShards", "ServeShards", "merge_hits", "place_groups"]

log = logging.getLogger("selectsearch.serve.coordinator")  # operators filter on the coordinator's logger


def merge_hits(parts: Sequence[tuple[np.ndarray, np.ndarray]], depth: int, doc_ids: np.ndarray,
               shard_ids: np.ndarray, ranks: np.ndarray | None = None) -> list[Hit]:
    """The global top ``depth`` of several groups' ``(global docids, scores)`` lists, best first.

    With ``ranks`` (each global docid's rank among the doc id strings, as the groups' engines cut
    their lists by it) the cut is by ``(-score, doc id)``; without, by ``(-score, global docid)``,
    Lucene's own order. Either way ties at the boundary fall exactly as in one search over all
    the shards, and the result is ordered by ``(-score, doc_id)``, the library's tie-break.

    Example:
        >>> ids = np.array(["a", "b", "c"], dtype=object); shards = np.array([0, 1, 1])
        >>> parts = [(np.array([0]), np.array([1.0], np.float32)), (np.array([2, 1]), np.array([2.0, 1.0], np.float32))]
        >>> [h.doc_id for h in merge_hits(parts, 2, ids, shards)]
        ['c', 'a']
    """
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return []
    docids = np.concatenate([np.asarray(p[0], dtype=np.int64) for p in parts])
    scores = np.concatenate([np.asarray(p[1], dtype=np.float32) for p in parts])
    order = np.lexsort((docids if ranks is None else ranks[docids], -scores))[:depth]
    docids, scores = docids[order], scores[order]
    ids = doc_ids[docids].tolist()
    score_list = scores.tolist()
    shard_list = shard_ids[docids].tolist()
    final = order_by_score(score_list, ids) if ranks is None else range(len(ids))
    return [Hit(ids[j], score_list[j], shard_list[j]) for j in final]


def place_groups(index: ShardedIndex, config: ServeConfig) -> tuple[tuple[int, ...], ...]:
    """The shard groups of ``index`` under ``config``: its explicit placement (checked), else
    groups of ``shards_per_group`` balanced by documents (deterministic)."""
    shards = index.lucene_shards
    if config.placement:
        return check_placement(config.placement, shards)
    return plan_groups(index.shard_sizes, shards, config.shards_per_group)


@dataclass
class _Replica:
    handle: Any
    down_until: float = 0.0
    failures: int = 0


@dataclass
class _Call:
    group: int
    replica: int
    queries: list[int]
    shard_lists: list[list[int]]
    ref: Any = None
    started: float = 0.0


@dataclass
class _FanOut:
    """What the groups answered: per group, the hits aligned with its call's queries."""

    hits: dict[int, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    calls: dict[int, _Call] = field(default_factory=dict)
    stats: dict[int, dict[str, Any]] = field(default_factory=dict)
    failures: dict[int, list[str]] = field(default_factory=dict)


class RemoteShards:
    """The shards of an index served by Ray actors, searched and merged like in-process shards.

    Args:
        index: the opened index (every node must be able to read its folder).
        config: placement, replication, actor resources, deadlines.

    Ray must be initialised. Actors start in the background; :meth:`wait_ready` blocks until
    all answer.
    """

    name = "bm25"

    def __init__(self, index: ShardedIndex, config: ServeConfig) -> None:
        import ray

        from selectsearch.serve.actor import ShardGroup

        self._set_up(index, config)
        self._rr = itertools.count()
        remote_cls = ray.remote(ShardGroup)
        self.replicas: list[list[_Replica]] = []
        for g, members in enumerate(self.groups):
            row = []
            for _ in range(config.replicas):
                handle = remote_cls.options(
                    max_restarts=config.max_restarts, max_task_retries=0,
                    num_cpus=config.actor_num_cpus, max_pending_calls=config.actor_max_pending,
                    scheduling_strategy="SPREAD" if config.spread else "DEFAULT",
                ).remote(str(index.path), list(members), group_id=g, java_heap=config.actor_java_heap)
                row.append(_Replica(handle))
            self.replicas.append(row)

    def _set_up(self, index: ShardedIndex, config: ServeConfig) -> None:
        self.index = index
        self.config = config
        self.groups = place_groups(index, config)
        self.group_of = {s: g for g, members in enumerate(self.groups) for s in members}
        self._doc_ids = index.global_doc_ids
        self._shard_ids = index.global_shard_ids
        self._ranks = index.doc_id_ranks

    def wait_ready(self, timeout_s: float = 120.0) -> list[list[dict[str, Any]]]:
        """Block until every actor answers a ping; returns the pings (per group, per replica)."""
        import ray

        refs = [[r.handle.ping.remote() for r in row] for row in self.replicas]
        try:
            return [ray.get(row, timeout=timeout_s) for row in refs]
        except Exception as exc:
            raise ServeError(f"shard actors did not start within {timeout_s:.0f} s ({type(exc).__name__}: {exc}); "
                             "check the Ray logs (/tmp/ray/session_latest/logs) and that every node can read "
                             f"{self.index.path}") from exc

    async def ahealth(self, timeout_s: float = 2.0) -> dict[str, Any]:
        """Ping every replica; ``ok`` when each group has at least one live replica."""
        groups = []
        for g, row in enumerate(self.replicas):
            replicas = []
            for r in row:
                try:
                    ping = await asyncio.wait_for(asyncio.wrap_future(r.handle.ping.remote().future()), timeout_s)
                    replicas.append({"ok": True, "pid": ping["pid"], "calls": ping["calls"]})
                except Exception as exc:  # dead, restarting or too slow: all mean "not now"
                    replicas.append({"ok": False, "error": type(exc).__name__})
            groups.append({"group": g, "shards": list(self.groups[g]), "replicas": replicas,
                           "ok": any(r["ok"] for r in replicas)})
        return {"ok": all(g["ok"] for g in groups), "groups": groups}

    def inject_fault(self, group: int, replica: int = 0, *, delay_s: float = 0.0, crash: bool = False,
                     fail_text: str | None = None) -> Any:
        """Fault drill on one actor (see :meth:`ShardGroup.inject_fault`); returns the Ray call."""
        return self.replicas[group][replica].handle.inject_fault.remote(delay_s=delay_s, crash=crash,
                                                                        fail_text=fail_text)

    def close(self) -> None:
        """Stop the actors."""
        import ray

        for row in self.replicas:
            for r in row:
                with contextlib.suppress(Exception):  # already gone
                    ray.kill(r.handle, no_restart=True)

    def warm(self) -> None:
        self.wait_ready()

    def describe(self) -> dict[str, Any]:
        return {}

    def search(self, queries: Sequence[Query], shard_lists: Sequence[Sequence[int]], depth: int, *,
               encoded: Any = None) -> list[Retrieved]:
        """Synchronous :meth:`asearch` with the configured deadline."""
        deadline = time.perf_counter() + self.config.deadline_ms / 1000.0
        return asyncio.run(self.asearch(queries, shard_lists, depth, deadline))

    async def asearch(self, queries: Sequence[Query], shard_lists: Sequence[Sequence[int]], depth: int,
                      deadline: float) -> list[Retrieved]:
        """Fan out to the groups holding the selected shards, wait until ``deadline``
        (``time.perf_counter()`` seconds), merge; one :class:`Retrieved` per query.

        Every query's timings are the fan-out's wall time (``search``) and its own merge time;
        ``extra`` records the groups asked, their CPU per query, and any group failures.

        Raises:
            RequestError: 503 ``unavailable`` when not one of the groups the batch needed answered.
        """
        t = time.perf_counter()
        fan = await self._fan_out([q.text for q in queries], shard_lists, depth, deadline)
        search_ms = (time.perf_counter() - t) * 1000.0
        if fan.calls and not fan.hits:
            # every group the request needed failed: no answer at all, not "200 with 0 hits"
            reasons = "; ".join(f"group {g}: {', '.join(fan.failures.get(g, ['no answer']))}"
                                for g in sorted(fan.calls))
            raise RequestError(503, "unavailable", f"no shard group answered ({reasons}); retry after a short pause")
        position = {g: {qi: j for j, qi in enumerate(call.queries)} for g, call in fan.calls.items()}
        out: list[Retrieved] = []
        for i, shards in enumerate(shard_lists):
            t = time.perf_counter()
            parts: list[tuple[np.ndarray, np.ndarray]] = []
            missing: list[int] = []
            error: dict[str, Any] | None = None
            cpu_ms = 0.0
            groups = sorted({self.group_of[s] for s in shards if s in self.group_of})
            for g in groups:
                j = position.get(g, {}).get(i)
                if g in fan.hits and j is not None:
                    error = error or fan.stats[g].get("errors", {}).get(j)
                    parts.append(fan.hits[g][j])
                    cpu_ms += fan.stats[g]["cpu_ms"] / len(fan.calls[g].queries)
                else:
                    missing.extend(s for s in shards if self.group_of.get(s) == g)
            # a query that failed in a group (e.g. Lucene refused it) fails alone, with no hits:
            # the other queries of the batch and the replicas are not affected
            hits = [] if error else merge_hits(parts, depth, self._doc_ids, self._shard_ids, self._ranks)
            merge_ms = (time.perf_counter() - t) * 1000.0
            extra: dict[str, Any] = {"groups": groups, "actor_cpu_ms": round(cpu_ms, 3)}
            failed = {str(g): fan.failures[g] for g in groups if g in fan.failures}
            if failed:
                extra["failures"] = failed
            out.append(Retrieved(hits, {"search": search_ms, "merge": merge_ms}, extra, missing_shards=missing,
                                 error=dict(error) if error else None))
        return out

    def _plan_calls(self, searched: Sequence[Sequence[int]]) -> dict[int, _Call]:
        """One call per shard group holding a selected shard: which queries, with which of its shards."""
        per_group: dict[int, _Call] = {}
        for i, shards in enumerate(searched):
            by_group: dict[int, list[int]] = {}
            for s in shards:
                if s in self.group_of:
                    by_group.setdefault(self.group_of[s], []).append(s)
            for g, members in by_group.items():
                call = per_group.setdefault(g, _Call(g, -1, [], []))
                call.queries.append(i)
                call.shard_lists.append(members)
        return per_group

    def _pick_replica(self, group: int, exclude: set[int]) -> int | None:
        row = self.replicas[group]
        candidates = [r for r in range(len(row)) if r not in exclude]
        if not candidates:
            return None
        now = time.monotonic()
        healthy = [r for r in candidates if row[r].down_until <= now]
        pool = healthy or candidates
        return pool[next(self._rr) % len(pool)]

    async def _fan_out(self, texts: Sequence[str], searched: Sequence[Sequence[int]], depth: int,
                       deadline: float) -> _FanOut:
        import ray

        per_group = self._plan_calls(searched)
        fan = _FanOut(calls=per_group)
        tried: dict[int, set[int]] = {g: set() for g in per_group}
        pending: dict[asyncio.Future[Any], _Call] = {}

        def submit(call: _Call) -> None:
            while True:
                r = self._pick_replica(call.group, tried[call.group])
                if r is None:
                    return
                tried[call.group].add(r)
                handle = self.replicas[call.group][r].handle
                try:
                    ref = handle.search.remote([texts[i] for i in call.queries], depth, call.shard_lists)
                except Exception as exc:  # e.g. PendingCallsLimitExceeded: this replica's queue is full
                    self._failed(call.group, r, fan, exc)
                    continue
                call.replica, call.ref, call.started = r, ref, time.perf_counter()
                pending[asyncio.wrap_future(ref.future())] = call
                return

        for call in per_group.values():
            submit(call)
        while pending:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            done, _ = await asyncio.wait(list(pending), timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break
            for fut in done:
                call = pending.pop(fut)
                try:
                    hits, stats = fut.result()
                except ray.exceptions.RayTaskError as exc:  # raised by the search code, the actor is alive:
                    # another replica would raise the same, and this one is not down
                    reason = f"replica {call.replica}: {type(exc.cause).__name__}: {exc.cause}"[:500]
                    fan.failures.setdefault(call.group, []).append(reason)
                    log.warning("shard group %d %s", call.group, reason)
                    continue
                except Exception as exc:  # actor died / restarting / unavailable: try another replica
                    self._failed(call.group, call.replica, fan, exc)
                    submit(call)
                    continue
                fan.hits[call.group] = hits
                fan.stats[call.group] = stats
                self.replicas[call.group][call.replica].down_until = 0.0
        for fut, call in pending.items():
            fan.failures.setdefault(call.group, []).append(f"replica {call.replica}: deadline exceeded")
            fut.cancel()
            with contextlib.suppress(Exception):  # already running or finished: nothing to free
                ray.cancel(call.ref)
        for g in per_group:
            if g not in fan.hits and g not in fan.failures:
                fan.failures[g] = ["no replica available"]
        return fan

    def _failed(self, group: int, replica: int, fan: _FanOut, exc: BaseException) -> None:
        rep = self.replicas[group][replica]
        rep.failures += 1
        rep.down_until = time.monotonic() + self.config.retry_cooldown_s
        reason = f"replica {replica}: {type(exc).__name__}"
        fan.failures.setdefault(group, []).append(reason)
        log.warning("shard group %d %s", group, reason)


class ServeShards(RemoteShards):
    """The same fan-out and exact merge over Ray Serve deployments, one per shard group.

    Serve picks the replica of each call (the least loaded of two), queues and bounds calls
    (``max_ongoing_requests``, ``max_queued_requests``), health-checks replicas and replaces dead
    ones; this class only adds what Serve does not know: the request's deadline. A call that
    fails because its replica died or was unreachable is sent again (Serve routes it to a live
    replica, or holds it until one is back) while the deadline allows; a call whose search
    code raised is not retried; a group that has not answered by the deadline is cancelled and
    its shards are the queries' ``missing_shards``. The merge is :meth:`RemoteShards.asearch`'s.

    Args:
        index: the opened index (routing and merging need its doc ids).
        config: its ``placement`` must be the groups the deployments were built with.
        handles: one ``DeploymentHandle`` per group, in placement order.
    """

    name = "bm25"

    def __init__(self, index: ShardedIndex, config: ServeConfig, handles: Sequence[Any]) -> None:
        self._set_up(index, config)
        if len(handles) != len(self.groups):
            raise ServeError(f"{len(handles)} shard-group deployments for {len(self.groups)} groups")
        self.handles = list(handles)
        self.replicas = []  # Serve owns the replicas

    def wait_ready(self, timeout_s: float = 120.0) -> list[list[dict[str, Any]]]:
        """Block until a replica of every group answers a ping (Serve's ``run`` already waits)."""
        return [[h.ping.remote().result(timeout_s=timeout_s)] for h in self.handles]

    async def ahealth(self, timeout_s: float = 2.0) -> dict[str, Any]:
        """Ping a replica of every group; ``ok`` when each answered."""
        async def one(g: int) -> dict[str, Any]:
            try:
                ping = await asyncio.wait_for(self._await(self.handles[g].ping.remote()), timeout_s)
                rep = {"ok": True, "pid": ping["pid"], "calls": ping["calls"], "index": ping.get("index")}
            except Exception as exc:  # dead, restarting or too slow: all mean "not now"
                rep = {"ok": False, "error": type(exc).__name__}
            return {"group": g, "shards": list(self.groups[g]), "replicas": [rep], "ok": rep["ok"]}

        groups = list(await asyncio.gather(*(one(g) for g in range(len(self.handles)))))
        return {"ok": all(g["ok"] for g in groups), "groups": groups}

    def inject_fault(self, group: int, replica: int = 0, *, delay_s: float = 0.0, crash: bool = False,
                     fail_text: str | None = None) -> Any:
        """Fault drill on one replica of ``group`` (the one Serve routes the call to)."""
        return self.handles[group].inject_fault.remote(delay_s=delay_s, crash=crash, fail_text=fail_text)

    def close(self) -> None:
        """Nothing to stop: Serve owns the deployments (``serve.delete`` removes them)."""

    @staticmethod
    async def _await(response: Any) -> Any:
        return await response

    async def _fan_out(self, texts: Sequence[str], searched: Sequence[Sequence[int]], depth: int,
                       deadline: float) -> _FanOut:
        per_group = self._plan_calls(searched)
        fan = _FanOut(calls=per_group)
        await asyncio.gather(*(self._call(call, texts, depth, deadline, fan) for call in per_group.values()))
        for g in per_group:
            if g not in fan.hits and g not in fan.failures:
                fan.failures[g] = ["no replica available"]
        return fan

    async def _call(self, call: _Call, texts: Sequence[str], depth: int, deadline: float, fan: _FanOut) -> None:
        import ray

        failures = fan.failures.setdefault(call.group, [])
        batch = [texts[i] for i in call.queries]
        pause = 0.02
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                failures.append("deadline exceeded")
                break
            response = self.handles[call.group].search.remote(batch, depth, call.shard_lists)
            try:
                hits, stats = await asyncio.wait_for(self._await(response), remaining)
            except TimeoutError:
                response.cancel()
                failures.append("deadline exceeded")
                break
            except ray.exceptions.RayTaskError as exc:  # raised by the search code: a retry would raise it again
                cause = getattr(exc, "cause", exc)
                failures.append(f"{type(cause).__name__}: {cause}"[:500])
                log.warning("shard group %d: %s", call.group, failures[-1])
                break
            except Exception as exc:  # replica died, unreachable, queue full: Serve routes the retry elsewhere
                failures.append(type(exc).__name__)
                log.warning("shard group %d: %s; retrying", call.group, type(exc).__name__)
                await asyncio.sleep(min(pause, max(0.0, deadline - time.perf_counter())))
                pause = min(pause * 2, 0.5)
                continue
            fan.hits[call.group] = hits
            fan.stats[call.group] = stats
            if not failures:
                del fan.failures[call.group]
            break
        if call.group in fan.failures and not fan.failures[call.group]:
            del fan.failures[call.group]
