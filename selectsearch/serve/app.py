"""The HTTP endpoint of the Starlette engine (``selectsearch serve --engine starlette``): a small
ASGI app, JSON in and out. The default engine is the Ray Serve application of
:mod:`selectsearch.serve.deployments`, which shares this module's request parsing and answer
encoding (:func:`parse_search_request`, :func:`result_to_json`).

Endpoints:

* ``POST /search`` — ``{"query": "vitamin d", "k": 10, "route": "centroid@4", "deadline_ms": 500}``
  or a batch ``{"queries": [{"query_id": "q1", "text": "..."}, ...], "k": 10}`` (``queries`` may
  also be a list of strings or a ``{query_id: text}`` object). Answers
  ``{"query_id", "hits": [{"doc_id", "score", "shard_id"}], "trace": {...}, "partial", "missing_shards"}``
  (a batch: ``{"results": [...], "partial"}``). ``partial`` is true when some selected shards
  did not answer before the deadline; ``missing_shards`` names them.
* ``GET /health`` — every shard group's replicas (200 when each group has a live one, else 503),
  and the admission counters.
* ``GET /info`` — index, placement, configuration.
* ``GET /`` — the search page (:func:`search_page`): a query box, the hits, and the routing
  decision drawn as one bar per shard (its router score; the searched shards marked) with the
  time of each stage. It calls ``POST /search`` with ``"explain": true`` (the trace gets every
  shard's router score, ``extra["shard_scores"]``) and ``"snippets": true`` (each hit gets the
  start of its stored text, ``snippet``).

Errors are JSON ``{"error": code, "message": ..., "status": ...}``: 400 for a body that is not a
JSON object, 413 for a body over 1 MiB, 422 for invalid fields (empty query, ``k`` out of range,
unknown route, unknown field), 404/405 for a wrong path or method, 503 with ``Retry-After``
when the admission queue is full (``max_inflight`` requests running and ``max_queue`` waiting):
memory stays bounded under overload instead of growing with the backlog. 503 with
``Retry-After`` (``unavailable``) also when not one of the shard groups a request needed
answered: never a 200 with no hits.

A query whose search failed in a shard group gets its own error and no hits — a one-query
request answers with that error's status (422 ``too_many_terms``, 500 ``search_failed``); in a
batch, that query's entry carries ``"error"`` and the others are answered as usual.

Reading a request is bounded in size and time: the body is read in pieces and refused (413)
as soon as it passes 1 MiB, chunked or not; a body must arrive within ``body_timeout_s``, a
request line and headers within ``header_timeout_s`` and under ``max_header_bytes`` (see
:class:`~selectsearch.serve.config.ServeConfig`), else 408/431 and the connection is closed —
a client sending one byte a second cannot hold a connection. A client that disconnects in the
middle of its body is dropped quietly (no traceback in the log). Serve with
:func:`uvicorn_config` (or :class:`BackgroundServer`), which installs the request-head guard.

Example:
    >>> app = create_app(coordinator)  # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from selectsearch.serve.config import RequestError
from selectsearch.types import Query, SearchResult

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.serve.coordinator import Coordinator

__all__ = ["PAGE_HEADERS", "Admission", "BackgroundServer", "create_app", "guarded_http_protocol",
           "parse_search_request", "result_to_json", "search_page", "snippet", "uvicorn_config"]

log = logging.getLogger(__name__)

#: largest request body accepted
MAX_BODY_BYTES = 1 << 20
_FIELDS = {"query", "query_id", "queries", "k", "route", "deadline_ms", "explain", "snippets"}
#: characters of a document's stored text in a hit's ``snippet``
SNIPPET_CHARS = 240


#: headers of the search page: it runs only its own inline script and talks only to this server
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


@cache
def search_page() -> str:
    """The search page served at ``GET /`` by both engines (one static HTML file, package data)."""
    return resources.files("selectsearch.serve").joinpath("static/index.html").read_text(encoding="utf-8")


class _ConnectionEndingError(RequestError):
    """A request error after which the connection is closed (the rest of its body is unwanted)."""


class Admission:
    """A bounded admission queue: ``max_inflight`` requests run, ``max_queue`` wait, the rest get 503."""

    def __init__(self, max_inflight: int, max_queue: int) -> None:
        self.max_inflight = max_inflight
        self.max_queue = max_queue
        self._slots: asyncio.Semaphore | None = None
        self.inflight = 0
        self.waiting = 0
        self.served = 0
        self.rejected = 0

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if needed; 503 :class:`RequestError` when it is full."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_inflight)
        if self._slots.locked() and self.waiting >= self.max_queue:
            self.rejected += 1
            raise RequestError(503, "overloaded", f"{self.inflight} requests running and {self.waiting} waiting; "
                                                  "retry after a short pause")
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.inflight += 1

    def release(self) -> None:
        """Give the slot back."""
        assert self._slots is not None
        self.inflight -= 1
        self.served += 1
        self._slots.release()

    def to_json(self) -> dict[str, int]:
        """Counters for ``/health``."""
        return {"inflight": self.inflight, "waiting": self.waiting, "served": self.served, "rejected": self.rejected,
                "max_inflight": self.max_inflight, "max_queue": self.max_queue}


def parse_search_request(body: Any) -> tuple[list[Query], bool, dict[str, Any]]:
    """``(queries, is_batch, options)`` from a decoded JSON body; 400/422 :class:`RequestError`.

    Example:
        >>> qs, batch, opts = parse_search_request({"query": "vitamin d", "k": 5})
        >>> qs, batch
        ([Query(query_id='q', text='vitamin d')], False)
        >>> opts
        {'k': 5, 'route': None, 'deadline_ms': None, 'explain': False, 'snippets': False}
    """
    if not isinstance(body, dict):
        raise RequestError(400, "invalid_body", 'the body must be a JSON object such as {"query": "...", "k": 10}')
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise RequestError(422, "unknown_field", f"unknown field(s) {unknown}; known: {sorted(_FIELDS)}")
    if ("query" in body) == ("queries" in body):
        raise RequestError(422, "empty_query", "send exactly one of 'query' (a text) or 'queries' (a list)")
    queries: list[Query] = []
    if "query" in body:
        text, qid = body["query"], body.get("query_id", "q")
        if not isinstance(text, str):
            raise RequestError(422, "empty_query", "'query' must be a string")
        if not isinstance(qid, str | int) or isinstance(qid, bool):
            raise RequestError(422, "bad_query_id", "'query_id' must be a string")
        queries.append(Query(str(qid), text))
    else:
        raw = body["queries"]
        items: list[Any]
        if isinstance(raw, dict):
            items = [{"query_id": k, "text": v} for k, v in raw.items()]
        elif isinstance(raw, list):
            items = raw
        else:
            raise RequestError(422, "empty_query", "'queries' must be a list or an object {query_id: text}")
        for n, item in enumerate(items):
            if isinstance(item, str):
                queries.append(Query(str(n), item))
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                qid = item.get("query_id", item.get("id", n))
                queries.append(Query(str(qid), item["text"]))
            else:
                raise RequestError(422, "empty_query", f"queries[{n}] must be a string or {{'query_id', 'text'}}")
    k = body.get("k", 10)
    if isinstance(k, bool) or not isinstance(k, int):
        raise RequestError(422, "k_out_of_range", f"k must be an integer, got {k!r}")
    route = body.get("route")
    if route is not None and not isinstance(route, str):
        raise RequestError(422, "unknown_route", "'route' must be a string such as 'centroid@2'")
    flags = {}
    for name in ("explain", "snippets"):
        flag = body.get(name, False)
        if not isinstance(flag, bool):
            raise RequestError(422, "invalid_field", f"'{name}' must be true or false, got {flag!r}")
        flags[name] = flag
    return queries, "queries" in body, {"k": k, "route": route, "deadline_ms": body.get("deadline_ms"), **flags}


def snippet(text: str, chars: int = SNIPPET_CHARS) -> str:
    """The start of a document's text on one line, cut at a word boundary within ``chars``.

    Example:
        >>> snippet("Vitamin D   and  bone density in adults", 20)
        'Vitamin D and bone …'
    """
    flat = " ".join(text.split())
    if len(flat) <= chars:
        return flat
    cut = flat[:chars]
    space = cut.rfind(" ")
    return (cut[:space + 1] if space > chars // 2 else cut) + "…"


def result_to_json(query_id: str, result: SearchResult, text_of: Callable[[str], str] | None = None
                   ) -> dict[str, Any]:
    """One query's answer as JSON (with ``"error"`` when searching that query failed).

    ``text_of`` (a doc id's stored text; the request's ``snippets``) gives each hit a ``snippet``.
    """
    trace = result.trace.to_json()
    hits: list[dict[str, Any]] = [{"doc_id": h.doc_id, "score": h.score, "shard_id": h.shard_id} for h in result.hits]
    if text_of is not None:
        for hit in hits:
            hit["snippet"] = snippet(text_of(hit["doc_id"]))
    out: dict[str, Any] = {
        "query_id": query_id,
        "hits": hits,
        "trace": trace, "partial": bool(result.trace.missing_shards),
        "missing_shards": list(result.trace.missing_shards)}
    error: Any = result.trace.extra.get("error")
    if error:
        out["error"] = dict(error)
    return out


def create_app(coordinator: Coordinator, *, max_inflight: int | None = None, max_queue: int | None = None) -> Any:
    """The Starlette ASGI app serving ``coordinator`` (limits default to its configuration)."""
    import orjson
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    config = coordinator.config
    admission = Admission(max_inflight or config.max_inflight,
                          config.max_queue if max_queue is None else max_queue)

    def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                        media_type="application/json", headers=headers)

    def error_response(err: RequestError) -> Response:
        headers = None
        if err.status == 503:
            headers = {"Retry-After": "1"}
        elif isinstance(err, _ConnectionEndingError):  # a body too slow, or too large with no declared end
            headers = {"Connection": "close"}
        return json_response(err.to_json(), err.status, headers)

    async def read_body(request: Request) -> bytes:
        # in pieces, so a body (chunked or not) is refused as soon as it passes the limit
        message = f"request body over {MAX_BODY_BYTES} bytes"
        try:
            declared = int(request.headers.get("content-length") or 0)
        except ValueError:
            declared = 0  # the HTTP parser has already refused a malformed Content-Length
        if declared > MAX_BODY_BYTES:
            # answered at once; the server discards the declared rest (within header_timeout_s)
            # and the connection stays usable
            raise RequestError(413, "body_too_large", message)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(config.body_timeout_s):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise _ConnectionEndingError(413, "body_too_large", message)
                    chunks.append(chunk)
        except TimeoutError as exc:
            raise _ConnectionEndingError(408, "body_timeout", f"the request body did not arrive within "
                                                      f"{config.body_timeout_s:g} s") from exc
        return b"".join(chunks)

    async def search(request: Request) -> Response:
        try:
            raw = await read_body(request)
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise RequestError(400, "invalid_json", f"the body is not valid JSON ({exc})") from exc
            queries, is_batch, options = parse_search_request(body)
            # validate before queueing: a bad request never takes a slot
            coordinator.resolve_route(options["route"])
            coordinator.check_request(queries, options["k"], options["deadline_ms"])
            t = asyncio.get_running_loop().time()
            await admission.acquire()
            queued_ms = (asyncio.get_running_loop().time() - t) * 1000.0
            try:
                results = await coordinator.asearch(queries, options["k"], route=options["route"],
                                                    deadline_ms=options["deadline_ms"], explain=options["explain"])
            finally:
                admission.release()
        except RequestError as err:
            return error_response(err)
        except ClientDisconnect:  # gone in the middle of its body: nobody to answer, nothing to log
            log.debug("client disconnected before sending its whole request")
            return Response(status_code=400)
        answers = []
        text_of = coordinator.doc_text if options["snippets"] else None
        for q in queries:
            result = results[q.query_id]
            result.trace.timings_ms["queue"] = queued_ms
            answers.append(result_to_json(q.query_id, result, text_of))
        if is_batch:
            return json_response({"results": answers, "partial": any(a["partial"] for a in answers),
                                  "errors": sum("error" in a for a in answers)})
        if "error" in answers[0]:
            error = answers[0]["error"]
            return json_response({**error, "query_id": answers[0]["query_id"]}, int(error["status"]))
        return json_response(answers[0])

    async def health(request: Request) -> Response:
        report = await coordinator.ahealth()
        report["admission"] = admission.to_json()
        return json_response(report, 200 if report["ok"] else 503)

    async def info(request: Request) -> Response:
        return json_response(coordinator.describe())

    async def page(request: Request) -> Response:
        return HTMLResponse(search_page(), headers=PAGE_HEADERS)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        return json_response({"error": code, "message": str(getattr(exc, "detail", exc)), "status": status}, status)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s", request.url.path)
        return json_response({"error": "internal", "message": f"{type(exc).__name__}: {exc}", "status": 500}, 500)

    app = Starlette(routes=[Route("/", page, methods=["GET"]), Route("/search", search, methods=["POST"]),
                            Route("/health", health, methods=["GET"]), Route("/info", info, methods=["GET"])],
                    exception_handlers={HTTPException: http_error, Exception: server_error})
    app.state.admission = admission
    app.state.coordinator = coordinator
    return app


def guarded_http_protocol(header_timeout_s: float, max_header_bytes: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol with a bound on each request's line and headers: they must
    arrive within ``header_timeout_s`` of the connection opening (or of the first byte of the
    next request on a kept-alive connection) and take at most ``max_header_bytes``; otherwise
    the server answers 408 or 431 (JSON) and closes the connection. uvicorn bounds neither:
    its keep-alive timeout only covers a connection that sends nothing after a response.
    Idle kept-alive connections are still closed by uvicorn's ``timeout_keep_alive``.
    """
    import orjson

    base: type[Any]
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools missing: the pure-Python parser
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol

    reasons = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}

    class GuardedHttpProtocol(base):  # type: ignore[misc,valid-type,unused-ignore]
        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0
        _head_pending = True  # no request line and headers yet since the last message ended

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._head_timer = self.loop.call_later(header_timeout_s, self._timed_out)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            super().connection_lost(exc)

        # httptools' parser callbacks (the h11 fallback falls back on the request cycle)
        def on_headers_complete(self) -> None:
            self._head_pending = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._head_pending = True

        def _awaiting_head(self) -> bool:
            if hasattr(base, "on_message_complete"):
                return self._head_pending
            return self.cycle is None or bool(self.cycle.response_complete)  # pragma: no cover

        def _guarded(self) -> bool:
            # waiting for a head, or draining the rest of a body after the app already answered
            # (e.g. 413 on a declared Content-Length): the app's body timeout no longer applies
            return self._awaiting_head() or (self.cycle is not None and bool(self.cycle.response_complete))

        def _stop_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def data_received(self, data: bytes) -> None:
            awaiting = self._awaiting_head()
            if self._guarded() and self._head_timer is None:
                self._head_timer = self.loop.call_later(header_timeout_s, self._timed_out)
            if awaiting:
                self._head_bytes += len(data)
            super().data_received(data)
            if not self._awaiting_head():
                self._head_bytes = 0
            if not self._guarded():  # a request is in the app's hands (which bounds the body)
                self._stop_timer()
            elif self._awaiting_head() and self._head_bytes > max_header_bytes:
                self._reject(431, "header_too_large", f"request line and headers over {max_header_bytes} bytes")

        def _timed_out(self) -> None:
            self._head_timer = None
            if self._awaiting_head():
                self._reject(408, "header_timeout", f"the request line and headers did not arrive within "
                                                    f"{header_timeout_s:g} s")
            elif self._guarded() and not self.transport.is_closing():
                self.transport.close()  # the rest of an unwanted body is too slow

        def _reject(self, status: int, code: str, message: str) -> None:
            self._stop_timer()
            if self.transport.is_closing():
                return
            body = orjson.dumps({"error": code, "message": message, "status": status})
            self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                                 b"connection: close\r\n\r\n%s" % (status, reasons[status], len(body), body))
            self.transport.close()

    return GuardedHttpProtocol


def uvicorn_config(app: Any, *, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> Any:
    """The ``uvicorn.Config`` serving an app of :func:`create_app`: its coordinator's
    request-head limits (:func:`guarded_http_protocol`), warnings only, no access log;
    ``options`` go to ``uvicorn.Config``.

    Example:
        >>> uvicorn.Server(uvicorn_config(create_app(coordinator), port=8000)).run()  # doctest: +SKIP
    """
    import uvicorn

    config = app.state.coordinator.config
    options = {"log_level": "warning", "access_log": False, **options}
    return uvicorn.Config(app, host=host, port=port,
                          http=guarded_http_protocol(config.header_timeout_s, config.max_header_bytes), **options)


class BackgroundServer:
    """Run an ASGI app with uvicorn in a background thread (tests, benchmarks, notebooks).

    ``port=0`` picks a free port; :attr:`url` tells which.

    Example:
        >>> with BackgroundServer(create_app(coordinator)) as server:  # doctest: +SKIP
        ...     ServeClient(server.url).search("vitamin d")
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        import uvicorn

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = host, int(self._sock.getsockname()[1])
        self.server = uvicorn.Server(uvicorn_config(app, lifespan="off", timeout_keep_alive=30))
        self._thread: Any = None

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> BackgroundServer:
        """Start serving; returns once the socket accepts requests."""
        import threading
        import time

        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True,
                                        name="selectsearch-http")
        self._thread.start()
        t = time.monotonic()
        while not self.server.started:
            if time.monotonic() - t > timeout_s or not self._thread.is_alive():
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
