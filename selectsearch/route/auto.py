"""``auto``: the route to use when you do not want to choose one.

``--route auto`` works on any index and picks, when the router is built:

- the index's **tuned fused router with a per-query budget** (``hybrid@auto``: the weights and
  per-query gating ``selectsearch tune-route`` stored in ``INDEX/routing.json``, and the shard
  probabilities calibrated there), when the index has been tuned on search logs;
- otherwise **CORI with a per-query budget** (``cori@auto``). CORI needs nothing but the index's
  term statistics, and of the classic routers it was the best at equal documents scored on every
  collection and shift setting measured here (``eval/results/routing/shift-*.md``). Without logs
  there is no calibration, so its cut-off uses the uncalibrated per-query z-scores
  (:data:`~selectsearch.route.budget.FALLBACK`), which errs towards more shards.

Options (``--router-option auto.KEY=VALUE``): ``target`` (coverage target, default
:data:`~selectsearch.route.budget.DEFAULT_TARGET`) and ``max_shards`` (default half the shards).
Each query's trace records what ``auto`` resolved to (``trace.extra["route"]["resolved"]``), with
the fusion weights the tuned router used.

Example:
    >>> from selectsearch.route import parse_route
    >>> parse_route("auto")
    RouteSpec(name='auto', budget=None, budgets=(), auto=None)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.route.base import AutoBudget, Router
from selectsearch.types import EncodedQueries, Qrels, Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route.budget import AutoBudgetRouter

__all__ = ["AutoRoute", "make_auto_route"]

log = logging.getLogger(__name__)

#: the classic router ``auto`` falls back to on an index without tuned routing
UNTUNED = "cori"


class AutoRoute(Router):
    """The router ``auto`` resolved to (an :class:`~selectsearch.route.budget.AutoBudgetRouter`),
    under the name ``auto``; ``resolved`` says which (``hybrid@auto:0.9/8``, ``cori@auto``)."""

    name = "auto"

    def __init__(self, inner: AutoBudgetRouter, resolved: str) -> None:
        self.inner = inner
        self.resolved = resolved
        self.n_shards = inner.n_shards
        self._batch = 0

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        self._batch = len(queries)
        return self.inner.rank(queries)

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        return self.inner.scores(queries)

    def cutoffs(self, queries: Sequence[Query]) -> np.ndarray | None:
        return self.inner.cutoffs(queries)

    def last_scores(self, queries: Sequence[Query]) -> np.ndarray | None:
        return self.inner.last_scores(queries)

    def encoded_queries(self) -> EncodedQueries | None:
        return self.inner.encoded_queries()

    def offer_encoded(self, encoded: EncodedQueries | None) -> None:
        self.inner.offer_encoded(encoded)

    def route_details(self) -> list[dict[str, Any]] | None:
        details = self.inner.route_details()
        if details is None:
            return [{"resolved": self.resolved} for _ in range(self._batch)]
        return [{"resolved": self.resolved, **detail} for detail in details]


def make_auto_route(index: ShardedIndex, *, qrels: Qrels | None = None, seed: int = 0,
                    fused_defaults: Mapping[str, Any] | None = None, target: float | None = None,
                    max_shards: int | None = None) -> AutoRoute:
    """The ``auto`` route for ``index`` (factory called by :func:`selectsearch.route.make_router`).

    Raises:
        RouteSpecError: a bad target or maximum, or a tuned routing that cannot be built (the
            message says why, e.g. its logs folder moved).
    """
    from selectsearch.route import make_router, parse_route
    from selectsearch.route.budget import make_auto_router
    from selectsearch.route.routing_file import read_routing

    budget = AutoBudget(None if target is None else float(target), None if max_shards is None else int(max_shards))
    tuned = read_routing(index.path)
    if tuned is not None and "hybrid" in tuned.get("calibration", {}):
        router = make_router(parse_route("hybrid@1"), index, qrels=qrels, seed=seed, **dict(fused_defaults or {}))
        name = "hybrid"
    else:
        log.info("route auto on %s: no tuned routing (routing.json with a calibration), so %s@auto on term "
                 "statistics; `selectsearch tune-route` learns a better one from search logs", index.path, UNTUNED)
        router = make_router(parse_route(f"{UNTUNED}@1"), index, qrels=qrels, seed=seed)
        name = UNTUNED
    wrapped = make_auto_router(router, budget, index, warn=name == "hybrid")
    resolved = f"{name}@auto:{wrapped.target:g}/{wrapped.max_shards}"
    return AutoRoute(wrapped, resolved)
