"""Route concurrent requests together: one router call for all the requests waiting.

The coordinator routes on one thread (routers may call into the JVM, and one router object
serialises its calls anyway). A request that arrives while that thread is busy waits; when the
thread is free it takes *every* waiting request of the same route and routes their queries in
one call, then hands each request its own rows. Nothing is held back to wait for company: at
low load a request is routed alone and at once, as before; under load the per-call costs of
routing (numpy calls, the crossing into Java, the encoder's set-up: most of a routed query's
0.3-0.4 ms with ``hybrid@2``, against 0.08 ms per query in a batch;
``eval/results/routing/cost-sfwiki32.md``) are shared by the requests that queued behind each
other (``eval/routing/coalesce.py`` measures it).

Answers are those of routing each request alone: routers score every query on its own, and the
one difference is float rounding in a batched product (``knn``'s similarities to the logged
queries, about 1e-7), which can only swap two shards whose scores tie to that precision. A
router call that fails with several requests in it is made again for each request alone, so
that an error is given to the request that caused it, not to its neighbours. A request's trace
gives the routing time per query of the call it was routed in; its wait for the thread is not
routing, and shows in the request's total time only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from selectsearch.route.base import RouteSpec
from selectsearch.types import Query

__all__ = ["MAX_COALESCED_QUERIES", "RouteCoalescer", "Routed"]

#: most queries routed in one call (requests are taken whole, in arrival order; a larger request
#: is routed alone)
MAX_COALESCED_QUERIES = 1024

#: what a route function returns for a batch: each query's shards, routing ms per query, and the
#: router's ``(n, K)`` shard scores (``None`` for a router without scores)
Routed = tuple[list[list[int]], float, "np.ndarray | None"]


@dataclass
class _Waiting:
    queries: list[Query]
    spec: RouteSpec
    future: asyncio.Future[Routed]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[Routed], result: Routed | None, error: BaseException | None) -> None:
    if future.done():  # the request was cancelled (its client left) meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


def _deliver(waiting: _Waiting, result: Routed | None, error: BaseException | None) -> None:
    """Hand a request its routing (or error) on its own event loop, from the routing thread."""
    with contextlib.suppress(RuntimeError):  # its event loop is closed: nobody waits for it any more
        waiting.loop.call_soon_threadsafe(_settle, waiting.future, result, error)


class RouteCoalescer:
    """Runs ``route(queries, spec)`` on one thread, for every waiting request of a route at once.

    Args:
        route: routes a batch of queries (the coordinator's ``_route``).
        max_queries: most queries per call (:data:`MAX_COALESCED_QUERIES`).

    Attributes:
        calls: router calls made so far; ``requests``: requests routed (``requests / calls`` is
            the mean number of requests per call).
    """

    def __init__(self, route: Callable[[Sequence[Query], RouteSpec], Routed], *,
                 max_queries: int = MAX_COALESCED_QUERIES) -> None:
        self._route = route
        self.max_queries = max(1, int(max_queries))
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="selectsearch-route")
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._draining = False
        self.calls = 0
        self.requests = 0

    async def route(self, queries: Sequence[Query], spec: RouteSpec) -> Routed:
        """The routing of ``queries`` by ``spec``: as ``route(queries, spec)`` returns it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Routed] = loop.create_future()
        with self._lock:
            self._waiting.append(_Waiting(list(queries), spec, future, loop))
            start, self._draining = not self._draining, True
        if start:
            self._pool.submit(self._drain)
        return await future

    def close(self) -> None:
        """Stop the routing thread (requests still waiting are not answered)."""
        self._pool.shutdown(wait=False)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    self._draining = False
                    return
                batch = self._take()
            try:
                self._route_together(batch)
            except BaseException as exc:  # never leave a request waiting, nor the routing thread stopped
                for w in batch:
                    _deliver(w, None, exc)

    def _take(self) -> list[_Waiting]:
        """The first waiting request and every later one of the same route, up to
        :attr:`max_queries` queries (called under the lock)."""
        first = self._waiting[0]
        batch, rest, n = [first], [], len(first.queries)
        for w in self._waiting[1:]:
            if w.spec == first.spec and n + len(w.queries) <= self.max_queries:
                batch.append(w)
                n += len(w.queries)
            else:
                rest.append(w)
        self._waiting = rest
        return batch

    def _route_together(self, batch: list[_Waiting]) -> None:
        queries = [q for w in batch for q in w.queries]
        try:
            selected, route_ms, scores = self._route(queries, batch[0].spec)
        except Exception as exc:
            if len(batch) > 1:  # each alone: the error goes to the request that causes it
                for w in batch:
                    self._route_together([w])
                return
            _deliver(batch[0], None, exc)
            return
        self.calls += 1
        self.requests += len(batch)
        start = 0
        for w in batch:
            end = start + len(w.queries)
            part: Any = (selected[start:end], route_ms, None if scores is None else scores[start:end])
            _deliver(w, part, None)
            start = end
