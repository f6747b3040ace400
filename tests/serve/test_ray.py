"""Serving on a local Ray cluster (head + 2 workers on loopback): exact results for every router,
faults (a shard actor killed mid-load, a shard actor too slow), malformed HTTP requests,
back-pressure, replication, and a bounded load test.

Runs only in a loopback-only network namespace (see conftest.py); ``make test`` does that.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from selectsearch.data import load_qrels
from selectsearch.search import SelectiveSearcher
from selectsearch.serve.config import ServeConfig
from selectsearch.types import Query

from .conftest import QUERIES

#: every router that needs no trained model (mico/distilled go through the same make_router)
ROUTES = ["all", "random@2", "centroid@1", "centroid@3", "redde@2", "ranks@1", "ranks", "taily@2", "taily",
          "cori@1", "cori@4", "oracle@2"]


@pytest.fixture(scope="module")
def coordinator(ray_cluster: Any, serve_index: Path, serve_beir: Path) -> Iterator[Any]:
    from selectsearch.serve.coordinator import Coordinator

    config = ServeConfig(route="centroid@2", shards_per_group=2, actor_num_cpus=0.25, actor_java_heap="256m",
                         deadline_ms=20_000, retry_cooldown_s=0.2)
    coord = Coordinator(serve_index, config, qrels=load_qrels(serve_beir, split="test"))
    pings = coord.wait_ready(120)
    assert len(pings) == 3 and {len({p["pid"] for p in row}) for row in pings} == {1}
    yield coord
    coord.close()


@pytest.fixture(scope="module")
def server(coordinator: Any) -> Iterator[Any]:
    from selectsearch.serve.app import BackgroundServer, create_app

    with BackgroundServer(create_app(coordinator, max_inflight=8, max_queue=64)) as srv:
        yield srv


def _key(results: dict[str, Any]) -> dict[str, Any]:
    return {qid: ([tuple(h) for h in r.hits], r.trace.shards) for qid, r in results.items()}


def test_results_through_ray_equal_in_process_for_every_router(coordinator: Any, serve_index: Path,
                                                               serve_beir: Path) -> None:
    qrels = load_qrels(serve_beir, split="test")
    base = SelectiveSearcher.open(serve_index)
    queries = [Query(q, t) for q, t in QUERIES.items()]
    for route in ROUTES:
        local = base.with_route(route, qrels=qrels)
        for k in (3, 50):
            expected = local.batch_search(queries, k=k)
            got = coordinator.batch_search(queries, k=k, route=route)
            assert _key(got) == _key(expected), (route, k)
            assert all(not r.trace.missing_shards for r in got.values())
            # only the groups holding selected shards were asked
            for r in got.values():
                assert r.trace.extra["groups"] == sorted({coordinator._group_of[s] for s in r.trace.shards})
    # ties: the duplicated documents score equally and come back ordered by doc id
    hits = coordinator.search("planet orbit", k=200, route="all")
    dups = [h for h in hits if h.doc_id.startswith("dup-")]
    assert [h.doc_id for h in dups] == sorted(h.doc_id for h in dups) and len({h.score for h in dups}) == 1


def _post(server: Any, body: Any, raw: bytes | None = None, method: str = "POST", path: str = "/search"
          ) -> tuple[int, dict[str, Any], dict[str, str]]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = json.loads(response.read())
    headers = {k.lower(): v for k, v in response.getheaders()}
    conn.close()
    return response.status, payload, headers


#: malformed requests and the JSON error each must get (both engines answer the same)
MALFORMED = [
    (None, b"{not json", "POST", "/search", 400, "invalid_json"),
    (None, b"", "POST", "/search", 400, "invalid_json"),
    ([1, 2], None, "POST", "/search", 400, "invalid_body"),
    ({"query": ""}, None, "POST", "/search", 422, "empty_query"),
    ({"query": "   "}, None, "POST", "/search", 422, "empty_query"),
    ({"queries": []}, None, "POST", "/search", 422, "empty_batch"),
    ({"query": "rocket", "k": 0}, None, "POST", "/search", 422, "k_out_of_range"),
    ({"query": "rocket", "k": 10**6}, None, "POST", "/search", 422, "k_out_of_range"),
    ({"query": "rocket", "route": "bogus@2"}, None, "POST", "/search", 422, "unknown_route"),
    ({"query": "rocket", "route": "centroid@1:3"}, None, "POST", "/search", 422, "unknown_route"),
    ({"query": "rocket", "route": "centroid@x"}, None, "POST", "/search", 422, "unknown_route"),
    ({"query": "rocket", "deadline_ms": -5}, None, "POST", "/search", 422, "bad_deadline"),
    ({"query": "rocket", "limit": 3}, None, "POST", "/search", 422, "unknown_field"),
    ({"query": "x" * 5000}, None, "POST", "/search", 422, "query_too_long"),
    (None, b"[" + b" " * (1 << 20) + b"]", "POST", "/search", 413, "body_too_large"),
    (None, None, "GET", "/search", 405, "method_not_allowed"),
    (None, None, "GET", "/nowhere", 404, "not_found"),
]


@pytest.mark.parametrize(("body", "raw", "method", "path", "status", "code"), MALFORMED)
def test_malformed_http_requests_get_4xx_json(server: Any, body: Any, raw: bytes | None, method: str, path: str,
                                              status: int, code: str) -> None:
    got, payload, headers = _post(server, body, raw, method, path)
    assert got == status and payload["error"] == code and payload["message"]
    assert headers["content-type"].startswith("application/json")


def test_http_answers_equal_the_coordinator_and_client(server: Any, coordinator: Any) -> None:
    from selectsearch.serve.client import ServeClient

    expected = coordinator.batch_search(QUERIES, k=10, route="cori@2")
    with ServeClient(server.url) as client:
        for qid, text in QUERIES.items():
            result = client.search(text, k=10, route="cori@2")
            assert [tuple(h) for h in result.hits] == [tuple(h) for h in expected[qid].hits]
            assert result.trace.missing_shards == [] and "queue" in result.trace.timings_ms
        batch = client.batch_search(QUERIES, k=10, route="cori@2")
        assert _key(batch) == _key(expected)
        info = client.info()
        assert info["groups"] == [list(g) for g in coordinator.groups] and info["default_route"] == "centroid@2"
        health = client.health()
        assert health["ok"] and all(g["ok"] for g in health["groups"])


def _load(url: str, n_clients: int, per_client: int, routes: list[str], k: int = 10, deadline_ms: float | None = None,
          during: Any = None) -> list[tuple[int, dict[str, Any] | None, str]]:
    """``n_clients`` threads each sending ``per_client`` requests; returns (status, payload, route)."""
    from selectsearch.serve.client import ServeClient

    texts = list(QUERIES.values())
    out: list[tuple[int, dict[str, Any] | None, str]] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        mine = []
        with ServeClient(url, timeout_s=60) as cl:
            for i in range(per_client):
                route = routes[(c + i) % len(routes)]
                body: dict[str, Any] = {"query": texts[(c * 7 + i) % len(texts)], "k": k, "route": route}
                if deadline_ms is not None:
                    body["deadline_ms"] = deadline_ms
                try:
                    status, payload = cl.request("POST", "/search", body)
                except Exception as exc:  # counted as an error
                    status, payload = -1, {"error": repr(exc)}
                mine.append((status, payload, route))
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(n_clients)]
    for t in threads:
        t.start()
    if during is not None:
        during()
    for t in threads:
        t.join(180)
        assert not t.is_alive(), "a load-test client hung"
    return out


def test_search_page_in_a_browser(server: Any, serve_index: Path, chromium: str) -> None:
    """The search page (GET /) over the Starlette engine on Ray: typed queries and ``/?q=...``
    show the hits and the routing chart of in-process search."""
    from .test_page import check_typing, check_url_query

    check_typing(chromium, server.url + "/", serve_index, "centroid@2")
    check_url_query(chromium, server.url + "/", serve_index)


def test_killed_shard_actor_loses_no_request_and_comes_back(server: Any, coordinator: Any) -> None:
    import ray

    victim = 1
    handle = coordinator.replicas[victim][0].handle
    old_pid = ray.get(handle.ping.remote())["pid"]
    victim_shards = set(coordinator.groups[victim])

    def kill() -> None:
        time.sleep(0.3)
        coordinator.inject_fault(victim, 0, crash=True)

    results = _load(server.url, n_clients=16, per_client=25, routes=["all", "cori@3", "centroid@2"],
                    deadline_ms=5000, during=kill)
    assert len(results) == 400
    # answered: 200 (full or flagged partial), or 503 when every group a request needed was the dead one
    assert {status for status, _, _ in results} <= {200, 503}, {s for s, _, _ in results}
    for status, p, route in results:
        assert status == 200 or (route != "all" and p is not None and p["error"] == "unavailable"), (status, p)
    partial = [p for s, p, _ in results if s == 200 and p and p["partial"]]
    assert partial, "the kill should have cost some requests their group's shards"
    for p in partial:
        assert p is not None and set(p["missing_shards"]) <= victim_shards
        assert set(p["missing_shards"]) == set(p["trace"]["shards"]) & victim_shards
        assert p["trace"]["extra"]["failures"][str(victim)]
    # the actor is restarted by Ray and serves full answers again
    t = time.monotonic()
    while True:
        try:
            ping = ray.get(handle.ping.remote(), timeout=10)
            break
        except Exception:
            assert time.monotonic() - t < 90, "the shard actor did not come back"
            time.sleep(0.5)
    assert ping["pid"] != old_pid
    time.sleep(0.3)  # past the retry cool-down
    full = coordinator.batch_search(QUERIES, k=10, route="all")
    assert all(not r.trace.missing_shards for r in full.values())


def test_slow_shard_actor_misses_the_deadline_but_the_query_returns(coordinator: Any) -> None:
    import ray

    slow = 2
    ray.get(coordinator.inject_fault(slow, 0, delay_s=3.0))
    try:
        t = time.perf_counter()
        out = coordinator.batch_search(QUERIES, k=10, route="all", deadline_ms=400)
        elapsed = time.perf_counter() - t
        assert elapsed < 2.0
        for r in out.values():
            assert r.trace.missing_shards == sorted(coordinator.groups[slow])
            assert not {h.shard_id for h in r.hits} & set(coordinator.groups[slow])
            assert "deadline" in r.trace.extra["failures"][str(slow)][0]
    finally:
        ray.get(coordinator.inject_fault(slow, 0, delay_s=0.0), timeout=30)
    assert all(not r.trace.missing_shards for r in coordinator.batch_search(QUERIES, k=10, route="all").values())


def test_one_failing_query_fails_alone_and_no_replica_is_marked_down(server: Any, coordinator: Any) -> None:
    """Issue 17 item 8: a query that raises in the shard groups (here an injected fault; in the
    field Lucene's TooManyClauses) gets its own error; the other queries of its batch keep their
    exact answers, and no replica is counted as failed (before: the whole group call failed,
    every query of the batch lost that group's shards and the replica was marked down)."""
    import ray

    poison = "poison pill query"
    expected = coordinator.batch_search(QUERIES, k=10, route="all")
    failures = [[r.failures for r in row] for row in coordinator.replicas]
    ray.get([coordinator.inject_fault(g, 0, fail_text=poison) for g in range(len(coordinator.groups))])
    try:
        batch = [{"query_id": qid, "text": text} for qid, text in QUERIES.items()]
        batch.insert(3, {"query_id": "bad", "text": poison})
        status, payload, _ = _post(server, {"queries": batch, "k": 10, "route": "all"})
        assert status == 200 and payload["errors"] == 1 and not payload["partial"]
        by_id = {r["query_id"]: r for r in payload["results"]}
        assert by_id["bad"]["hits"] == [] and by_id["bad"]["error"]["error"] == "search_failed"
        for qid, result in expected.items():
            assert [(h["doc_id"], h["score"]) for h in by_id[qid]["hits"]] == [(h.doc_id, h.score) for h in result.hits]
            assert "error" not in by_id[qid] and by_id[qid]["missing_shards"] == []
        status, payload, _ = _post(server, {"query": poison, "route": "all"})
        assert status == 500 and payload["error"] == "search_failed" and "injected" in payload["message"]
    finally:
        ray.get([coordinator.inject_fault(g, 0) for g in range(len(coordinator.groups))], timeout=30)
    assert [[r.failures for r in row] for row in coordinator.replicas] == failures
    assert all(r.down_until == 0.0 for row in coordinator.replicas for r in row)
    # a query with more distinct terms than Lucene's default clause limit (1,024): answered, or
    # refused alone with 422 — never a batch emptied or replicas marked down
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    long_query = " ".join(a + b for a in alphabet for b in alphabet) + " rocket"  # 1,297 words, ~20 stopwords
    assert len(long_query) <= ServeConfig().max_query_chars
    status, payload, _ = _post(server, {"queries": [{"query_id": "long", "text": long_query},
                                                    {"query_id": "q1", "text": QUERIES["q1"]}], "route": "all"})
    assert status == 200
    by_id = {r["query_id"]: r for r in payload["results"]}
    assert [h["doc_id"] for h in by_id["q1"]["hits"]] == [h.doc_id for h in expected["q1"].hits]
    assert "error" not in by_id["long"] or by_id["long"]["error"]["error"] == "too_many_terms"
    assert all(r.down_until == 0.0 for row in coordinator.replicas for r in row)


def test_no_group_answering_gives_503_with_retry_after(server: Any, coordinator: Any) -> None:
    """Issue 17 item 18: before, a request none of whose groups answered got 200 with 0 hits."""
    import ray

    groups = range(len(coordinator.groups))
    ray.get([coordinator.inject_fault(g, 0, delay_s=1.5) for g in groups])
    try:
        status, payload, headers = _post(server, {"query": QUERIES["q1"], "route": "all", "deadline_ms": 200})
        assert status == 503 and payload["error"] == "unavailable" and "deadline" in payload["message"]
        assert int(headers["retry-after"]) >= 1
    finally:
        ray.get([coordinator.inject_fault(g, 0, delay_s=0.0) for g in groups], timeout=60)
    out = coordinator.batch_search(QUERIES, k=10, route="all")
    assert all(not r.trace.missing_shards and r.hits for r in out.values())


def test_full_admission_queue_answers_503_not_unbounded_growth(coordinator: Any) -> None:
    import ray

    from selectsearch.serve.app import BackgroundServer, create_app

    ray.get(coordinator.inject_fault(0, 0, delay_s=0.3))
    try:
        with BackgroundServer(create_app(coordinator, max_inflight=1, max_queue=2)) as srv:
            results = _load(srv.url, n_clients=12, per_client=1, routes=["all"], deadline_ms=10_000)
    finally:
        ray.get(coordinator.inject_fault(0, 0, delay_s=0.0), timeout=30)
    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 1 and statuses.count(503) >= 1
    assert all(p is not None and p["error"] == "overloaded" for s, p, _ in results if s == 503)


def test_replica_takes_over_when_one_dies(ray_cluster: Any, serve_index: Path) -> None:
    import ray

    from selectsearch.serve.coordinator import Coordinator

    config = ServeConfig(route="all", shards_per_group=6, replicas=2, actor_num_cpus=0.25, actor_java_heap="256m",
                         deadline_ms=20_000)
    coord = Coordinator(serve_index, config)
    try:
        coord.wait_ready(120)
        expected = coord.batch_search(QUERIES, k=20)
        ray.get(coord.inject_fault(0, 0, delay_s=0.0))
        coord.inject_fault(0, 0, crash=True)
        for _ in range(6):  # round-robin reaches the dead replica; the other one answers
            out = coord.batch_search(QUERIES, k=20)
            assert _key(out) == _key(expected)
            assert all(not r.trace.missing_shards for r in out.values())
    finally:
        coord.close()


def test_bounded_load_2000_requests_16_clients_zero_errors(server: Any, coordinator: Any) -> None:
    t = time.perf_counter()
    results = _load(server.url, n_clients=16, per_client=125, routes=["centroid@2", "cori@2", "redde@2", "all"])
    elapsed = time.perf_counter() - t
    assert len(results) == 2000
    errors = [(s, p) for s, p, _ in results if s != 200 or p is None or p["partial"]]
    assert errors == []
    assert elapsed < 150


@pytest.mark.parametrize("extra", [[], ["--ship-index"], ["--engine", "starlette"]],
                         ids=["serve", "serve-ship-index", "starlette"])
def test_serve_command_joins_the_cluster_and_answers(ray_cluster: Any, serve_index: Path, extra: list[str]) -> None:
    """`selectsearch serve --ray ADDRESS` on each engine; with --ship-index the shard groups open
    the copy of the index the command uploaded, not its folder."""
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    from selectsearch.serve.client import ServeClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "selectsearch", "-q", "serve", str(serve_index), "--ray-address",
                             ray_cluster.address, "--port", str(port), "--shards-per-group", "6", "--actor-cpus",
                             "0.25", "--java-heap", "256m", "--route", "centroid@2", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        client = ServeClient(f"http://127.0.0.1:{port}", timeout_s=10)
        t = time.monotonic()
        while True:
            try:
                if client.health().get("ok"):
                    break
            except Exception:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() - t < 90, "selectsearch serve did not come up"
            time.sleep(0.5)
        expected = SelectiveSearcher.open(serve_index, route="centroid@2").search(QUERIES["q2"], k=5)
        assert client.search(QUERIES["q2"], k=5).hits == expected
        assert client.info()["groups"] == [[0, 1, 2, 3, 4, 5]]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:  # the search page
            assert page.headers["content-type"].startswith("text/html") and b'id="search-form"' in page.read()
        opened = {r.get("index") for g in client.health()["groups"] for r in g["replicas"]}
        if "--ship-index" in extra:
            assert opened and str(serve_index.resolve()) not in opened, opened
        elif "--engine" not in extra:
            assert opened == {str(serve_index.resolve())}
        client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
