"""Requests waiting for the routing thread are routed together, each answered with its own rows."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from selectsearch.route import parse_route
from selectsearch.route.base import RouteSpec
from selectsearch.serve.coalesce import RouteCoalescer, Routed
from selectsearch.types import Query

CORI = parse_route("cori@2")
CENTROID = parse_route("centroid@2")


class Recorder:
    """A route function: shards from each query's id and text (the same alone or in any batch); the first
    call waits for ``release`` so that requests pile up behind it."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[list[str], str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, queries: Sequence[Query], spec: RouteSpec) -> Routed:
        self.calls.append(([q.query_id for q in queries], str(spec)))
        if len(self.calls) == 1:
            self.started.set()
            assert self.release.wait(10)
        if self.fail_on is not None and any(q.text == self.fail_on for q in queries):
            raise ValueError(f"cannot route {self.fail_on!r}")
        keys = [sum(map(ord, q.query_id + q.text)) for q in queries]  # a query's own shards, whatever the batch
        scores = np.array([[k % 5, k % 3] for k in keys], dtype=np.float64)
        return [[k % 97, k % 89] for k in keys], 0.1, scores


async def _concurrent(coalescer: RouteCoalescer, recorder: Recorder,
                      requests: list[tuple[list[Query], RouteSpec]]) -> list[Routed | BaseException]:
    """The first request starts routing; the others arrive while it runs, then it is released."""
    first = asyncio.create_task(coalescer.route(*requests[0]))
    await asyncio.get_running_loop().run_in_executor(None, recorder.started.wait, 10)
    rest = [asyncio.create_task(coalescer.route(*r)) for r in requests[1:]]
    await asyncio.sleep(0.05)  # every later request is waiting
    recorder.release.set()
    return list(await asyncio.gather(first, *rest, return_exceptions=True))


def _queries(prefix: str, n: int) -> list[Query]:
    return [Query(f"{prefix}{i}", "x" * (i + len(prefix))) for i in range(n)]


def test_requests_that_wait_are_routed_in_one_call_and_get_their_own_rows() -> None:
    recorder = Recorder()
    coalescer = RouteCoalescer(recorder)
    requests = [(_queries("a", 2), CORI), (_queries("b", 3), CORI), (_queries("c", 1), CENTROID),
                (_queries("d", 2), CORI)]
    try:
        out = asyncio.run(_concurrent(coalescer, recorder, requests))
    finally:
        coalescer.close()
    # the first alone (it started at once), then every waiting cori request together, then centroid
    assert recorder.calls == [(["a0", "a1"], "cori@2"), (["b0", "b1", "b2", "d0", "d1"], "cori@2"),
                              (["c0"], "centroid@2")]
    assert (coalescer.calls, coalescer.requests) == (3, 4)
    for (queries, spec), got in zip(requests, out, strict=True):
        assert not isinstance(got, BaseException)
        alone = Recorder()
        alone.started.set()
        alone.calls.append(([], ""))  # not the first call: no waiting
        want = alone(queries, spec)
        assert got[0] == want[0] and got[1] == want[1]
        assert got[2] is not None and want[2] is not None and np.array_equal(got[2], want[2])


def test_an_error_goes_to_the_request_that_causes_it_alone() -> None:
    recorder = Recorder(fail_on="poison")
    coalescer = RouteCoalescer(recorder)
    bad = [Query("p", "poison")]
    requests = [(_queries("a", 1), CORI), (_queries("b", 2), CORI), (bad, CORI), (_queries("d", 1), CORI)]
    try:
        out = asyncio.run(_concurrent(coalescer, recorder, requests))
    finally:
        coalescer.close()
    assert isinstance(out[2], ValueError) and "poison" in str(out[2])
    assert all(not isinstance(o, BaseException) and len(o[0]) == len(r[0]) for o, r in zip(out, requests, strict=True)
               if o is not out[2])
    # together first (failed), then each of the three alone
    assert [ids for ids, _ in recorder.calls[1:]] == [["b0", "b1", "p", "d0"], ["b0", "b1"], ["p"], ["d0"]]


def test_the_query_cap_splits_a_queue() -> None:
    recorder = Recorder()
    coalescer = RouteCoalescer(recorder, max_queries=3)
    requests = [(_queries("a", 1), CORI), (_queries("b", 2), CORI), (_queries("c", 2), CORI), (_queries("d", 1), CORI)]
    try:
        out = asyncio.run(_concurrent(coalescer, recorder, requests))
    finally:
        coalescer.close()
    assert all(not isinstance(o, BaseException) for o in out)
    assert [ids for ids, _ in recorder.calls] == [["a0"], ["b0", "b1", "d0"], ["c0", "c1"]]


def test_a_request_whose_event_loop_closed_does_not_stop_the_routing_thread() -> None:
    """A client that gave up (its event loop closed while it was being routed) must not leave the
    routing thread stopped: the next request is routed."""
    recorder = Recorder()
    coalescer = RouteCoalescer(recorder)

    async def give_up() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(coalescer.route(_queries("a", 1), CORI), 0.05)

    try:
        asyncio.run(give_up())  # its loop is closed when the first routing call returns
        recorder.release.set()
        out = asyncio.run(asyncio.wait_for(coalescer.route(_queries("b", 2), CORI), 10))
    finally:
        coalescer.close()
    assert len(out[0]) == 2 and [ids for ids, _ in recorder.calls] == [["a0"], ["b0", "b1"]]


@pytest.mark.integration
def test_real_routers_route_a_request_as_alone(serve_index: Path, serve_beir: Path) -> None:
    """Centroid, CORI and knn routing of requests coalesced under load: the shards each query gets
    alone (``knn``'s batched similarities may differ in the last float bits, not its choices here)."""
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import make_router

    index = ShardedIndex.open(serve_index)
    texts = ["rocket orbit launch", "flour sugar butter oven", "stock market bank loan", "cell protein gene",
             "galaxy star", "bake bread"]
    for name in ("centroid@2", "cori@3", "knn@2"):
        spec = parse_route(name)
        options = {"data": str(serve_beir), "logs": "test"} if spec.name == "knn" else {}
        router = make_router(spec, index, **options)

        def route(queries: Sequence[Query], spec: RouteSpec, router: object = router) -> Routed:
            return [list(s) for s in router.select(queries, spec.budget)], 0.0, None  # type: ignore[attr-defined]

        requests = [([Query(f"{i}", t)], spec) for i, t in enumerate(texts)]
        alone = [route(q, s)[0] for q, s in requests]
        recorder = Recorder()

        def held(queries: Sequence[Query], spec: RouteSpec, hold: Recorder = recorder,
                 route: Callable[[Sequence[Query], RouteSpec], Routed] = route) -> Routed:
            hold(queries, spec)  # the first call waits until every request is queued
            return route(queries, spec)

        coalescer = RouteCoalescer(held)
        try:
            together = asyncio.run(_concurrent(coalescer, recorder, requests))
        finally:
            coalescer.close()
        assert [r[0] for r in together if not isinstance(r, BaseException)] == alone, name
        assert coalescer.calls == 2, "the first request alone, then the five that waited together"
