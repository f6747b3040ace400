"""The Ray Serve application of ``selectsearch serve``: HTTP ingress, router + merge, shard groups.

Three kinds of deployment (:func:`build_application` binds them):

* ``ingress`` (:class:`SearchIngress`) — a FastAPI app: typed request and response models
  (``/docs`` serves the OpenAPI page), 4xx JSON errors, the 1 MiB body limit.
* Admission is Serve's: the router's ``max_ongoing_requests`` (``max_inflight``) and
  ``max_queued_requests`` (``max_queue``, queued in the ingress's handle); when full, Serve refuses
  the call (``BackPressureError``) and the ingress answers the JSON 503 with ``Retry-After``. The
  ingress's own limits are looser; past them Serve's proxy sheds load itself (a text 503 with
  ``Retry-After``, which :class:`~selectsearch.serve.client.ServeClient` reads as ``overloaded``).
* ``router`` (:class:`SearchRouter`) — a :class:`~selectsearch.serve.coordinator.Coordinator`
  over :class:`~selectsearch.serve.remote.ServeShards`: validates, routes (the same routers as
  in-process search, on one thread), fans out to the groups holding the selected shards with
  the request's deadline, merges exactly, reranks; a group that failed or is late leaves a
  flagged partial answer naming its shards.
* ``group-<g>`` (:class:`ShardGroupServer`) — one per shard group, ``replicas`` replicas, each a
  :class:`~selectsearch.serve.actor.ShardGroup` (its own JVM, collection-wide BM25) searched on
  one thread. Serve health-checks them (:meth:`ShardGroupServer.check_health`) and replaces a
  replica that dies or fails its check.

Shard groups open the index from a path every node can read (shared storage), or, with
``ship_index=True``, receive the index folder from the driver: uploaded once as the driver job's
``runtime_env`` ``working_dir`` (``connect_ray(ship=INDEX)``), which Serve gives every
deployment, and unpacked on each node that runs a replica (Ray's size limit for a
``working_dir`` applies, about 500 MiB).

Serve's own metrics (requests, errors, latency, queue lengths per deployment and replica) are
exported with Ray's metrics (Prometheus format, on the metrics agent of each node).

Example:
    >>> from ray import serve  # doctest: +SKIP
    >>> app = build_application("indexes/scifact-k16", ServeConfig(route="centroid@4"))  # doctest: +SKIP
    >>> serve.run(app, name="selectsearch", route_prefix="/")  # doctest: +SKIP
"""

# No `from __future__ import annotations` here: FastAPI reads the route methods' annotations at
# run time, after Serve's ingress has moved them out of this module's namespace.
import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from ray import serve
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response

from selectsearch.serve.app import MAX_BODY_BYTES, PAGE_HEADERS, parse_search_request, result_to_json, search_page
from selectsearch.serve.config import RequestError, ServeConfig, ServeError
from selectsearch.types import Qrels, Query

__all__ = ["APP_NAME", "SearchIngress", "SearchRequest", "SearchResponse", "SearchRouter", "ShardGroupServer",
           "build_application"]

#: the Serve application's name (``serve.status()``, replica process titles, metrics labels)
APP_NAME = "selectsearch"


def bind_loopback() -> bool:
    """In a local, loopback-only Ray instance, make this Serve replica's inter-deployment gRPC
    server listen on 127.0.0.1 instead of every interface; returns whether it applies.

    Ray Serve (2.60) starts that server in every replica on ``[::]:0`` whatever the cluster's
    addresses (idle unless ``RAY_SERVE_USE_GRPC_BY_DEFAULT=1``, but reachable from the network).
    Every deployment's constructor calls this; Serve binds the server right after the
    constructor returns. A real cluster (``--ray``) is left as Ray makes it: there replicas on
    other machines must reach each other.
    """
    from selectsearch import settings

    if not settings.ray_loopback():
        return False
    from ray.serve._private import replica

    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None:  # pragma: no cover - a Ray without it: the loopback test says what listens
        return False
    if getattr(original, "selectsearch_loopback", False):
        return True

    def loopback(server: Any, address: str) -> Any:
        return original(server, address.replace("[::]", "127.0.0.1", 1))

    loopback.selectsearch_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = loopback
    return True


# ---------------------------------------------------------------------- shard groups
class ShardGroupServer:
    """A shard group as a Serve deployment: a :class:`~selectsearch.serve.actor.ShardGroup`
    opened and searched on one thread of its own (pyjnius is not thread-safe), while Serve's
    event loop keeps accepting, queueing and health-checking.

    Args:
        index_path: the index folder on this node (``"."`` when shipped as the working dir).
        shards: the shards this group hosts.
        group_id: its number.
        java_heap: ``-Xmx`` of the replica's JVM.
    """

    def __init__(self, index_path: str, shards: list[int], group_id: int, java_heap: str | None) -> None:
        from selectsearch.serve.actor import ShardGroup

        bind_loopback()
        self._jvm = ThreadPoolExecutor(1, thread_name_prefix="selectsearch-jvm")
        self.group = self._jvm.submit(ShardGroup, Path(index_path).resolve(), shards, group_id=group_id,
                                      java_heap=java_heap).result()
        self._broken: str | None = None

    async def search(self, texts: list[str], depth: int, shard_lists: list[list[int]]) -> Any:
        """:meth:`ShardGroup.search` on the group's thread."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._jvm, self.group.search, texts, depth,
                                                                     shard_lists)
        except Exception as exc:
            if "OutOfMemoryError" in f"{type(exc).__name__}: {exc}":
                self._broken = f"{type(exc).__name__}: {exc}"[:300]  # the next health check replaces us
            raise

    async def ping(self) -> dict[str, Any]:
        """:meth:`ShardGroup.ping` (pid, shards, calls)."""
        return self.group.ping()

    async def inject_fault(self, *, delay_s: float = 0.0, crash: bool = False,
                           fail_text: str | None = None) -> dict[str, Any]:
        """Fault drills (:meth:`ShardGroup.inject_fault`); ``crash`` exits this replica's process.

        Returns :meth:`ping` of the replica that took the fault: Serve picks the replica of each
        call, so a drill that must reach every replica counts the pids it has set."""
        self.group.inject_fault(delay_s=delay_s, crash=crash, fail_text=fail_text)
        return self.group.ping()

    def check_health(self) -> None:
        """Serve's periodic health check: fail (Serve then replaces the replica) when the JVM
        ran out of memory (a process that died is replaced without asking)."""
        if self._broken is not None:
            raise RuntimeError(f"shard group {self.group.group_id} is broken: {self._broken}")


# ---------------------------------------------------------------------- router + merge
class SearchRouter:
    """Routing, fan-out with a deadline, exact merge and reranking: the serving
    :class:`~selectsearch.serve.coordinator.Coordinator` over the shard-group deployments.

    Answers are JSON-ready ``(status, payload)`` pairs, so that a request error crosses the
    deployment boundary as data (status and code intact) rather than as a wrapped exception.
    """

    def __init__(self, index_path: str, config: ServeConfig, groups: list[DeploymentHandle], *,
                 reranker: str | None = None, qrels: Qrels | None = None, seed: int = 0) -> None:
        import ray

        from selectsearch.serve.coordinator import Coordinator
        from selectsearch.serve.remote import ServeShards

        bind_loopback()
        if not ray.is_initialized():  # pragma: no cover - a Serve replica always is
            ray.init()
        model = None
        if reranker:
            from selectsearch.rerank import load_reranker

            model = load_reranker(reranker)
        self.coordinator = Coordinator(Path(index_path).resolve(), config, reranker=model, qrels=qrels, seed=seed,
                                       remote=lambda index, cfg: ServeShards(index, cfg, groups))

    async def search(self, queries: list[tuple[str, str]], is_batch: bool, k: int, route: str | None,
                     deadline_ms: float | None, explain: bool = False, snippets: bool = False
                     ) -> tuple[int, dict[str, Any]]:
        """Answer a parsed request: ``(HTTP status, JSON payload)``."""
        t = time.perf_counter()
        qs = [Query(qid, text) for qid, text in queries]
        try:
            results = await self.coordinator.asearch(qs, k, route=route, deadline_ms=deadline_ms, explain=explain)
        except RequestError as err:
            return err.status, err.to_json()
        text_of = self.coordinator.doc_text if snippets else None
        answers = [result_to_json(q.query_id, results[q.query_id], text_of) for q in qs]
        for answer in answers:
            answer["trace"]["timings_ms"]["router"] = (time.perf_counter() - t) * 1000.0
        if is_batch:
            return 200, {"results": answers, "partial": any(a["partial"] for a in answers),
                         "errors": sum("error" in a for a in answers)}
        if "error" in answers[0]:
            error = answers[0]["error"]
            return int(error["status"]), {**error, "query_id": answers[0]["query_id"]}
        return 200, answers[0]

    async def health(self) -> dict[str, Any]:
        """Every group pinged through Serve, and Serve's status of each deployment."""
        report = await self.coordinator.ahealth()
        try:
            status = serve.status().applications[APP_NAME].deployments
            report["deployments"] = {name: {"status": str(getattr(d.status, "value", d.status)), "replicas": {
                str(getattr(state, "value", state)): n for state, n in d.replica_states.items()}}
                for name, d in status.items()}
        except Exception as exc:  # the controller is busy or gone: the pings still tell
            report["deployments"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        return report

    async def describe(self) -> dict[str, Any]:
        """Index, placement and configuration (``/info``)."""
        return {**self.coordinator.describe(), "engine": "ray-serve"}


# ---------------------------------------------------------------------- HTTP ingress
class QueryItem(BaseModel):
    """One query of a batch."""

    model_config = ConfigDict(extra="forbid")
    query_id: StrictStr | StrictInt | None = Field(None, description="the query's id in the answer")
    id: StrictStr | StrictInt | None = Field(None, description="alias of query_id")
    text: StrictStr


class SearchRequest(BaseModel):
    """``POST /search``: one query (``query``) or a batch (``queries``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"query": "vitamin D deficiency", "k": 10, "route": "centroid@4", "deadline_ms": 500}]})
    query: StrictStr | None = Field(None, description="one query text")
    query_id: StrictStr | StrictInt | None = Field(None, description="its id in the answer (default 'q')")
    queries: list[StrictStr | QueryItem] | dict[str, StrictStr] | None = Field(
        None, description="a batch: texts, {query_id, text} objects, or an object {query_id: text}")
    k: StrictInt = Field(10, description="hits per query, 1..max_k")
    route: StrictStr | None = Field(None, description="route spec, e.g. 'centroid@4' (default: the server's)")
    deadline_ms: StrictFloat | StrictInt | None = Field(None, description="time budget of this request in ms")
    explain: StrictBool = Field(False, description="put every shard's router score in the trace "
                                                   "(extra.shard_scores, indexed by shard id)")
    snippets: StrictBool = Field(False, description="give each hit the start of its stored text (snippet)")


class HitModel(BaseModel):
    """One hit."""

    doc_id: str
    score: float
    shard_id: int
    snippet: str | None = Field(None, description="the start of its stored text (with snippets: true)")


class SearchResponse(BaseModel):
    """One query's answer; ``partial`` with ``missing_shards`` when a shard group failed or was late."""

    query_id: str
    hits: list[HitModel]
    trace: dict[str, Any]
    partial: bool
    missing_shards: list[int]
    error: dict[str, Any] | None = None


class BatchResponse(BaseModel):
    """A batch's answers, in request order."""

    results: list[SearchResponse]
    partial: bool
    errors: int


class ErrorResponse(BaseModel):
    """Every error: a machine-readable code, a message, the HTTP status."""

    error: str
    message: str
    status: int


#: the JSON error of a failed field, by field name
_FIELD_CODES = {"k": "k_out_of_range", "query": "empty_query", "queries": "empty_query", "route": "unknown_route",
                "query_id": "bad_query_id", "deadline_ms": "bad_deadline"}


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json", headers=headers)


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": code, "message": message, "status": status}, status,
                 {"Retry-After": "1"} if status == 503 else None)


def validation_error(errors: list[Any]) -> tuple[int, str, str]:
    """``(status, code, message)`` of FastAPI's validation errors of a ``/search`` body.

    Example:
        >>> validation_error([{"loc": ("body", "k"), "type": "int_type", "msg": "Input should be a valid integer"}])
        (422, 'k_out_of_range', 'k: Input should be a valid integer')
    """
    first = errors[0] if errors else {"loc": ("body",), "type": "missing", "msg": "no body"}
    loc = tuple(first.get("loc", ("body",)))
    kind = str(first.get("type", ""))
    if kind == "json_invalid" or (loc == ("body",) and kind == "missing"):
        return 400, "invalid_json", f"the body is not valid JSON ({first.get('msg')})"
    if len(loc) < 2:
        return 400, "invalid_body", ('the body must be a JSON object such as {"query": "...", "k": 10}, sent with '
                                     "Content-Type: application/json")
    field = str(loc[1])
    if kind == "extra_forbidden" and len(loc) == 2:
        return 422, "unknown_field", f"unknown field {field!r}; known: {sorted(SearchRequest.model_fields)}"
    where = ".".join(str(x) for x in loc[1:])
    return 422, _FIELD_CODES.get(field, "invalid_field"), f"{where}: {first.get('msg')}"


class _BodyLimit:
    """Refuse a request body over ``MAX_BODY_BYTES`` with the JSON 413: at once when its
    ``Content-Length`` says so, else as soon as the bytes read pass it (chunked bodies).
    (FastAPI's own ``max_body_size`` answers a declared oversize body in plain text.)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            response = _error(413, "body_too_large", f"request body over {MAX_BODY_BYTES} bytes")
            await response(scope, receive, send)
            return
        size = 0

        async def limited() -> Any:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > MAX_BODY_BYTES:
                raise HTTPException(413)  # FastAPI hands it to the handler below
            return message

        await self.app(scope, limited, send)


app = FastAPI(title="selectsearch", summary="Selective search over topical shards (exact collection-wide BM25)")
app.add_middleware(_BodyLimit)


@app.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    return _error(*validation_error(list(exc.errors())))


@app.exception_handler(HTTPException)
async def _http_error(request: Request, exc: HTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
    message = f"request body over {MAX_BODY_BYTES} bytes" if exc.status_code == 413 else str(exc.detail)
    return _error(exc.status_code, code, message)


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text} for status, text in (
        (400, "not JSON, or not a JSON object"), (413, "body over 1 MiB"),
        (422, "invalid field: empty query, k out of range, unknown route, unknown field, bad deadline"),
        (500, "searching the query failed"),
        (503, "overloaded (admission queue full) or no shard group answered; see Retry-After"))}


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> Response:
    """The search page (a query box, the hits, the routing chart); it calls ``POST /search``."""
    return HTMLResponse(search_page(), headers=PAGE_HEADERS)


@serve.ingress(app)
class SearchIngress:
    """The HTTP front: parses and validates, hands the request to the router, answers JSON."""

    def __init__(self, router: DeploymentHandle) -> None:
        bind_loopback()
        self.router = router

    @app.post("/search", response_model=SearchResponse | BatchResponse, responses=_ERRORS)
    async def search(self, body: SearchRequest) -> Response:
        """Top ``k`` hits of one query or of each query of a batch."""
        try:
            queries, is_batch, options = parse_search_request(body.model_dump(exclude_none=True))
        except RequestError as err:
            return _error(err.status, err.code, err.message)
        try:
            status, payload = await self.router.search.remote([(q.query_id, q.text) for q in queries], is_batch,
                                                              options["k"], options["route"], options["deadline_ms"],
                                                              options["explain"], options["snippets"])
        except BackPressureError as exc:  # the router's queue is full: Serve refused the request
            return _error(503, "overloaded", f"{exc.message}; retry after a short pause")
        return _json(payload, status, {"Retry-After": "1"} if status == 503 else None)

    @app.get("/health")
    async def health(self) -> Response:
        """Every shard group pinged, and Serve's status of each deployment (200 when all answer)."""
        report = await self.router.health.remote()
        return _json(report, 200 if report["ok"] else 503)

    @app.get("/info")
    async def info(self) -> Response:
        """Index, placement, configuration."""
        return _json(await self.router.describe.remote())


# ---------------------------------------------------------------------- the application
def build_application(index_path: str | os.PathLike[str], config: ServeConfig, *, ship_index: bool = False,
                      reranker: str | None = None, qrels: Qrels | None = None, seed: int = 0,
                      groups: tuple[tuple[int, ...], ...] | None = None) -> Any:
    """The bound Serve application (``serve.run(app, name=APP_NAME, route_prefix="/")``).

    Args:
        index_path: the index folder (read here for the placement; every node must be able to
            read it unless ``ship_index``).
        config: placement, replicas, deadlines, limits (``max_inflight`` / ``max_queue`` become
            the router's ``max_ongoing_requests`` / ``max_queued_requests``; ``actor_max_pending``
            a shard-group replica's ``max_ongoing_requests``).
        ship_index: the replicas open the copy of the index that this driver uploaded as its
            job's ``working_dir`` (:func:`~selectsearch.serve.coordinator.connect_ray` with
            ``ship=INDEX``) instead of reading a shared path.
        reranker: a reranker model name (loaded in the router replica).
        qrels: judgements (only for the evaluation router ``oracle``).
        seed: seed of ``random@M``.
        groups: the placement, when the caller computed it already.
    """
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.serve.remote import place_groups

    path = Path(index_path).resolve()
    if groups is None:
        groups = place_groups(ShardedIndex.open(path), config)
    config = replace(config, placement=groups)  # router and groups agree on one placement
    where = str(path)
    if ship_index:
        # Serve gives every deployment the driver job's runtime_env, whose working_dir Ray
        # uploaded at ray.init (connect_ray(ship=INDEX)); a deployment's own local working_dir
        # would not be uploaded (the controller accepts only uploaded packages)
        import ray

        if not ray.get_runtime_context().runtime_env.get("working_dir"):
            raise ServeError("ship_index needs the index uploaded as the job's working_dir: "
                             "connect_ray(address, ship=INDEX) before building the application")
        where = "."
    group_apps = [
        serve.deployment(name=f"group-{g}", num_replicas=config.replicas,
                         max_ongoing_requests=config.actor_max_pending, health_check_period_s=2.0,
                         health_check_timeout_s=30.0, graceful_shutdown_timeout_s=5.0,
                         ray_actor_options={"num_cpus": config.actor_num_cpus},
                         )(ShardGroupServer).bind(where, list(members), g, config.actor_java_heap)
        for g, members in enumerate(groups)]
    # admission: the router runs max_inflight requests and Serve queues max_queue more in the
    # ingress's handle, then refuses (BackPressureError -> the ingress's JSON 503 + Retry-After);
    # the ingress only forwards, so it holds at most those plus a few being refused, and past
    # that Serve's proxy sheds load itself (text 503 + Retry-After)
    router = serve.deployment(name="router", num_replicas=1, max_ongoing_requests=config.max_inflight,
                              max_queued_requests=config.max_queue,
                              graceful_shutdown_timeout_s=5.0, ray_actor_options={"num_cpus": 0},
                              )(SearchRouter).bind(where, config, group_apps, reranker=reranker, qrels=qrels, seed=seed)
    slack = config.max_inflight + config.max_queue + 32
    ingress = serve.deployment(name="ingress", num_replicas=1, max_ongoing_requests=slack,
                               max_queued_requests=slack,
                               backpressure_config={"status_code": 503, "retry_after_s": 1},
                               graceful_shutdown_timeout_s=5.0, ray_actor_options={"num_cpus": 0})
    return ingress(SearchIngress).bind(router)

