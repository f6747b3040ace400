"""Distributed serving: Ray Serve deployments (the default), or shard groups on Ray actors behind
a Starlette coordinator (the previous engine, kept for side-by-side benchmarks).

Pieces (each importable without Ray; Ray and the HTTP stack load on first use):

* :mod:`~selectsearch.serve.config` — :class:`ServeConfig` (placement, replication, deadlines,
  queue bounds, request limits) and the request errors with their HTTP status.
* :mod:`~selectsearch.serve.placement` — which shards each actor group hosts.
* :mod:`~selectsearch.serve.actor` — :class:`ShardGroup`, one JVM per actor process, searching
  only the shards it hosts with collection-wide BM25 statistics.
* :mod:`~selectsearch.serve.coordinator` — :class:`Coordinator`: validates, routes (in one
  thread: pyjnius is not thread-safe), fans out to the actors holding the selected shards,
  merges exactly, reranks, and names the shards that missed the deadline.
* :mod:`~selectsearch.serve.remote` — :class:`RemoteShards` (fan-out to actor replicas with
  retries) and :class:`ServeShards` (fan-out to Serve deployments), one exact merge.
* :mod:`~selectsearch.serve.deployments` — the Ray Serve application: a FastAPI ingress (typed
  models, ``/docs``, Serve's request limits as admission control), a router + merge deployment
  (a :class:`Coordinator` over :class:`ServeShards`) and one deployment per shard group.
* :mod:`~selectsearch.serve.app` — the previous engine's small ASGI app (Starlette, JSON in/out) with a bounded
  admission queue (503 + ``Retry-After`` when full) and 4xx JSON errors.
* :mod:`~selectsearch.serve.client` — :class:`ServeClient`, a keep-alive HTTP client.

Example:
    >>> from selectsearch.serve import ServeConfig
    >>> ServeConfig(route="centroid@4", shards_per_group=8).replicas
    1
"""

from __future__ import annotations

from selectsearch.serve.config import RequestError, ServeConfig, ServeError

__all__ = ["RequestError", "ServeConfig", "ServeError"]
