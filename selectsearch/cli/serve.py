"""Serve an index over HTTP: Ray Serve deployments for the HTTP ingress, the router and the shard groups.

The default engine (`--engine serve`) runs a Ray Serve application: a FastAPI ingress (typed
request and response models; the OpenAPI page at /docs), a router deployment that routes each
query and fans out only to the shard-group deployments holding the selected shards, and one
deployment per shard group (--replicas replicas, each with its own JVM, searching with
collection-wide BM25 statistics, so answers equal in-process `selectsearch search`). Serve
queues and bounds requests (--max-inflight running, --max-queue waiting, then 503 with
Retry-After), health-checks the replicas and replaces dead ones, and exports its metrics with
Ray's. A shard group that fails or misses the deadline leaves the answer partial
(`"partial": true`, `"missing_shards": [...]`). Shard groups read INDEX from a path every node
can read, or receive it from this process (--ship-index). `--engine starlette` is the previous
engine (a Starlette coordinator over Ray actors), kept for side-by-side benchmarks.

API (JSON):
  POST /search  {"query": "...", "k": 10, "route": "centroid@4", "deadline_ms": 500}
                {"queries": [{"query_id": "q1", "text": "..."}], "k": 10}
  GET  /health  every shard group pinged, and (Serve) each deployment's status
  GET  /info    index, placement, configuration
  GET  /docs    the OpenAPI page (Serve engine)
  GET  /        a search page: query box, hits, the routing decision as bars of shard scores
                (searched shards marked) and the time of each stage; /?q=TEXT&route=R&k=N runs a query
Bad requests get 4xx JSON errors ({"error", "message", "status"}); a full queue, or no shard
group able to answer, gets 503 with Retry-After. Request bodies are limited to 1 MiB.

Network: by default everything listens on 127.0.0.1 only: the HTTP proxy (--host) and the local
Ray instance this command starts (GCS, raylet, workers, agents, metrics; no dashboard), which
stops with this command, even when it is killed (a watchdog process reaps Ray's agents).

Real cluster: form it yourself on a network you trust (`ray start --head --node-ip-address=IP`
on one machine, `ray start --address=IP:6379` on the others; every node with this package
installed and INDEX at the same path, or pass --ship-index) and pass --ray IP:6379 (or --ray
auto on a node); --host 0.0.0.0 serves HTTP to other machines. On exit the application is
deleted from the cluster (and Serve shut down when no other application runs there). Ray's
ports are unauthenticated: never expose them to an untrusted network.

examples:
  selectsearch serve indexes/scifact-k16 --route centroid@4 --port 8000
  selectsearch serve indexes/sfwiki-kmeans32 --ray auto --shards-per-group 8 --replicas 2 \\
      --route cori@2 --deadline-ms 500
  curl -s localhost:8000/search -H 'Content-Type: application/json' -d '{"query": "vitamin D deficiency", "k": 5}'
  open http://127.0.0.1:8000/ in a browser for the search page
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from selectsearch.cli._common import add_router_options, parse_router_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", help="index folder (readable from every Ray node)")
    parser.add_argument("--ray", "--ray-address", dest="ray_address", metavar="ADDRESS", default=None,
                        help="Ray cluster to join ('auto', 'HOST:PORT'), formed with `ray start`; default ('local'): "
                             "start a private Ray instance listening on 127.0.0.1 only, stopped with this command")
    parser.add_argument("--engine", choices=["serve", "starlette"], default="serve",
                        help="serve: Ray Serve deployments (default); starlette: the previous Starlette "
                             "coordinator over Ray actors (kept for side-by-side benchmarks)")
    parser.add_argument("--ship-index", action="store_true",
                        help="send INDEX from this process to the nodes running shard groups (Ray runtime_env "
                             "working_dir, up to about 500 MiB) instead of reading it from a shared path "
                             "(--engine serve)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--route", default="all", help="default route when a request names none (default all)")
    parser.add_argument("--shards-per-group", type=int, default=8, help="shards hosted per shard group (default 8)")
    parser.add_argument("--placement", metavar="JSON",
                        help="explicit groups, e.g. '[[0,1,2],[3,4,5]]' (overrides --shards-per-group)")
    parser.add_argument("--replicas", type=int, default=1, help="replicas per shard group (default 1)")
    parser.add_argument("--deadline-ms", type=float, default=2000.0, help="default request deadline (default 2000)")
    parser.add_argument("--max-k", type=int, default=1000, help="largest k a request may ask for (default 1000)")
    parser.add_argument("--max-inflight", type=int, default=8, help="requests processed at once (default 8)")
    parser.add_argument("--max-queue", type=int, default=64, help="requests waiting before 503 (default 64)")
    parser.add_argument("--route-batch", type=int, default=None, metavar="N",
                        help="requests waiting for the routing thread are routed together, up to N queries per "
                             "router call (default 1024; 1: one request per call)")
    parser.add_argument("--actor-cpus", type=float, default=0.5,
                        help="CPUs reserved per shard-group replica (default 0.5)")
    parser.add_argument("--java-heap", default="1g", help="-Xmx of each shard-group replica's JVM (default 1g)")
    parser.add_argument("--header-timeout", type=float, default=10.0, metavar="S",
                        help="seconds a client has to send a request line and headers (default 10; --engine starlette)")
    parser.add_argument("--body-timeout", type=float, default=10.0, metavar="S",
                        help="seconds a client has to send a request body (default 10; --engine starlette)")
    parser.add_argument("--rerank", metavar="MODEL", help="rerank the top --rerank-depth hits with this model")
    parser.add_argument("--rerank-depth", type=int, default=100, help="hits reranked (default 100)")
    add_router_options(parser)


def execute(args: argparse.Namespace) -> int:
    from selectsearch.errors import SelectSearchError
    from selectsearch.serve.config import ServeConfig

    placement = None
    if args.placement:
        try:
            placement = tuple(tuple(int(s) for s in g) for g in json.loads(args.placement))
        except (ValueError, TypeError) as exc:
            raise SelectSearchError(f"--placement {args.placement!r}: write a JSON list of shard lists, "
                                    "e.g. '[[0,1],[2,3]]'") from exc
    config = ServeConfig(route=args.route, shards_per_group=args.shards_per_group, placement=placement,
                         replicas=args.replicas, deadline_ms=args.deadline_ms, max_k=args.max_k,
                         max_inflight=args.max_inflight, max_queue=args.max_queue,
                         **({} if args.route_batch is None else {"route_batch": args.route_batch}),
                         actor_num_cpus=args.actor_cpus,
                         actor_java_heap=args.java_heap, rerank_depth=args.rerank_depth,
                         router_options=parse_router_options(args.router_options),
                         header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout)
    if args.engine == "serve":
        return _run_serve(args, config)
    if args.ship_index:
        raise SelectSearchError("--ship-index needs --engine serve")
    return _run_starlette(args, config)


def _run_serve(args: argparse.Namespace, config: Any) -> int:
    """Run the Ray Serve application until SIGINT, SIGTERM or SIGHUP; then delete it (and stop
    Serve and the local Ray instance this command started)."""
    import logging
    import signal
    import threading

    from selectsearch.errors import SelectSearchError
    from selectsearch.serve.coordinator import connect_ray

    connect_ray(args.ray_address, num_cpus=args.num_cpus, ship=args.index if args.ship_index else None)
    import ray
    from ray import serve

    for name in ("ray.serve", "ray"):  # Serve logs every deployment step at INFO on the driver
        logging.getLogger(name).setLevel(logging.WARNING)
    from selectsearch.serve.deployments import APP_NAME, build_application

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    started_serve = False
    try:
        from dataclasses import replace

        from selectsearch.index.sharded import ShardedIndex
        from selectsearch.serve.remote import place_groups

        config = replace(config, placement=place_groups(ShardedIndex.open(args.index), config))
        app = build_application(args.index, config, ship_index=args.ship_index, reranker=args.rerank)
        try:
            serve.start(http_options={"host": args.host, "port": args.port, "location": "HeadOnly"})
            started_serve = True
            serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
        except RuntimeError as exc:  # a deployment's constructor raised (index unreadable, ...)
            raise SelectSearchError(f"the serving application did not start: {str(exc)[-2000:]}") from exc
        print(f"selectsearch serve (Ray Serve): {len(config.placement)} shard groups x {config.replicas} replicas "
              f"ready ({[list(g) for g in config.placement]}); listening on http://{args.host}:{args.port} "
              "(search page at /, API docs at /docs)", file=sys.stderr)
        while not stop.wait(0.5):
            pass
    finally:  # every exit path removes the application and, when started here, Ray itself
        if started_serve:
            try:
                serve.delete(APP_NAME)
                if args.ray_address is None or not serve.status().applications:
                    serve.shutdown()
            except Exception as exc:  # the cluster is already gone: nothing left to remove
                print(f"selectsearch serve: cleaning up Serve: {type(exc).__name__}: {exc}", file=sys.stderr)
        ray.shutdown()
    return 0


def _run_starlette(args: argparse.Namespace, config: Any) -> int:
    """The previous engine: a Starlette coordinator over Ray actors (side-by-side benchmarks)."""
    reranker = None
    if args.rerank:
        from selectsearch.rerank import load_reranker

        reranker = load_reranker(args.rerank)

    import signal

    import uvicorn

    from selectsearch.serve.app import create_app, uvicorn_config
    from selectsearch.serve.coordinator import Coordinator, connect_ray

    connect_ray(args.ray_address, num_cpus=args.num_cpus)
    import ray

    coordinator = None
    try:
        coordinator = Coordinator(args.index, config, reranker=reranker)
        pings = coordinator.wait_ready()
        server = uvicorn.Server(uvicorn_config(create_app(coordinator), host=args.host, port=args.port))
        # uvicorn stops gracefully on SIGINT and SIGTERM; a closed terminal (SIGHUP) does the same
        signal.signal(signal.SIGHUP, lambda *_: setattr(server, "should_exit", True))
        print(f"selectsearch serve (starlette): {coordinator.index.n_shards} shards in {len(coordinator.groups)} "
              f"groups x {config.replicas} replicas ({sum(len(p) for p in pings)} actors ready); "
              f"listening on http://{args.host}:{args.port} (search page at /)", file=sys.stderr)
        server.run()
    finally:  # every exit path stops the actors and, when started here, the local Ray instance
        if coordinator is not None:
            coordinator.close()
        ray.shutdown()
    return 0
