"""Serve an index over HTTP from shard groups hosted by Ray actors.

The coordinator (this process) routes each query and fans out only to the actors hosting the
selected shards; each actor has its own JVM and searches its shards with collection-wide BM25
statistics, so answers equal in-process `selectsearch search`. Every Ray node must be able to
read INDEX (shared storage). A shard group that dies or misses the deadline leaves the answer
partial (`"partial": true`, `"missing_shards": [...]`) and Ray restarts it.

API (JSON):
  POST /search  {"query": "...", "k": 10, "route": "centroid@4", "deadline_ms": 500}
                {"queries": [{"query_id": "q1", "text": "..."}], "k": 10}
  GET  /health  every group's replicas and the admission queue
  GET  /info    index, placement, configuration
Bad requests get 4xx JSON errors; a full admission queue, or no shard group able to answer,
gets 503 with Retry-After. Requests are bounded: body 1 MiB (checked while reading, chunked or
not), headers within --header-timeout, body within --body-timeout.

Network: by default everything listens on loopback only — the HTTP server (--host) and the
local Ray instance this command starts (GCS, raylet, workers, agents, metrics: Ray's
single-node mode), which stops with this command, even when it is killed (a watchdog process
reaps Ray's agents). To spread shard groups over machines, form a Ray cluster yourself on a
network you trust (`ray start --head --node-ip-address=IP` on one machine, `ray start
--address=IP:6379` on the others) and pass --ray-address; pass --host 0.0.0.0 to serve HTTP
to other machines. Ray's ports are unauthenticated: never expose them to an untrusted network.

examples:
  selectsearch serve indexes/scifact-k16 --route centroid@4 --port 8000
  selectsearch serve indexes/sfwiki-kmeans32 --ray-address auto --shards-per-group 8 --replicas 2 \\
      --route cori@2 --deadline-ms 500
  curl -s localhost:8000/search -d '{"query": "vitamin D deficiency", "k": 5}'
"""

from __future__ import annotations

import argparse
import json
import sys

from selectsearch.cli._common import add_router_options, parse_router_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", help="index folder (readable from every Ray node)")
    parser.add_argument("--ray-address", default=None,
                        help="Ray cluster to join ('auto', 'HOST:PORT'), formed with `ray start`; default: start "
                             "a local Ray instance listening on 127.0.0.1 only, stopped with this command")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--route", default="all", help="default route when a request names none (default all)")
    parser.add_argument("--shards-per-group", type=int, default=8, help="shards hosted per actor group (default 8)")
    parser.add_argument("--placement", metavar="JSON",
                        help="explicit groups, e.g. '[[0,1,2],[3,4,5]]' (overrides --shards-per-group)")
    parser.add_argument("--replicas", type=int, default=1, help="actors per group (default 1)")
    parser.add_argument("--deadline-ms", type=float, default=2000.0, help="default request deadline (default 2000)")
    parser.add_argument("--max-k", type=int, default=1000, help="largest k a request may ask for (default 1000)")
    parser.add_argument("--max-inflight", type=int, default=8, help="requests processed at once (default 8)")
    parser.add_argument("--max-queue", type=int, default=64, help="requests waiting before 503 (default 64)")
    parser.add_argument("--actor-cpus", type=float, default=0.5, help="CPUs reserved per actor (default 0.5)")
    parser.add_argument("--java-heap", default="1g", help="-Xmx of each actor's JVM (default 1g)")
    parser.add_argument("--header-timeout", type=float, default=10.0, metavar="S",
                        help="seconds a client has to send a request line and headers (default 10)")
    parser.add_argument("--body-timeout", type=float, default=10.0, metavar="S",
                        help="seconds a client has to send a request body (default 10)")
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
                         max_inflight=args.max_inflight, max_queue=args.max_queue, actor_num_cpus=args.actor_cpus,
                         actor_java_heap=args.java_heap, rerank_depth=args.rerank_depth,
                         router_options=parse_router_options(args.router_options),
                         header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout)
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
        print(f"selectsearch serve: {coordinator.index.n_shards} shards in {len(coordinator.groups)} groups x "
              f"{config.replicas} replicas ({sum(len(p) for p in pings)} actors ready); "
              f"listening on http://{args.host}:{args.port}", file=sys.stderr)
        server.run()
    finally:  # every exit path stops the actors and, when started here, the local Ray instance
        if coordinator is not None:
            coordinator.close()
        ray.shutdown()
    return 0
