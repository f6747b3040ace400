"""Routers: which shards each query searches.

Example:
    >>> from selectsearch.route import parse_route
    >>> str(parse_route("centroid@2"))
    'centroid@2'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from selectsearch.errors import RouteSpecError
from selectsearch.route.base import ROUTERS, Router, RouteSpec, parse_route, rank_by_scores
from selectsearch.types import Qrels

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["ROUTERS", "RouteSpec", "Router", "make_router", "options_for", "parse_route", "rank_by_scores"]


def options_for(router: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options one router's factory gets: plain keys go to every router, ``NAME.key`` only to
    router ``NAME`` (prefix removed) — so one evaluation can pass ``distilled.model=DIR`` without
    ``mico@m`` refusing an option it does not know.

    Example:
        >>> options_for("distilled", {"distilled.model": "m/", "mico.mico_model": "x/", "depth": 30})
        {'model': 'm/', 'depth': 30}
    """
    out: dict[str, Any] = {}
    for key, value in options.items():
        name, dot, rest = key.partition(".")
        if not dot:
            out[key] = value
        elif name == router:
            out[rest] = value
    return out


def make_router(spec: RouteSpec | str, index: ShardedIndex, *, qrels: Qrels | None = None, seed: int = 0,
                **options: Any) -> Router:
    """The router a spec names, set up for ``index``.

    Raises:
        RouteSpecError: unknown router, or one the index cannot serve (e.g. ``centroid`` on a
            random partition).
    """
    from selectsearch.route import simple

    spec = parse_route(spec) if isinstance(spec, str) else spec
    if spec.name == "all":
        return simple.ExhaustiveRouter(index.n_shards)
    if spec.name == "random":
        return simple.RandomRouter(index.n_shards, seed=seed)
    if spec.name == "centroid":
        space = index.partition.query_space()
        if space is None:
            raise RouteSpecError(
                f"'centroid' needs a partition with centroids; {index.path} was built with "
                f"{index.manifest['partition']['kind']!r} — use random@m/all or rebuild with --partitioner kmeans"
            )
        return simple.CentroidRouter(space)
    if spec.name == "oracle":
        return simple.OracleRouter(qrels or {}, index.shard_of_doc, index.shard_sizes)
    target = ROUTER_FACTORIES.get(spec.name)
    if target is None:
        raise RouteSpecError(f"router {spec.name!r} is not available in this version")
    import importlib

    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise RouteSpecError(f"router {spec.name!r} is not available in this version ({exc})") from exc
    router: Router = getattr(module, function)(spec, index, qrels=qrels, seed=seed, **options_for(spec.name, options))
    return router


#: routers implemented in their own modules: name -> "module:factory". A factory is called as
#: ``factory(spec, index, *, qrels, seed, **options)`` and returns a :class:`Router`.
ROUTER_FACTORIES: dict[str, str] = {
    "redde": "selectsearch.route.sample:make_sample_router",
    "ranks": "selectsearch.route.sample:make_sample_router",
    "taily": "selectsearch.route.stats:make_stats_router",
    "cori": "selectsearch.route.stats:make_stats_router",
    "mico": "selectsearch.route.mico:make_mico_router",
    "distilled": "selectsearch.route.distilled:make_distilled_router",
    "hybrid": "selectsearch.route.hybrid:make_hybrid_router",
    "knn": "selectsearch.route.knn:make_knn_router",
}
