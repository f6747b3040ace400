"""Routers: which shards each query searches.

Routers are named in :mod:`selectsearch.route.registry` (add your own with
:func:`register_router`); this module builds them from route specs and checks their options.

Example:
    >>> from selectsearch.route import parse_route
    >>> str(parse_route("centroid@2"))
    'centroid@2'
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from selectsearch.errors import RouteSpecError
from selectsearch.registry import Param, call_with_context
from selectsearch.route.base import AutoBudget, Router, RouteSpec, as_route, parse_route, rank_by_scores
from selectsearch.route.registry import ROUTERS, fusable, register_router
from selectsearch.types import Qrels

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["ROUTERS", "AutoBudget", "Param", "RouteSpec", "Router", "RouterOptions", "as_route", "check_budget",
           "expand_for_index", "make_router", "options_for", "parse_route", "rank_by_scores", "register_router",
           "split_router_options"]

log = logging.getLogger(__name__)


def _fuses(router: str) -> bool:
    """Whether ``router`` fuses others (and so takes their options as ``ROUTER.KEY``)."""
    return router in ROUTERS and bool(ROUTERS[router].meta.get("fuses"))


def _takes(router: str) -> str:
    extra = ", ROUTER.KEY (an option of a fused router)" if _fuses(router) else ""
    known = _options_of(router)
    return f"{router} takes {', '.join(known) + extra if known or extra else 'no options'}"


def _options_of(router: str) -> tuple[str, ...]:
    """The declared options of ``router`` (none for a name no registry knows, e.g. a router object's)."""
    return ROUTERS[router].param_names(ROUTERS.context) if router in ROUTERS else ()


def _check_key(router: str, key: str, given: str) -> None:
    """Raise unless ``key`` is an option of ``router`` (``given``: the option as the user wrote it)."""
    if _fuses(router) and "." in key:
        sub, _, sub_key = key.partition(".")
        if sub not in ROUTERS or not fusable(sub):
            raise RouteSpecError(f"router option {given!r}: {router} fuses scoring routers, {sub!r} is not one; "
                                 f"known routers: {', '.join(n for n in sorted(ROUTERS) if fusable(n))}")
        _check_key(sub, sub_key, given)
        return
    if key not in _options_of(router):
        raise RouteSpecError(f"unknown options for {router!r}: {given}; {_takes(router)}")


@dataclass
class RouterOptions:
    """Options of one run, split per router by :func:`split_router_options`.

    Attributes:
        own: router name -> the options its factory gets (scope prefix removed).
        fused: ``ROUTER.KEY`` options that also reach the routers ``hybrid`` fuses (below
            ``hybrid.ROUTER.KEY`` and above the tuned ``routing.json``).
        pending: options no top-level router of the run takes -> the routers that could take
            them; ``hybrid`` must fuse one of them, or the option is refused.
    """

    own: dict[str, dict[str, Any]]
    fused: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, frozenset[str]] = field(default_factory=dict)


def split_router_options(names: Iterable[str], options: Mapping[str, Any]) -> RouterOptions:
    """Check the router options of a run that uses the routers ``names``, and split them.

    A plain ``KEY`` goes to every router of the run that takes it; ``NAME.KEY`` to router
    ``NAME`` only. Either form also reaches the routers ``hybrid`` fuses, when ``hybrid`` is in
    the run. Refused (:class:`RouteSpecError`, naming the valid options): ``NAME`` that is not a
    router, a ``KEY`` that ``NAME`` does not take, a plain ``KEY`` that no router takes, and an
    option that no router of the run uses (when ``hybrid`` is in the run, this last check waits
    until it is built and its fused routers are known).

    Example:
        >>> split_router_options(["redde", "centroid"], {"csi_rate": 0.1}).own
        {'centroid': {}, 'redde': {'csi_rate': 0.1}}
    """
    run = sorted(set(names))
    own: dict[str, dict[str, Any]] = {n: {} for n in run}
    fused: dict[str, Any] = {}
    pending: dict[str, frozenset[str]] = {}
    hybrid = any(_fuses(n) for n in own)
    # plain keys first: a scoped key overrides a plain one for the router it names
    for key, value in sorted(options.items(), key=lambda kv: "." in kv[0]):
        head, dot, rest = key.partition(".")
        if dot:
            if head not in ROUTERS:
                raise RouteSpecError(f"router option {key!r}: {head!r} is not a router; write NAME.KEY=VALUE with "
                                     f"NAME one of {', '.join(sorted(ROUTERS))}")
            _check_key(head, rest, key)
            if head in own:
                own[head][rest] = value
            elif hybrid:
                pending[key] = frozenset({head})
            else:
                raise RouteSpecError(f"router option {key!r} is for router {head!r}, which no route of this run "
                                     f"uses ({', '.join(run)}); drop it or add a {head}@M route")
            if hybrid and not _fuses(head):
                fused[key] = value
            continue
        takers = [n for n in run if key in _options_of(n)]
        for n in takers:
            own[n][key] = value
        candidates = frozenset(r for r in ROUTERS if key in _options_of(r) and not _fuses(r))
        if hybrid:
            fused.update({f"{r}.{key}": value for r in candidates if f"{r}.{key}" not in fused})
        if takers:
            continue
        if candidates and hybrid:
            pending[key] = candidates
            continue
        routers = "; ".join(_takes(n) for n in run)
        whose = (f" ({key} is an option of {', '.join(sorted(candidates))}, which no route of this run uses)"
                 if candidates else "")
        raise RouteSpecError(f"unknown options for {', '.join(repr(n) for n in run)}: {key}{whose}; {routers}")
    return RouterOptions(own, fused, pending)


def _sweep_text(spec: RouteSpec) -> str:
    """``centroid@1:4`` or ``centroid@1,2,4`` (what the user wrote, up to spacing)."""
    return str(spec)


def check_budget(spec: RouteSpec, n_shards: int) -> None:
    """Refuse a sweep (one router takes one budget) and a budget above ``n_shards``.

    The rule everywhere (``search``, ``eval``, :class:`~selectsearch.search.SelectiveSearcher`,
    :func:`~selectsearch.evaluation.evaluate`): a single budget above the shard count is an error
    naming the shard count; a sweep (``centroid@1:16``) in an evaluation keeps the budgets that fit,
    with a warning (:func:`expand_for_index`), and each row is labelled with the budget that ran.

    Raises:
        RouteSpecError: naming the index's shard count.
    """
    if spec.budgets:
        raise RouteSpecError(f"route {_sweep_text(spec)} is a sweep of {len(spec.budgets)} budgets, but a search "
                             f"takes one budget (e.g. {spec.name}@{spec.budgets[0]}); evaluate sweeps with "
                             "`selectsearch eval --route ...`")
    if spec.auto is not None and spec.auto.targets:
        one = replace(spec, auto=replace(spec.auto, targets=()))
        raise RouteSpecError(f"route {spec} is a sweep of {len(spec.auto.targets)} coverage targets, but a search "
                             f"takes one (e.g. {one}); evaluate sweeps with `selectsearch eval --route ...`")
    if spec.auto is not None and spec.auto.max_shards is not None and spec.auto.max_shards > n_shards:
        raise RouteSpecError(f"route {spec} searches at most {spec.auto.max_shards} shards per query but the index "
                             f"has {n_shards} shards; write {spec.name}@auto:T/M with M <= {n_shards}")
    if spec.budget is not None and spec.budget > n_shards:
        raise RouteSpecError(f"route {spec} asks for {spec.budget} shards per query but the index has {n_shards} "
                             f"shards; use {spec.name}@1 to {spec.name}@{n_shards}, or 'all'")


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


def expand_for_index(spec: RouteSpec, n_shards: int) -> list[RouteSpec]:
    """One spec per budget that an index of ``n_shards`` shards can run.

    Budgets of a sweep above ``n_shards`` are left out with a warning (``centroid@1:16`` on 8
    shards runs ``centroid@1`` ... ``centroid@8``); a single budget above it is refused.

    Raises:
        RouteSpecError: a single budget, or every budget of a sweep, above ``n_shards``.

    Example:
        >>> [str(s) for s in expand_for_index(parse_route("random@1:3"), 8)]
        ['random@1', 'random@2', 'random@3']
    """
    if spec.auto is not None:
        expanded = spec.expand(n_shards)
        for one in expanded:
            check_budget(one, n_shards)
        return expanded
    if not spec.budgets:
        check_budget(spec, n_shards)
        return [spec]
    kept = [b for b in spec.budgets if b <= n_shards]
    dropped = [b for b in spec.budgets if b > n_shards]
    if not kept:
        raise RouteSpecError(f"route {_sweep_text(spec)}: every budget is above the index's {n_shards} shards; "
                             f"use budgets 1 to {n_shards}")
    if dropped:
        log.warning("route %s: the index has %d shards; budgets %s left out (rows %s@%d to %s@%d)",
                    _sweep_text(spec), n_shards, ",".join(map(str, dropped)), spec.name, kept[0], spec.name, kept[-1])
    return [replace(spec, budget=b, budgets=()) for b in kept]


def make_router(spec: RouteSpec | str, index: ShardedIndex, *, qrels: Qrels | None = None, seed: int = 0,
                run: Collection[str] = (), **options: Any) -> Router:
    """The router a spec names, set up for ``index``.

    ``options`` are the run's router options (``KEY`` or ``NAME.KEY``, see
    :func:`split_router_options`); ``run`` names the other routers of the run, which may take
    options this router does not (default: this router alone, so every option must be its own).

    A per-query budget (``hybrid@auto:0.9``) returns the router wrapped in an
    :class:`~selectsearch.route.budget.AutoBudgetRouter`, whose cut-offs
    (:meth:`~selectsearch.route.Router.cutoffs`, used when no fixed budget is given) come from
    the calibration stored with the index.

    Raises:
        RouteSpecError: unknown router, unknown option, a sweep spec or a budget above the index's
            shard count (:func:`check_budget`), a router the index cannot serve (e.g.
            ``centroid`` on a random partition), or ``@auto`` on a router without shard scores.
    """
    spec = parse_route(spec) if isinstance(spec, str) else spec
    check_budget(spec, index.n_shards)
    auto, spec = spec.auto, replace(spec, auto=None)  # the router ranks; a per-query budget wraps it
    split = split_router_options({spec.name, *run}, options)
    context = {"spec": spec, "index": index, "qrels": qrels, "seed": seed, "n_shards": index.n_shards,
               "fused_defaults": split.fused}
    if spec.router is not None:  # a router object or class given in place of a name
        router = call_with_context(spec.router, context, split.own[spec.name])
    else:
        own = split.own[spec.name]
        nested = {k: v for k, v in own.items() if "." in k}  # ROUTER.KEY of a router it fuses: it checks them
        router = ROUTERS.build(spec.name, {k: v for k, v in own.items() if k not in nested}, context,
                               unchecked=nested)
    if not isinstance(router, Router):
        raise RouteSpecError(f"router {spec.name!r}: its factory returned {type(router).__name__}, not a "
                             "selectsearch.route.Router")
    if not router.name:
        router.name = spec.name
    fused_names = {r.name for r in getattr(router, "routers", ())}
    for key, candidates in split.pending.items():
        if not candidates & fused_names:
            raise RouteSpecError(f"unknown options for {spec.name!r}: {key}; no router of this run takes it "
                                 f"({spec.name} fuses {', '.join(sorted(fused_names))}; {key} is for "
                                 f"{', '.join(sorted(candidates))})")
    if auto is not None:
        from selectsearch.route.budget import make_auto_router

        return make_auto_router(router, auto, index)
    return router
