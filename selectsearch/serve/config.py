"""Serving configuration and the errors requests can raise.

:class:`ServeConfig` is a frozen dataclass: it is recorded in ``/info`` and never mutated by a
request. :class:`RequestError` carries the HTTP status the app answers with (4xx for a bad
request, 503 when the admission queue is full).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from selectsearch.errors import SelectSearchError
from selectsearch.serve.coalesce import MAX_COALESCED_QUERIES

__all__ = ["RequestError", "ServeConfig", "ServeError"]


class ServeError(SelectSearchError):
    """A serving set-up problem (bad configuration, Ray missing, cluster unreachable)."""


class RequestError(ServeError):
    """A request that cannot be served; ``status`` is the HTTP status to answer with.

    ``code`` is a short machine-readable reason (``empty_query``, ``k_out_of_range``,
    ``unknown_route``, ``overloaded`` ...).
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = int(status)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": code, "message": ...}``."""
        return {"error": self.code, "message": self.message, "status": self.status}


@dataclass(frozen=True)
class ServeConfig:
    """How an index is served.

    Args:
        route: default route spec when a request names none (e.g. ``"centroid@4"``).
        shards_per_group: shards hosted by one actor group (a group = one actor per replica).
        placement: explicit groups, e.g. ``((0, 1), (2, 3))``; overrides ``shards_per_group``.
        replicas: actors per group; a query goes to one replica, another is tried on failure.
        deadline_ms: default time budget of a request (routing + fan-out + merge). Groups that
            have not answered by then are reported as missing; the request still returns.
        max_k: largest ``k`` a request may ask for.
        max_batch: most queries in one request.
        max_query_chars: longest query text accepted.
        max_inflight: requests processed concurrently (Ray Serve: the router's
            ``max_ongoing_requests``; Starlette: the coordinator's admission slots).
        max_queue: requests allowed to wait for a slot; beyond that 503 with ``Retry-After``
            (Ray Serve: the router's ``max_queued_requests``).
        actor_max_pending: calls queued per shard-group actor before Ray refuses more
            (Ray Serve: a shard-group replica's ``max_ongoing_requests``).
        actor_num_cpus: CPUs reserved per actor in the Ray scheduler.
        actor_java_heap: ``-Xmx`` of each actor's JVM (postings are memory-mapped, off-heap).
        route_batch: most queries routed in one router call: requests waiting for the routing
            thread are routed together up to this many queries (requests are taken whole;
            1: one request per call). See :mod:`selectsearch.serve.coalesce`.
        max_restarts: times Ray restarts a dead actor (-1: forever).
        spread: place actors with Ray's ``SPREAD`` strategy (over nodes) instead of packing.
        rerank_depth: hits handed to the reranker, when one is configured.
        retry_cooldown_s: a replica that failed is skipped for this long when another exists.
        router_options: extra options for the router factories (e.g. ``mico_model``).
        header_timeout_s: (Starlette engine) a client has this long, from connecting (or from the first byte of its
            next request on a kept-alive connection), to send a request's line and headers;
            then the server answers 408 and closes the connection.
        body_timeout_s: time allowed to receive a whole request body, from the end of its
            headers; then 408 and the connection is closed.
        max_header_bytes: largest request line + headers accepted (431 and close beyond).

    Example:
        >>> ServeConfig(shards_per_group=4, replicas=2).deadline_ms
        2000.0
    """

    route: str = "all"
    shards_per_group: int = 8
    placement: tuple[tuple[int, ...], ...] | None = None
    replicas: int = 1
    deadline_ms: float = 2000.0
    max_k: int = 1000
    max_batch: int = 64
    max_query_chars: int = 4096
    max_inflight: int = 8
    max_queue: int = 64
    actor_max_pending: int = 256
    actor_num_cpus: float = 0.5
    actor_java_heap: str = "1g"
    max_restarts: int = -1
    route_batch: int = MAX_COALESCED_QUERIES
    spread: bool = True
    rerank_depth: int = 100
    retry_cooldown_s: float = 1.0
    router_options: dict[str, Any] = field(default_factory=dict)
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    max_header_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        checks = [
            (self.shards_per_group >= 1, "shards_per_group must be at least 1"),
            (self.replicas >= 1, "replicas must be at least 1"),
            (self.deadline_ms > 0, "deadline_ms must be positive"),
            (self.max_k >= 1, "max_k must be at least 1"),
            (self.max_batch >= 1, "max_batch must be at least 1"),
            (self.max_query_chars >= 1, "max_query_chars must be at least 1"),
            (self.max_inflight >= 1, "max_inflight must be at least 1"),
            (self.max_queue >= 0, "max_queue must be 0 or more"),
            (self.actor_max_pending >= 1, "actor_max_pending must be at least 1"),
            (self.actor_num_cpus >= 0, "actor_num_cpus must be 0 or more"),
            (self.rerank_depth >= 1, "rerank_depth must be at least 1"),
            (self.route_batch >= 1, "route_batch must be at least 1"),
            (self.header_timeout_s > 0, "header_timeout_s must be positive"),
            (self.body_timeout_s > 0, "body_timeout_s must be positive"),
            (self.max_header_bytes >= 1024, "max_header_bytes must be at least 1024"),
        ]
        for ok, message in checks:
            if not ok:
                raise ServeError(f"invalid serve configuration: {message}")

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable view (for ``/info`` and benchmark records)."""
        out = asdict(self)
        out["placement"] = [list(g) for g in self.placement] if self.placement else None
        return out
