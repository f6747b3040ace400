"""The coordinator: validate, route, fan out to the shard groups, merge exactly, rerank.

Data flow of one request (a batch of queries):

1. **Validate** (:meth:`Coordinator.check_request`): empty query, ``k`` out of range, unknown
   or unusable route, oversized batch -> :class:`~selectsearch.serve.config.RequestError` (4xx).
2. **Route** on the coordinator's single routing thread (routers may use the JVM — ReDDE and
   Rank-S search the central sample index — and pyjnius is not thread-safe). The same
   :func:`~selectsearch.route.make_router` routers as in-process search. Requests that wait for
   the thread are routed together, in one router call (:mod:`selectsearch.serve.coalesce`).
3. **Search** the selected shards on the shard groups (:class:`~selectsearch.serve.remote.RemoteShards`,
   the Ray implementation of the pipeline's shard searcher: fan out only to the groups holding
   selected shards, retry on replicas while the deadline allows, merge exactly; shards whose
   group did not answer are named in ``trace.missing_shards``).
4. **Assemble** traces, rerank (optional, any :class:`~selectsearch.pipeline.Reranker`, on its
   own thread) and cut to ``k``: :func:`selectsearch.pipeline.assemble`, the same step as
   in-process search.

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
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selectsearch import settings
from selectsearch.errors import SelectSearchError
from selectsearch.pipeline.stages import assemble
from selectsearch.route import RouteSpec, parse_route
from selectsearch.serve.coalesce import RouteCoalescer, Routed
from selectsearch.serve.config import RequestError, ServeConfig, ServeError
from selectsearch.serve.remote import RemoteShards, merge_hits
from selectsearch.types import Hit, Qrels, Query, SearchResult

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.pipeline.stages import Reranker
    from selectsearch.route import Router

__all__ = ["Coordinator", "connect_ray", "merge_hits"]


def connect_ray(address: str | None = None, *, num_cpus: int | None = None, ship: str | os.PathLike[str] | None = None
                ) -> None:
    """Connect to the Ray cluster at ``address`` (``None`` or ``"local"``: start a private local one), quietly.

    ``ship``: a folder (the index) this driver uploads to the cluster, as its job's
    ``runtime_env`` ``working_dir``: every Serve replica then starts in an unpacked copy of it on
    its own node (how shard groups receive the index from the driver; Ray caps it at about
    500 MiB).

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
    if address == "local":  # Ray's own word for "a new local instance": the loopback-only one below
        address = None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # inherited by every Ray process
        settings.mark_ray_loopback()  # tells Serve replicas to bind loopback (selectsearch.serve.deployments)
    try:
        import ray
        from ray._private import ray_constants
    except ImportError as exc:
        raise ServeError("Ray is not installed: pip install 'selectsearch[ray]' (or 'ray[serve]')") from exc
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if ship is not None:
        kwargs["runtime_env"] = {"working_dir": str(Path(ship).resolve())}
    if address is None:
        kwargs.update(include_dashboard=False, num_cpus=num_cpus, dashboard_host="127.0.0.1")
        from selectsearch.serve.watchdog import start_watchdog

        start_watchdog()
    # read when ray was imported: set it for this call too (a driver that imported Ray earlier)
    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = cluster_mode and address is not None
    try:
        # "local": always a new instance. address=None would join whatever /tmp/ray/ray_current_cluster
        # names: another user's cluster (not loopback-only), or a stale file left by a killed run
        ray.init(address=address or "local", **kwargs)
    except ConnectionError as exc:
        raise ServeError(f"cannot reach the Ray cluster at {address!r} ({exc}); start it with `ray start --head` "
                         "or omit --ray-address to run a local one") from exc
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode


class Coordinator:
    """Serve an index from Ray actors: routing here, searching in the shard groups.

    Args:
        index_path: the index folder; every node must be able to read it (see
            :mod:`selectsearch.serve.actor` for why and for the alternative).
        config: placement, replication, deadlines and limits.
        reranker: optional reranker of the top ``config.rerank_depth`` hits.
        qrels: judgements, only for the evaluation router ``oracle``.
        seed: seed of ``random@M``.
        remote: builds the shard searcher from the opened index and the configuration
            (default :class:`RemoteShards`, Ray actors started here; the Ray Serve application
            passes :class:`~selectsearch.serve.remote.ServeShards` over its deployments).

    Ray must be initialised first (:func:`connect_ray`). Actors start in the background;
    :meth:`wait_ready` blocks until all answer.
    """

    def __init__(self, index_path: str | os.PathLike[str], config: ServeConfig | None = None, *,
                 reranker: Reranker | None = None, qrels: Qrels | None = None, seed: int = 0,
                 remote: Callable[[ShardedIndex, ServeConfig], RemoteShards] | None = None) -> None:
        from selectsearch.index.sharded import ShardedIndex

        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ServeError("Ray is not installed: pip install 'selectsearch[ray]'") from exc
        if not ray.is_initialized():
            raise ServeError("Ray is not initialised: call selectsearch.serve.coordinator.connect_ray(address) first")
        self.config = config or ServeConfig()
        self.index = ShardedIndex.open(Path(index_path).resolve())
        self.reranker = reranker
        self.qrels = qrels
        self.seed = seed
        self.remote = (remote or RemoteShards)(self.index, self.config)
        # routing on one thread; requests waiting for it are routed together (serve/coalesce.py)
        self._routing = RouteCoalescer(self._route, max_queries=self.config.route_batch)
        self._rerank_pool = ThreadPoolExecutor(1, thread_name_prefix="selectsearch-rerank")
        self._routers: dict[str, Router] = {}
        self.default_route = self.resolve_route(self.config.route)

    # ------------------------------------------------------------------ set-up and health
    @property
    def groups(self) -> Sequence[Sequence[int]]:
        """The shards of each group (placement)."""
        return self.remote.groups

    @property
    def replicas(self) -> list[list[Any]]:
        """Per group, its replicas (Ray actor handles and health)."""
        return self.remote.replicas

    @property
    def _group_of(self) -> dict[int, int]:
        return self.remote.group_of

    def wait_ready(self, timeout_s: float = 120.0) -> list[list[dict[str, Any]]]:
        """Block until every actor answers a ping; returns the pings (per group, per replica)."""
        return self.remote.wait_ready(timeout_s)

    async def ahealth(self, timeout_s: float = 2.0) -> dict[str, Any]:
        """Ping every replica; ``ok`` when each group has at least one live replica."""
        return await self.remote.ahealth(timeout_s)

    def describe(self) -> dict[str, Any]:
        """Index, placement and configuration (the ``/info`` endpoint)."""
        return {"index": str(self.index.path), "n_docs": self.index.n_docs, "n_shards": self.index.n_shards,
                "groups": [list(g) for g in self.groups], "replicas": self.config.replicas,
                "default_route": str(self.default_route), "reranker": getattr(self.reranker, "name", None),
                "config": self.config.to_json()}

    def inject_fault(self, group: int, replica: int = 0, *, delay_s: float = 0.0, crash: bool = False,
                     fail_text: str | None = None) -> Any:
        """Fault drill on one actor (see :meth:`ShardGroup.inject_fault`); returns the Ray call."""
        return self.remote.inject_fault(group, replica, delay_s=delay_s, crash=crash, fail_text=fail_text)

    def close(self) -> None:
        """Stop the actors and the coordinator's threads."""
        self.remote.close()
        self._routing.close()
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
        if spec.is_sweep:
            one = spec.expand()[0]
            raise RequestError(422, "unknown_route", f"route {route!r} is a budget sweep; serve one budget, e.g. {one}")
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
                     route: str | RouteSpec | None = None, deadline_ms: float | None = None,
                     explain: bool = False) -> dict[str, SearchResult]:
        """Synchronous :meth:`asearch` (for scripts, tests and benchmarks)."""
        return asyncio.run(self.asearch(queries, k, route=route, deadline_ms=deadline_ms, explain=explain))

    def search(self, query: str, k: int = 10, *, route: str | None = None) -> Sequence[Hit]:
        """Top ``k`` hits of one query text; :class:`RequestError` when the search of it failed."""
        result = self.batch_search([Query("q", query)], k, route=route)["q"]
        error: Any = result.trace.extra.get("error")
        if error:
            raise RequestError(int(error["status"]), str(error["error"]), str(error["message"]))
        return result.hits

    async def asearch(self, queries: Mapping[str, str] | Sequence[Query], k: int = 100, *,
                      route: str | RouteSpec | None = None, deadline_ms: float | None = None,
                      explain: bool = False) -> dict[str, SearchResult]:
        """Route, fan out, merge and rerank a batch; ``{query_id: SearchResult}`` in input order.

        Always returns within about ``deadline_ms`` (plus merge and rerank time): groups that have
        not answered by then are left out and their shards named in ``trace.missing_shards``.
        When not one of the groups the batch needed answered, raises :class:`RequestError` 503
        (``unavailable``) instead of returning empty answers.

        A query whose search raised in a group (e.g. Lucene's ``TooManyClauses``) fails alone:
        its result has no hits and ``trace.extra["error"] = {"error", "message", "status"}``
        (422 when the query is to blame, 500 otherwise); the other queries of the batch are
        answered as usual and no replica is counted as failed.

        Traces carry the router's scores of the selected shards (``extra["router_scores"]``) as
        in-process search; ``explain`` adds those of every shard (``extra["shard_scores"]``).
        """
        from selectsearch.search import as_queries

        t0 = time.perf_counter()
        qs = as_queries(queries)
        spec = self.resolve_route(route)
        self.check_request(qs, k, deadline_ms)
        deadline = t0 + float(deadline_ms or self.config.deadline_ms) / 1000.0
        loop = asyncio.get_running_loop()
        selected, route_ms, scores = await self._routing.route(qs, spec)
        searched = [sorted(int(s) for s in sel) for sel in selected]
        depth = max(k, self.config.rerank_depth) if self.reranker is not None else k
        retrieved = await self.remote.asearch(qs, searched, depth, deadline)

        def finish() -> dict[str, SearchResult]:
            return assemble(qs, searched, retrieved, k=k, route_ms=route_ms, route_name=str(spec),
                            shard_sizes=self.index.shard_sizes, reranker=self.reranker,
                            rerank_depth=self.config.rerank_depth, text_of=self.doc_text, router_scores=scores,
                            explain=explain)

        if self.reranker is None:
            return finish()
        return await loop.run_in_executor(self._rerank_pool, finish)  # the reranker's own thread

    def doc_text(self, doc_id: str) -> str:
        """The stored text (title and text) of a document of the index."""
        return str(self.index.doc(doc_id)["contents"])

    def _router(self, spec: RouteSpec) -> Router:
        from selectsearch.route import make_router

        router = self._routers.get(spec.router_key)
        if router is None:
            try:
                router = make_router(spec, self.index, qrels=self.qrels, seed=self.seed,
                                     **dict(self.config.router_options))
            except SelectSearchError as exc:
                raise RequestError(422, "unknown_route", str(exc)) from exc
            self._routers[spec.router_key] = router
        return router

    def _route(self, qs: Sequence[Query], spec: RouteSpec) -> Routed:
        # runs on the single routing thread (routers may call into the JVM), for the queries of
        # every request waiting for it (RouteCoalescer); the scores are read here too, before
        # another batch's routing replaces the router's last ones
        router = self._router(spec)
        t = time.perf_counter()
        selected = router.select(qs, spec.budget)
        route_ms = (time.perf_counter() - t) * 1000.0 / max(len(qs), 1)
        return [list(s) for s in selected], route_ms, router.last_scores(qs)
