"""A small Python client of ``selectsearch serve`` (standard library only, keep-alive).

One :class:`ServeClient` holds one HTTP connection: use one per thread.

Example:
    >>> client = ServeClient("http://127.0.0.1:8000")  # doctest: +SKIP
    >>> result = client.search("vitamin D deficiency and fractures", k=10, route="centroid@4")  # doctest: +SKIP
    >>> result.hits[0].doc_id, result.trace.missing_shards  # doctest: +SKIP
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from selectsearch.serve.config import RequestError, ServeError
from selectsearch.types import Hit, SearchResult, SearchTrace

__all__ = ["ServeClient", "result_from_json"]


def result_from_json(payload: Mapping[str, Any]) -> SearchResult:
    """A :class:`SearchResult` from one answer of ``POST /search``."""
    t = payload["trace"]
    trace = SearchTrace(query_id=t["query_id"], route=t["route"], shards=list(t["shards"]),
                        docs_scored=int(t["docs_scored"]), timings_ms=dict(t.get("timings_ms", {})),
                        missing_shards=list(t.get("missing_shards", [])), extra=dict(t.get("extra", {})))
    return SearchResult([Hit(h["doc_id"], float(h["score"]), int(h["shard_id"])) for h in payload["hits"]], trace)


class ServeClient:
    """Talk to a running ``selectsearch serve``.

    Args:
        url: base URL, e.g. ``http://127.0.0.1:8000`` (or ``http://host:port/prefix`` for a
            service under a path prefix).
        timeout_s: socket timeout of one request.
        retries_on_503: times an overloaded (503) answer is retried, after its ``Retry-After``
            (capped at ``backoff_s``); then :class:`RequestError` is raised.
    """

    def __init__(self, url: str, *, timeout_s: float = 30.0, retries_on_503: int = 0, backoff_s: float = 0.05) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ServeError(f"bad server URL {url!r}; write http://HOST:PORT")
        self.host, self.port = parts.hostname, parts.port or 80
        self.base = parts.path.rstrip("/")  # a service behind a path prefix: http://host:port/prefix
        self.timeout_s = timeout_s
        self.retries_on_503 = retries_on_503
        self.backoff_s = backoff_s
        self._conn: http.client.HTTPConnection | None = None
        #: headers of the last response (lower-case names), e.g. ``retry-after`` of a 503
        self.last_headers: dict[str, str] = {}

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in range(2):  # one reconnect when a kept-alive connection was closed by the server
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            try:
                self._conn.request(method, self.base + path, body=data, headers=headers)
                response = self._conn.getresponse()
                raw = response.read()
                self.last_headers = {k.lower(): v for k, v in response.getheaders()}
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                self.close()
                if attempt == 0:
                    continue
                raise ServeError(f"cannot reach selectsearch serve at {self.host}:{self.port} ({exc})") from exc
            try:
                payload = json.loads(raw) if raw else None
            except json.JSONDecodeError as exc:
                if response.status < 400:
                    raise ServeError(f"{method} {path}: the server answered {response.status} with non-JSON") from exc
                # an error answered before the app saw the request (Ray Serve's proxy sheds load
                # with a text 503): the same JSON shape as the app's errors
                code = "overloaded" if response.status == 503 else "http_error"
                payload = {"error": code, "message": raw.decode("utf-8", "replace")[:500], "status": response.status}
            return response.status, payload
        raise AssertionError("unreachable")  # pragma: no cover

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Raw call: ``(status, decoded JSON)``; retries 503 answers ``retries_on_503`` times."""
        for attempt in range(self.retries_on_503 + 1):
            status, payload = self._request(method, path, body)
            if status != 503 or attempt == self.retries_on_503:
                return status, payload
            time.sleep(self.backoff_s * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _checked(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.request(method, path, body)
        if status >= 400:
            payload = payload if isinstance(payload, dict) else {}
            raise RequestError(status, str(payload.get("error", "http_error")),
                               str(payload.get("message", f"HTTP {status}")))
        return payload

    def search(self, query: str, k: int = 10, *, route: str | None = None, deadline_ms: float | None = None
               ) -> SearchResult:
        """Top ``k`` hits of one query; ``result.trace.missing_shards`` is non-empty for a partial answer."""
        body: dict[str, Any] = {"query": query, "k": k}
        if route is not None:
            body["route"] = route
        if deadline_ms is not None:
            body["deadline_ms"] = deadline_ms
        return result_from_json(self._checked("POST", "/search", body))

    def batch_search(self, queries: Mapping[str, str] | Sequence[tuple[str, str]], k: int = 10, *,
                     route: str | None = None, deadline_ms: float | None = None) -> dict[str, SearchResult]:
        """Many queries in one request: ``{query_id: SearchResult}``."""
        items = queries.items() if isinstance(queries, Mapping) else queries
        body: dict[str, Any] = {"queries": [{"query_id": qid, "text": text} for qid, text in items], "k": k}
        if route is not None:
            body["route"] = route
        if deadline_ms is not None:
            body["deadline_ms"] = deadline_ms
        payload = self._checked("POST", "/search", body)
        return {r["query_id"]: result_from_json(r) for r in payload["results"]}

    def health(self) -> dict[str, Any]:
        """The ``/health`` report (whatever its status)."""
        return dict(self.request("GET", "/health")[1])

    def info(self) -> dict[str, Any]:
        """The ``/info`` report."""
        return dict(self._checked("GET", "/info"))

    def close(self) -> None:
        """Close the connection (a later call reconnects)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ServeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
