"""The Ray Serve application (``selectsearch serve``'s default engine) on a local multi-node Ray
cluster (head + 2 workers on loopback): answers equal in-process search for every router, typed
4xx JSON errors and the OpenAPI page, a killed shard-group replica under load loses no request
(flagged partials, Serve restarts it), a second replica takes over, a slow group misses the
deadline, no group answering is a 503, Serve's admission limits answer 503 with Retry-After.

Runs only in a loopback-only network namespace (see conftest.py); ``make test`` does that.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from selectsearch.data import load_qrels
from selectsearch.search import SelectiveSearcher
from selectsearch.serve.config import ServeConfig
from selectsearch.types import Query

from .conftest import QUERIES
from .test_ray import MALFORMED, ROUTES, _key, _load, _post


@dataclass
class Served:
    """One Serve application: where it answers and its deployments' handles."""

    host: str
    port: int
    prefix: str
    groups: tuple[tuple[int, ...], ...]
    app: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.prefix}"

    def group(self, g: int) -> Any:
        from ray import serve

        return serve.get_deployment_handle(f"group-{g}", self.app)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _deploy(index: Path, config: ServeConfig, name: str, prefix: str, **kwargs: Any) -> Served:
    from dataclasses import replace

    from ray import serve

    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.serve.deployments import build_application
    from selectsearch.serve.remote import place_groups

    config = replace(config, placement=place_groups(ShardedIndex.open(index), config))
    serve.run(build_application(index, config, **kwargs), name=name, route_prefix=prefix or "/")
    assert config.placement is not None
    return Served("127.0.0.1", 0, prefix, config.placement, name)


@pytest.fixture(scope="module")
def serve_port(ray_cluster: Any) -> Iterator[int]:
    from ray import serve

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port, "location": "HeadOnly"})
    yield port
    serve.shutdown()


@pytest.fixture(scope="module")
def served(serve_port: int, serve_index: Path, serve_beir: Path) -> Served:
    config = ServeConfig(route="centroid@2", shards_per_group=2, actor_num_cpus=0.25, actor_java_heap="256m",
                         deadline_ms=20_000)
    app = _deploy(serve_index, config, "selectsearch", "", qrels=load_qrels(serve_beir, split="test"))
    app.port = serve_port
    return app


def test_answers_equal_in_process_for_every_router(served: Served, serve_index: Path, serve_beir: Path) -> None:
    from selectsearch.serve.client import ServeClient

    assert len(served.groups) == 3
    qrels = load_qrels(serve_beir, split="test")
    base = SelectiveSearcher.open(serve_index)
    queries = [Query(q, t) for q, t in QUERIES.items()]
    group_of = {s: g for g, members in enumerate(served.groups) for s in members}
    with ServeClient(served.url, timeout_s=60) as client:
        for route in ROUTES:
            local = base.with_route(route, qrels=qrels)
            for k in (3, 50):
                expected = local.batch_search(queries, k=k)
                got = client.batch_search(QUERIES, k=k, route=route)
                assert _key(got) == _key(expected), (route, k)
                for r in got.values():
                    assert not r.trace.missing_shards
                    # only the groups holding selected shards were asked
                    assert r.trace.extra["groups"] == sorted({group_of[s] for s in r.trace.shards})
        # one query at a time, the server's default route, and score ties ordered by doc id
        default = base.with_route("centroid@2")
        for text in QUERIES.values():
            assert client.search(text, k=10).hits == default.search(text, k=10)
        hits = client.search("planet orbit", k=200, route="all").hits
        dups = [h for h in hits if h.doc_id.startswith("dup-")]
        assert [h.doc_id for h in dups] == sorted(h.doc_id for h in dups) and len({h.score for h in dups}) == 1
        info = client.info()
        assert info["engine"] == "ray-serve" and info["groups"] == [list(g) for g in served.groups]
        health = client.health()
        assert health["ok"] and len(health["groups"]) == 3
        assert {d["status"] for d in health["deployments"].values()} == {"HEALTHY"}


def test_search_page_in_a_browser(served: Served, serve_index: Path, chromium: str) -> None:
    """The search page (GET /, a route of the FastAPI ingress) over the Serve engine: typed
    queries and ``/?q=...`` show the hits and the routing chart of in-process search."""
    from .test_page import check_typing, check_url_query

    check_typing(chromium, served.url + "/", serve_index, "centroid@2")
    check_url_query(chromium, served.url + "/", serve_index)


@pytest.mark.parametrize(("body", "raw", "method", "path", "status", "code"), MALFORMED)
def test_malformed_http_requests_get_4xx_json(served: Served, body: Any, raw: bytes | None, method: str, path: str,
                                              status: int, code: str) -> None:
    got, payload, headers = _post(served, body, raw, method, path)
    assert got == status and payload["error"] == code and payload["message"], payload
    assert headers["content-type"].startswith("application/json")


def test_openapi_page_names_the_typed_models(served: Served) -> None:
    import http.client
    import json

    conn = http.client.HTTPConnection(served.host, served.port, timeout=30)
    conn.request("GET", "/openapi.json")
    spec = json.loads(conn.getresponse().read())
    conn.request("GET", "/docs")
    page = conn.getresponse()
    assert page.status == 200 and b"swagger" in page.read().lower()
    conn.close()
    schemas = spec["components"]["schemas"]
    assert {"SearchRequest", "SearchResponse", "BatchResponse", "ErrorResponse"} <= set(schemas)
    assert set(schemas["SearchRequest"]["properties"]) == {"query", "query_id", "queries", "k", "route", "deadline_ms",
                                                           "explain", "snippets"}


def _replica_pid(served: Served, g: int) -> int:
    return int(served.group(g).ping.remote().result(timeout_s=30)["pid"])


def _wait_new_replica(served: Served, g: int, old_pid: int, timeout_s: float = 120.0) -> float:
    t = time.monotonic()
    while time.monotonic() - t < timeout_s:
        try:
            if _replica_pid(served, g) != old_pid:
                return time.monotonic() - t
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"Serve did not replace the killed replica of group {g}")


def test_killed_replica_under_load_loses_no_request(served: Served) -> None:
    victim = 1
    old_pid = _replica_pid(served, victim)
    victim_shards = set(served.groups[victim])
    # slow calls: some are surely in flight at the kill (its replacement starts without the delay)
    served.group(victim).inject_fault.remote(delay_s=0.2).result(timeout_s=30)

    def kill() -> None:
        time.sleep(1.0)
        os.kill(old_pid, signal.SIGKILL)

    results = _load(served.url, n_clients=16, per_client=25, routes=["all", "cori@3", "centroid@2"],
                    deadline_ms=5000, during=kill)
    assert len(results) == 400
    # every request answered: 200 (full or flagged partial), or 503 when the dead group was all it needed
    assert {status for status, _, _ in results} <= {200, 503}, {s for s, _, _ in results}
    for status, p, route in results:
        assert status == 200 or (route != "all" and p is not None and p["error"] == "unavailable"), (status, p)
    answered = [p for s, p, _ in results if s == 200 and p]
    # partial answers (the group was not back before the deadline) name exactly its shards
    for p in answered:
        if p["partial"]:
            assert set(p["missing_shards"]) <= victim_shards
            assert set(p["missing_shards"]) == set(p["trace"]["shards"]) & victim_shards
            assert p["trace"]["extra"]["failures"][str(victim)]
    # the kill hit requests in flight: they were flagged partial, or retried until Serve's new replica answered
    hit = [p for p in answered if p["trace"]["extra"].get("failures", {}).get(str(victim))]
    assert hit, "no request saw the killed replica: the kill came after the load"
    _wait_new_replica(served, victim, old_pid)
    from selectsearch.serve.client import ServeClient

    with ServeClient(served.url, timeout_s=60) as client:
        t = time.monotonic()
        while True:  # the proxy's and router's view of the replicas catches up within a few seconds
            full = client.batch_search(QUERIES, k=10, route="all")
            if all(not r.trace.missing_shards for r in full.values()):
                break
            assert time.monotonic() - t < 30, "answers stayed partial after the replica came back"
            time.sleep(0.5)


def test_slow_group_misses_the_deadline_but_the_query_returns(served: Served) -> None:
    from selectsearch.serve.client import ServeClient

    slow = 2
    served.group(slow).inject_fault.remote(delay_s=3.0).result(timeout_s=30)
    try:
        with ServeClient(served.url, timeout_s=60) as client:
            t = time.perf_counter()
            out = client.batch_search(QUERIES, k=10, route="all", deadline_ms=400)
            assert time.perf_counter() - t < 2.5
        for r in out.values():
            assert r.trace.missing_shards == sorted(served.groups[slow])
            assert not {h.shard_id for h in r.hits} & set(served.groups[slow])
            assert "deadline" in r.trace.extra["failures"][str(slow)][-1]
    finally:
        served.group(slow).inject_fault.remote(delay_s=0.0).result(timeout_s=60)


def test_no_group_answering_gives_503_with_retry_after(served: Served) -> None:
    groups = range(len(served.groups))
    for g in groups:
        served.group(g).inject_fault.remote(delay_s=1.5).result(timeout_s=30)
    try:
        status, payload, headers = _post(served, {"query": QUERIES["q1"], "route": "all", "deadline_ms": 200})
        assert status == 503 and payload["error"] == "unavailable" and "deadline" in payload["message"]
        assert int(headers["retry-after"]) >= 1
    finally:
        for g in groups:
            served.group(g).inject_fault.remote(delay_s=0.0).result(timeout_s=60)


def test_one_failing_query_fails_alone(served: Served) -> None:
    poison = "poison pill query"
    for g in range(len(served.groups)):
        served.group(g).inject_fault.remote(fail_text=poison).result(timeout_s=30)
    try:
        batch = [{"query_id": "q1", "text": QUERIES["q1"]}, {"query_id": "bad", "text": poison}]
        status, payload, _ = _post(served, {"queries": batch, "k": 10, "route": "all"})
        assert status == 200 and payload["errors"] == 1 and not payload["partial"]
        by_id = {r["query_id"]: r for r in payload["results"]}
        assert by_id["bad"]["hits"] == [] and by_id["bad"]["error"]["error"] == "search_failed"
        assert by_id["q1"]["hits"] and "error" not in by_id["q1"]
        status, payload, _ = _post(served, {"query": poison, "route": "all"})
        assert status == 500 and payload["error"] == "search_failed" and "injected" in payload["message"]
    finally:
        for g in range(len(served.groups)):
            served.group(g).inject_fault.remote().result(timeout_s=30)


@pytest.fixture(scope="module")
def small(serve_port: int, serve_index: Path) -> Iterator[Served]:
    """One shard group with two replicas, one request at a time and two waiting."""
    from ray import serve

    config = ServeConfig(route="all", shards_per_group=6, replicas=2, actor_num_cpus=0.25, actor_java_heap="256m",
                         deadline_ms=20_000, max_inflight=1, max_queue=2)
    app = _deploy(serve_index, config, "selectsearch-small", "/small")
    app.port = serve_port
    yield app
    serve.delete("selectsearch-small")


def _fault_every_replica(app: Served, g: int, replicas: int, delay_s: float) -> None:
    """Set the delay of every replica of group ``g``: Serve picks the replica of each call, so
    call until every replica has answered (a fault then a ping could alternate between two
    replicas forever; the fault call itself says which replica took it)."""
    state: dict[int, float] = {}
    for _ in range(200):
        ping = app.group(g).inject_fault.remote(delay_s=delay_s).result(timeout_s=30)
        state[int(ping["pid"])] = float(ping["delay_s"])
        if len(state) == replicas and set(state.values()) == {delay_s}:
            return
    raise AssertionError(f"could not reach every replica of group {g}: {state}")


def test_full_queue_answers_503_with_retry_after(small: Served) -> None:
    import threading

    from selectsearch.serve.client import ServeClient

    # every replica of the group slow: requests pile up at the ingress (1 running, 2 queued)
    _fault_every_replica(small, 0, 2, 0.5)
    out: list[tuple[int, Any, dict[str, str]]] = []
    lock = threading.Lock()

    def one() -> None:
        with ServeClient(small.url, timeout_s=60) as client:
            status, payload = client.request("POST", "/search", {"query": "rocket orbit", "deadline_ms": 10_000})
            with lock:
                out.append((status, payload, dict(client.last_headers)))

    try:
        threads = [threading.Thread(target=one) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        _fault_every_replica(small, 0, 2, 0.0)
    statuses = sorted(status for status, _, _ in out)
    assert len(out) == 12 and set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
    for status, payload, headers in out:
        if status == 503:  # Serve's proxy sheds it; the client reads its text as the usual JSON error
            assert payload["error"] == "overloaded" and int(headers["retry-after"]) >= 1, (payload, headers)


def test_second_replica_takes_over_when_one_dies(small: Served, serve_index: Path) -> None:
    from selectsearch.serve.client import ServeClient

    expected = SelectiveSearcher.open(serve_index).batch_search([Query(q, t) for q, t in QUERIES.items()], k=20)
    pids = set()
    for _ in range(20):
        pids.add(_replica_pid(small, 0))
        if len(pids) == 2:
            break
    assert len(pids) == 2, "two replicas should answer"
    victim = min(pids)

    def kill() -> None:
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)

    results = _load(small.url, n_clients=2, per_client=40, routes=["all"], deadline_ms=10_000, during=kill)
    assert len(results) == 80 and {s for s, _, _ in results} == {200}
    assert not [p for _, p, _ in results if p and p["partial"]], "the live replica should have answered every call"
    with ServeClient(small.url, timeout_s=60) as client:
        assert _key(client.batch_search(QUERIES, k=20)) == _key(expected)
