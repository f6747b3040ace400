"""The HTTP endpoint under hostile clients (no Ray: a stand-in coordinator answers).

Issue 17, item 17: a body is refused as soon as it passes the limit (chunked bodies included,
instead of being read whole into memory), slow clients cannot hold a connection (request-head
and body timeouts), too many header bytes are refused, and a client that disconnects in the
middle of its body leaves no traceback in the log. Item 8 (HTTP side): a query that failed
alone gets its own error.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from selectsearch.serve.app import BackgroundServer, create_app
from selectsearch.serve.config import ServeConfig
from selectsearch.types import Hit, Query, SearchResult, SearchTrace

LIMIT = 1 << 20


class StandInCoordinator:
    """What the app needs of a coordinator; ``fail`` texts fail alone, as the shard groups report."""

    def __init__(self, config: ServeConfig, fail: Sequence[str] = ()) -> None:
        self.config = config
        self.fail = set(fail)

    def resolve_route(self, route: str | None) -> str:
        return route or "all"

    def check_request(self, queries: Sequence[Query], k: int, deadline_ms: float | None = None) -> None:
        pass

    async def asearch(self, queries: Sequence[Query], k: int, *, route: str | None = None,
                      deadline_ms: float | None = None, explain: bool = False) -> dict[str, SearchResult]:
        out = {}
        for q in queries:
            trace = SearchTrace(q.query_id, "all", [0], 10, {"route": 0.0, "search": 0.0})
            if q.text in self.fail:
                trace.extra["error"] = {"error": "too_many_terms", "status": 422, "message": "shorten it"}
                out[q.query_id] = SearchResult([], trace)
            else:
                out[q.query_id] = SearchResult([Hit(f"doc-{q.text}", 1.0, 0)], trace)
        return out

    async def ahealth(self) -> dict[str, Any]:
        return {"ok": True, "groups": []}

    def describe(self) -> dict[str, Any]:
        return {}


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    config = ServeConfig(header_timeout_s=1.0, body_timeout_s=1.0, max_header_bytes=8192)
    with BackgroundServer(create_app(StandInCoordinator(config, fail=["poison"]))) as srv:
        yield srv


def _connect(server: BackgroundServer, timeout_s: float = 5.0) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=timeout_s)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response (the connection must then close or be complete)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed without a response ({data[:200]!r})")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body[:length]


def _closed(sock: socket.socket, within_s: float) -> bool:
    """True when the server closed the connection within ``within_s`` (reads give EOF)."""
    sock.settimeout(within_s)
    try:
        while sock.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_chunked_body_over_the_limit_is_refused_while_it_is_sent(server: BackgroundServer) -> None:
    """Before: the body was read whole before the check — a chunked body that never ends held
    the request (and grew memory) for ever; now 413 once 1 MiB has arrived, connection closed."""
    sock = _connect(server)
    sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    piece = b"x" * 65536
    sent = 0
    try:
        while sent < 2 * LIMIT:  # twice the limit, never the final 0-size chunk
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server already answered and closed
    sock.settimeout(5)
    status, headers, body = _read_response(sock)
    assert status == 413 and json.loads(body)["error"] == "body_too_large"
    assert headers.get("connection") == "close"
    sock.close()


def test_slow_body_gets_408_and_the_connection_closes(server: BackgroundServer) -> None:
    """Before: a client sending its body slowly (or not at all) held the connection for ever."""
    sock = _connect(server)
    sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"query\"")
    t = time.monotonic()
    status, _, body = _read_response(sock)
    assert status == 408 and json.loads(body)["error"] == "body_timeout"
    assert time.monotonic() - t < 4.0
    assert _closed(sock, 3.0)


@pytest.mark.parametrize("first", [b"", b"POST /search HTTP/1.1\r\nHost: x\r\n"])
def test_slow_request_head_gets_408_and_the_connection_closes(server: BackgroundServer, first: bytes) -> None:
    """A client that connects and sends nothing, or sends its headers a byte at a time, is cut
    off after header_timeout_s (before: held for ever)."""
    sock = _connect(server)
    t = time.monotonic()
    if first:
        sock.sendall(first)
        for byte in b"X-Slow: 1":  # one byte every 0.2 s: never completes the headers in time
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.2)
    status, _, body = _read_response(sock)
    assert status == 408 and json.loads(body)["error"] == "header_timeout"
    assert time.monotonic() - t < 4.0
    assert _closed(sock, 3.0)


def test_too_many_header_bytes_get_431(server: BackgroundServer) -> None:
    sock = _connect(server)
    sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\n")
    try:
        for i in range(400):  # ~40 KB of headers, over the 8 KiB limit of this server
            sock.sendall(b"X-Filler-%d: %s\r\n" % (i, b"y" * 100))
    except OSError:
        pass
    status, _, body = _read_response(sock)
    assert status == 431 and json.loads(body)["error"] == "header_too_large"


def test_client_gone_mid_body_leaves_no_traceback(server: BackgroundServer, caplog: pytest.LogCaptureFixture
                                                  ) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        sock = _connect(server)
        sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"query\": \"rock")
        time.sleep(0.1)
        sock.close()
    time.sleep(0.5)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == [], [r.getMessage() for r in noisy]
    # and the server still answers
    sock = _connect(server)
    body = json.dumps({"query": "rocket"}).encode()
    sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    assert _read_response(sock)[0] == 200
    sock.close()


def test_keep_alive_requests_are_not_cut_by_the_head_timeout(server: BackgroundServer) -> None:
    """The head timer counts from a request's first byte, not from the connection's start."""
    from selectsearch.serve.client import ServeClient

    with ServeClient(server.url) as client:
        for _ in range(3):
            assert client.search("rocket").hits[0].doc_id == "doc-rocket"
            time.sleep(0.6)  # 1.8 s in all on one connection, over the 1 s head timeout


def test_a_failed_query_fails_alone(server: BackgroundServer) -> None:
    from selectsearch.serve.client import ServeClient

    with ServeClient(server.url) as client:
        status, payload = client.request("POST", "/search", {"queries": ["rocket", "poison", "orbit"]})
        assert status == 200 and payload["errors"] == 1
        good, bad, other = payload["results"]
        assert [h["doc_id"] for h in good["hits"]] == ["doc-rocket"] and "error" not in good
        assert [h["doc_id"] for h in other["hits"]] == ["doc-orbit"]
        assert bad["hits"] == [] and bad["error"]["error"] == "too_many_terms"
        status, payload = client.request("POST", "/search", {"query": "poison"})
        assert status == 422 and payload["error"] == "too_many_terms" and payload["message"]


def test_declared_oversized_body_gets_413_and_the_connection_stays_usable(server: BackgroundServer) -> None:
    """A client that sends its whole (declared) oversized body before reading still gets the 413,
    and its kept-alive connection answers the next request."""
    import http.client

    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("POST", "/search", body=b"[" + b" " * (LIMIT + 10) + b"]")
    response = conn.getresponse()
    assert response.status == 413 and json.loads(response.read())["error"] == "body_too_large"
    conn.request("POST", "/search", body=json.dumps({"query": "orbit"}).encode())
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["hits"][0]["doc_id"] == "doc-orbit"
    conn.close()
