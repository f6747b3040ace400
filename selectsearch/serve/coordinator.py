"""The coordinator: validate, route, fan out to the shard groups, merge exactly, rerank.

Data flow of one request (a batch of queries):

1. **Validate** (:meth:`Coordinator.check_request`): empty query, ``k`` out of range, unknown
   or unusable route, oversized batch -> :class:`~selectsearch.serve.config.RequestError` (4xx).
2. **Route** on the coordinator's single routing thread (routers may use the JVM — ReDDE and
   Rank-S search the central sample index — and pyjnius is not thread-safe). The same
   :func:`~selectsearch.route.make_router` routers as in-process search.
3. **Fan out** one call per shard group that holds a selected shard, only those groups, with
   each query's selected shards of that group. A replica is picked round-robin among the
   healthy ones; a call that fails (actor died, queue full) is retried on another replica
   while the deadline allows.
4. **Merge** when every group answered or the deadline passed: per query, the groups' top
   ``depth`` lists are cut to the global top ``depth`` by ``(-score, global docid)`` —
   Lucene's own order, so the cut equals in-process search over the union of the shards — and
   ordered by ``(-score, doc_id)`` as :class:`~selectsearch.search.SelectiveSearcher` does.
   Shards whose group did not answer are named in ``trace.missing_shards``.
5. **Rerank** (optional, any :class:`~selectsearch.search.Reranker`) on its own thread.

Example:
    >>> import ray  # doctest: +SKIP
    >>> ray.init()  # doctest: +SKIP
    >>> config = ServeConfig(route="centroid@4", shards_per_group=4)
    >>> coord = Coordinator("indexes/scifact-k16", config)  # doctest: +SKIP
    >>> coord.wait_ready()  # doctest: +SKIP
    >>> out = coord.batch_search({"q1": "vitamin d and bone"}, k=10)  # doctest: +SKIP
    >>> out["q1"].hits[0], out["q1"].trace.missing_shards  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import SelectSearchError
from selectsearch.ranking import order_by_score
from selectsearch.route import RouteSpec, parse_route
from selectsearch.search import rerank_head
from selectsearch.serve.config import RequestError, ServeConfig, ServeError
from selectsearch.serve.placement import check_placement, plan_groups
from selectsearch.types import Hit, Qrels, Query, SearchResult, SearchTrace

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.route import Router
    from selectsearch.search import Reranker

__all__ = ["Coordinator", "connect_ray", "merge_hits"]

log = logging.getLogger(__name__)


def connect_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Connect to the Ray cluster at ``address`` (``None``: start a local one), quietly.

    Usage statistics are off unless ``RAY_USAGE_STATS_ENABLED`` says otherwise, the dashboard
    is not started, and worker logs are not copied to this process's stderr.

    **A local instance listens on loopback only.** Ray's own choice on Linux is the machine's
    network address: its GCS, raylet, workers and Prometheus metrics servers listen on every
    interface and its agents on that address, unauthenticated. Started here, Ray runs in its
    single-node mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, what Ray does on macOS and
    Windows), where every one of its processes binds ``127.0.0.1``; no other machine can join
    it. To spread shard groups over machines, form a cluster explicitly (``ray start --head
    --node-ip-address=IP`` on one machine, ``ray start --address=IP:6379`` on the others, on a
    network you trust) and pass its address (``"auto"`` on one of its nodes).

    A local instance is stopped by ``ray.shutdown()``; a watchdog process
    (:mod:`selectsearch.serve.watchdog`) also stops whatever is left of it when this process
    dies without cleaning up (SIGKILL).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # inherited by every Ray process
    try:
        import ray
        from ray._private import ray_constants
    except ImportError as exc:
        raise ServeError("Ray is not installed: pip install 'selectsearch[ray]' (or 'ray[serve]')") from exc
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address is None:
        kwargs.update(include_dashboard=False, num_cpus=num_cpus, dashboard_host="127.0.0.1")
        from selectsearch.serve.watchdog import start_watchdog

        start_watchdog()
    # read when ray was imported: set it for this call too (a driver that imported Ray earlier)
    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = cluster_mode and address is not None
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise ServeError(f"cannot reach the Ray cluster at {address!r} ({exc}); start it with `ray start --head` "
                         "or omit --ray-address to run a local one") from exc
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode


def merge_hits(parts: Sequence[tuple[np.ndarray, np.ndarray]], depth: int, doc_ids: np.ndarray,
               shard_ids: np.ndarray) -> list[Hit]:
    """The global top ``depth`` of several groups' ``(global docids, scores)`` lists.

    The cut is by ``(-score, global docid)`` — the order Lucene's collector keeps, so ties at the
    boundary fall exactly as in one search over all the shards — and the result is ordered by
    ``(-score, doc_id)``, the library's deterministic tie-break.

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
    order = np.lexsort((docids, -scores))[:depth]
    docids, scores = docids[order], scores[order]
    ids = doc_ids[docids].tolist()
    score_list = scores.tolist()
    shard_list = shard_ids[docids].tolist()
    final = order_by_score(score_list, ids)
    return [Hit(ids[j], score_list[j], shard_list[j]) for j in final]


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


class Coordinator:
    """Serve an index from Ray actors: routing here, searching in the shard groups.

    Args:
        index_path: the index folder; every node must be able to read it (see
            :mod:`selectsearch.serve.actor` for why and for the alternative).
        config: placement, replication, deadlines and limits.
        reranker: optional reranker of the top ``config.rerank_depth`` hits.
        qrels: judgements, only for the evaluation router ``oracle``.
        seed: seed of ``random@M``.

    Ray must be initialised first (:func:`connect_ray`). Actors start in the background;
    :meth:`wait_ready` blocks until all answer.
    """

    def __init__(self, index_path: str | os.PathLike[str], config: ServeConfig | None = None, *,
                 reranker: Reranker | None = None, qrels: Qrels | None = None, seed: int = 0) -> None:
        from selectsearch.index.sharded import ShardedIndex

        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ServeError("Ray is not installed: pip install 'selectsearch[ray]'") from exc
        if not ray.is_initialized():
            raise ServeError("Ray is not initialised: call selectsearch.serve.coordinator.connect_ray(address) first")
        from selectsearch.serve.actor import ShardGroup

        self.config = config or ServeConfig()
        self.index = ShardedIndex.open(Path(index_path).resolve())
        self.reranker = reranker
        self.qrels = qrels
        self.seed = seed
        shards = self.index.lucene_shards
        self.groups = (check_placement(self.config.placement, shards) if self.config.placement
                       else plan_groups(self.index.shard_sizes, shards, self.config.shards_per_group))
        self._group_of = {s: g for g, members in enumerate(self.groups) for s in members}
        self._doc_ids = self.index.global_doc_ids
        self._shard_ids = self.index.global_shard_ids
        self._route_pool = ThreadPoolExecutor(1, thread_name_prefix="selectsearch-route")
        self._rerank_pool = ThreadPoolExecutor(1, thread_name_prefix="selectsearch-rerank")
        self._routers: dict[str, Router] = {}
        self._rr = itertools.count()
        remote_cls = ray.remote(ShardGroup)
        self.replicas: list[list[_Replica]] = []
        for g, members in enumerate(self.groups):
            row = []
            for _ in range(self.config.replicas):
                handle = remote_cls.options(
                    max_restarts=self.config.max_restarts, max_task_retries=0,
                    num_cpus=self.config.actor_num_cpus, max_pending_calls=self.config.actor_max_pending,
                    scheduling_strategy="SPREAD" if self.config.spread else "DEFAULT",
                ).remote(str(self.index.path), list(members), group_id=g, java_heap=self.config.actor_java_heap)
                row.append(_Replica(handle))
            self.replicas.append(row)
        self.default_route = self.resolve_route(self.config.route)

    # ------------------------------------------------------------------ set-up and health
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

    def describe(self) -> dict[str, Any]:
        """Index, placement and configuration (the ``/info`` endpoint)."""
        return {"index": str(self.index.path), "n_docs": self.index.n_docs, "n_shards": self.index.n_shards,
                "groups": [list(g) for g in self.groups], "replicas": self.config.replicas,
                "default_route": str(self.default_route), "reranker": getattr(self.reranker, "name", None),
                "config": self.config.to_json()}

    def inject_fault(self, group: int, replica: int = 0, *, delay_s: float = 0.0, crash: bool = False,
                     fail_text: str | None = None) -> Any:
        """Fault drill on one actor (see :meth:`ShardGroup.inject_fault`); returns the Ray call."""
        return self.replicas[group][replica].handle.inject_fault.remote(delay_s=delay_s, crash=crash,
                                                                        fail_text=fail_text)

    def close(self) -> None:
        """Stop the actors and the coordinator's threads."""
        import ray

        for row in self.replicas:
            for r in row:
                with contextlib.suppress(Exception):  # already gone
                    ray.kill(r.handle, no_restart=True)
        self._route_pool.shutdown(wait=False)
        self._rerank_pool.shutdown(wait=False)

    # ------------------------------------------------------------------ validation
    def resolve_route(self, route: str | RouteSpec | None) -> RouteSpec:
        """The route spec a request names (``None``: the default); 422 when unusable."""
        if route is None:
            return self.default_route
        if isinstance(route, RouteSpec):
            spec = route
        else:
            if not isinstance(route, str) or not route.strip():
                raise RequestError(422, "unknown_route", "route must be a non-empty string such as 'centroid@2'")
            try:
                spec = parse_route(route)
            except SelectSearchError as exc:
                raise RequestError(422, "unknown_route", str(exc)) from exc
        if spec.budgets:
            raise RequestError(422, "unknown_route", f"route {route!r} is a budget sweep; serve one budget, e.g. "
                                                     f"{spec.name}@{spec.budget}")
        if spec.name == "oracle" and self.qrels is None:
            raise RequestError(422, "unknown_route", "'oracle' needs judgements (evaluation only); pick another route")
        return spec

    def check_request(self, queries: Sequence[Query], k: int, deadline_ms: float | None = None) -> None:
        """Raise :class:`RequestError` (422) for an empty or oversized batch, an empty or too
        long query, ``k`` outside ``[1, max_k]`` or a non-positive deadline."""
        c = self.config
        if not queries:
            raise RequestError(422, "empty_batch", "no queries: send {'query': TEXT} or {'queries': [...]}")
        if len(queries) > c.max_batch:
            raise RequestError(422, "batch_too_large", f"{len(queries)} queries in one request; at most {c.max_batch}")
        ids = [q.query_id for q in queries]
        if len(set(ids)) != len(ids):
            raise RequestError(422, "duplicate_query_id", "query ids must be unique within a request")
        for q in queries:
            if not isinstance(q.text, str) or not q.text.strip():
                raise RequestError(422, "empty_query", f"query {q.query_id!r} is empty; send some words")
            if len(q.text) > c.max_query_chars:
                raise RequestError(422, "query_too_long", f"query {q.query_id!r} has {len(q.text)} characters; "
                                                          f"at most {c.max_query_chars}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= c.max_k:
            raise RequestError(422, "k_out_of_range", f"k must be an integer in [1, {c.max_k}], got {k!r}")
        if deadline_ms is not None and (isinstance(deadline_ms, bool) or not isinstance(deadline_ms, int | float)
                                        or not 0 < deadline_ms <= 600_000):
            raise RequestError(422, "bad_deadline", f"deadline_ms must be a number in (0, 600000], got {deadline_ms!r}")

    # ------------------------------------------------------------------ search
    def batch_search(self, queries: Mapping[str, str] | Sequence[Query], k: int = 100, *,
                     route: str | RouteSpec | None = None, deadline_ms: float | None = None
                     ) -> dict[str, SearchResult]:
        """Synchronous :meth:`asearch` (for scripts, tests and benchmarks)."""
        return asyncio.run(self.asearch(queries, k, route=route, deadline_ms=deadline_ms))

    def search(self, query: str, k: int = 10, *, route: str | None = None) -> list[Hit]:
        """Top ``k`` hits of one query text; :class:`RequestError` when the search of it failed."""
        result = self.batch_search([Query("q", query)], k, route=route)["q"]
        error: Any = result.trace.extra.get("error")
        if error:
            raise RequestError(int(error["status"]), str(error["error"]), str(error["message"]))
        return result.hits

    async def asearch(self, queries: Mapping[str, str] | Sequence[Query], k: int = 100, *,
                      route: str | RouteSpec | None = None, deadline_ms: float | None = None
                      ) -> dict[str, SearchResult]:
        """Route, fan out, merge and rerank a batch; ``{query_id: SearchResult}`` in input order.

        Always returns within about ``deadline_ms`` (plus merge and rerank time): groups that have
        not answered by then are left out and their shards named in ``trace.missing_shards``.
        When not one of the groups the batch needed answered, raises :class:`RequestError` 503
        (``unavailable``) instead of returning empty answers.

        A query whose search raised in a group (e.g. Lucene's ``TooManyClauses``) fails alone:
        its result has no hits and ``trace.extra["error"] = {"error", "message", "status"}``
        (422 when the query is to blame, 500 otherwise); the other queries of the batch are
        answered as usual and no replica is counted as failed.
        """
        from selectsearch.search import as_queries

        t0 = time.perf_counter()
        qs = as_queries(queries)
        spec = self.resolve_route(route)
        self.check_request(qs, k, deadline_ms)
        deadline = t0 + float(deadline_ms or self.config.deadline_ms) / 1000.0
        loop = asyncio.get_running_loop()
        selected, route_ms = await loop.run_in_executor(self._route_pool, self._route, qs, spec)
        searched = [sorted(int(s) for s in sel) for sel in selected]
        depth = max(k, self.config.rerank_depth) if self.reranker is not None else k
        t = time.perf_counter()
        fan = await self._fan_out([q.text for q in qs], searched, depth, deadline)
        search_ms = (time.perf_counter() - t) * 1000.0
        out: dict[str, SearchResult] = {}
        sizes = self.index.shard_sizes
        position = {g: {qi: j for j, qi in enumerate(call.queries)} for g, call in fan.calls.items()}
        if fan.calls and not fan.hits:
            # every group the request needed failed: no answer at all, not "200 with 0 hits"
            reasons = "; ".join(f"group {g}: {', '.join(fan.failures.get(g, ['no answer']))}"
                                for g in sorted(fan.calls))
            raise RequestError(503, "unavailable", f"no shard group answered ({reasons}); retry after a short pause")
        for i, (q, shards) in enumerate(zip(qs, searched, strict=True)):
            t = time.perf_counter()
            parts: list[tuple[np.ndarray, np.ndarray]] = []
            missing: list[int] = []
            error: dict[str, Any] | None = None
            cpu_ms = 0.0
            groups = sorted({self._group_of[s] for s in shards if s in self._group_of})
            for g in groups:
                j = position.get(g, {}).get(i)
                if g in fan.hits and j is not None:
                    error = error or fan.stats[g].get("errors", {}).get(j)
                    parts.append(fan.hits[g][j])
                    cpu_ms += fan.stats[g]["cpu_ms"] / len(fan.calls[g].queries)
                else:
                    missing.extend(s for s in shards if self._group_of.get(s) == g)
            # a query that failed in a group (e.g. Lucene refused it) fails alone, with no hits:
            # the other queries of the batch and the replicas are not affected
            hits = [] if error else merge_hits(parts, depth, self._doc_ids, self._shard_ids)
            merge_ms = (time.perf_counter() - t) * 1000.0
            lost = set(missing)
            answered = [s for s in shards if s not in lost]
            trace = SearchTrace(
                query_id=q.query_id, route=str(spec), shards=shards,
                docs_scored=int(sizes[answered].sum()) if answered and not error else 0,
                timings_ms={"route": route_ms, "search": search_ms, "merge": merge_ms},
                missing_shards=sorted(missing),
                extra={"groups": groups, "actor_cpu_ms": round(cpu_ms, 3)},
            )
            failed = {str(g): fan.failures[g] for g in groups if g in fan.failures}
            if failed:
                trace.extra["failures"] = failed
            if error:
                trace.extra["error"] = dict(error)
            out[q.query_id] = SearchResult(hits, trace)
        if self.reranker is not None:
            await loop.run_in_executor(self._rerank_pool, self._rerank, qs, out, k)
        else:
            out = {qid: r._replace(hits=r.hits[:k]) for qid, r in out.items()}
        return out

    def _router(self, spec: RouteSpec) -> Router:
        from selectsearch.route import make_router

        router = self._routers.get(spec.name)
        if router is None:
            try:
                router = make_router(spec, self.index, qrels=self.qrels, seed=self.seed,
                                     **dict(self.config.router_options))
            except SelectSearchError as exc:
                raise RequestError(422, "unknown_route", str(exc)) from exc
            self._routers[spec.name] = router
        return router

    def _route(self, qs: Sequence[Query], spec: RouteSpec) -> tuple[list[list[int]], float]:
        # runs on the single routing thread (routers may call into the JVM)
        router = self._router(spec)
        t = time.perf_counter()
        selected = router.select(qs, spec.budget)
        return [list(s) for s in selected], (time.perf_counter() - t) * 1000.0 / max(len(qs), 1)

    def _rerank(self, qs: Sequence[Query], out: dict[str, SearchResult], k: int) -> None:
        assert self.reranker is not None
        depth = self.config.rerank_depth
        for q in qs:
            result = out[q.query_id]
            if "error" in result.trace.extra:
                continue
            t = time.perf_counter()
            hits = result.hits
            hits = rerank_head(self.reranker, q.text, hits, depth,
                               lambda doc_id: self.index.doc(doc_id)["contents"])
            result.trace.timings_ms["rerank"] = (time.perf_counter() - t) * 1000.0
            out[q.query_id] = SearchResult(hits[:k], result.trace)

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

        per_group: dict[int, _Call] = {}
        for i, shards in enumerate(searched):
            by_group: dict[int, list[int]] = {}
            for s in shards:
                if s in self._group_of:
                    by_group.setdefault(self._group_of[s], []).append(s)
            for g, members in by_group.items():
                call = per_group.setdefault(g, _Call(g, -1, [], []))
                call.queries.append(i)
                call.shard_lists.append(members)
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
