"""Route specs (``centroid@2``, ``redde@1:16``, ``hybrid@auto:0.9``) and the :class:`Router` interface.

A router ranks ALL shards for each query, best first; a budget ``m`` searches the first ``m``.
Routing is therefore nested by construction: the shards chosen at ``m`` are among those chosen
at ``m + 1``. Ties are broken by shard id, so rankings are deterministic.

A per-query budget ``NAME@auto[:T][/M]`` searches, per query, the shortest prefix of the
router's ranking whose calibrated probability of holding the query's relevant documents reaches
``T`` (at most ``M`` shards); see :mod:`selectsearch.route.budget`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from selectsearch.errors import RouteSpecError
from selectsearch.locks import instance_lock, serialised
from selectsearch.ranking import rank_by_scores
from selectsearch.route.registry import ROUTERS
from selectsearch.types import EncodedQueries, Query

__all__ = ["AutoBudget", "RouteSpec", "Router", "ScoringRouter", "as_route", "parse_route", "rank_by_scores"]

_SPEC = re.compile(r"^(?P<name>[a-z][a-z0-9_-]*)(?:@(?P<lo>\d+)(?::(?P<hi>\d+)|(?P<list>(?:,\d+)+))?)?$")
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_AUTO = re.compile(rf"^(?P<name>[a-z][a-z0-9_-]*)@auto(?::(?P<targets>{_NUMBER}(?:,{_NUMBER})*))?(?:/(?P<max>\d+))?$")


def _fmt_target(target: float) -> str:
    """Shortest decimal text that parses back to ``target`` (``0.95``, ``1``), never exponent form."""
    return str(np.format_float_positional(target, trim="-"))


@dataclass(frozen=True)
class AutoBudget:
    """A per-query budget: the fewest shards whose calibrated coverage reaches ``target``.

    ``None`` fields take the defaults of :mod:`selectsearch.route.budget` (target
    :data:`~selectsearch.route.budget.DEFAULT_TARGET`, at most
    :func:`~selectsearch.route.budget.default_max_shards` shards); they stay ``None`` here so that
    ``str(spec)`` gives back what the user wrote. ``targets`` holds a sweep (``auto:0.8,0.9``).

    Example:
        >>> str(AutoBudget(0.95, 8))
        'auto:0.95/8'
    """

    target: float | None = None
    max_shards: int | None = None
    targets: tuple[float, ...] = ()

    def __str__(self) -> str:
        targets = self.targets or (() if self.target is None else (self.target,))
        text = "auto" + (":" + ",".join(_fmt_target(t) for t in targets) if targets else "")
        return text + (f"/{self.max_shards}" if self.max_shards is not None else "")


@dataclass(frozen=True)
class RouteSpec:
    """A parsed route spec. ``budget`` is ``None`` for ``all`` (every shard), for a router's own
    cut-off (``ranks``) and for a per-query budget (``auto``).

    ``budgets`` holds the range of a sweep spec such as ``redde@1:16``. ``auto`` is set for a
    per-query budget (``hybrid@auto:0.9``, see :class:`AutoBudget`). ``router``, when set, is a
    :class:`Router` object or class used in place of the registered router ``name`` (see
    :func:`as_route`); it plays no part in comparisons. ``parse_route(str(spec)) == spec``.
    """

    name: str
    budget: int | None
    budgets: tuple[int, ...] = ()
    router: Any = field(default=None, compare=False, repr=False)
    auto: AutoBudget | None = None

    def __str__(self) -> str:
        if self.auto is not None:
            return f"{self.name}@{self.auto}"
        if self.name == "all" or self.budget is None:
            return self.name
        b = self.budgets
        if len(b) > 1:
            contiguous = list(b) == list(range(b[0], b[-1] + 1))
            return f"{self.name}@{b[0]}:{b[-1]}" if contiguous else f"{self.name}@{','.join(map(str, b))}"
        return f"{self.name}@{self.budget}"

    @property
    def is_sweep(self) -> bool:
        """Whether the spec names several budgets or targets (one result row each)."""
        return bool(self.budgets) or (self.auto is not None and len(self.auto.targets) > 1)

    @property
    def router_key(self) -> str:
        """What identifies the router object this spec runs: its name for fixed budgets (one
        ranking serves every budget), the whole spec for a per-query budget (its cut-off rule is
        part of the router)."""
        return str(self) if self.auto is not None else self.name

    def expand(self, n_shards: int | None = None) -> list[RouteSpec]:
        """One spec per budget of a range (``centroid@1:4`` -> 4 specs), budgets capped at K; one
        per target of an ``auto`` sweep (``hybrid@auto:0.8,0.9`` -> 2 specs)."""
        if self.auto is not None and self.auto.targets:
            return [replace(self, auto=replace(self.auto, target=t, targets=())) for t in self.auto.targets]
        if not self.budgets:
            return [self]
        budgets = [b for b in self.budgets if n_shards is None or b <= n_shards]
        return [replace(self, budget=b, budgets=()) for b in budgets]


def parse_route(spec: str) -> RouteSpec:
    """Parse ``all``, ``NAME@M``, a range ``NAME@LO:HI``, a list ``NAME@1,2,4,8``, or a per-query
    budget ``NAME@auto``, ``NAME@auto:T`` (coverage target T in (0, 1]), ``NAME@auto:T/M`` (at
    most M shards), ``NAME@auto/M`` or a target sweep ``NAME@auto:0.8,0.9,0.95``.

    Raises:
        RouteSpecError: malformed spec, unknown router, a budget below 1, a target outside (0, 1].

    Example:
        >>> parse_route("centroid@2")
        RouteSpec(name='centroid', budget=2, budgets=(), auto=None)
        >>> [str(s) for s in parse_route("random@1:3").expand()]
        ['random@1', 'random@2', 'random@3']
        >>> str(parse_route("hybrid@auto:0.95/8"))
        'hybrid@auto:0.95/8'
    """
    text = spec.strip().lower()
    auto = _AUTO.match(text)
    m = auto or _SPEC.match(text)
    if not m:
        raise RouteSpecError(
            f"malformed route spec {spec!r}; write NAME@M (e.g. centroid@2), NAME@LO:HI, NAME@1,2,4, "
            "NAME@auto[:T][/M] (e.g. hybrid@auto:0.9/8) or 'all'"
        )
    name = m.group("name")
    if name not in ROUTERS:
        raise RouteSpecError(f"unknown router {name!r} in {spec!r}; known: {', '.join(sorted(ROUTERS))}")
    budget = ROUTERS[name].meta.get("budget", "required")
    if auto:
        return _parse_auto(spec, name, budget, auto)
    if budget == "none":
        if m.group("lo"):
            raise RouteSpecError(f"{name!r} takes no budget (got {spec!r}); write {name!r}")
        return RouteSpec(name, None)
    if m.group("lo") is None and budget == "optional":
        return RouteSpec(name, None)
    if m.group("lo") is None:
        raise RouteSpecError(f"route {spec!r} needs a budget: {name}@M (shards per query), e.g. {name}@2")
    lo = int(m.group("lo"))
    if m.group("list"):
        budgets = tuple(sorted({lo, *(int(x) for x in m.group("list").split(",")[1:])}))
        if budgets[0] < 1:
            raise RouteSpecError(f"bad budget in {spec!r}: budgets start at 1")
        return RouteSpec(name, budgets[0], budgets)
    hi = int(m.group("hi")) if m.group("hi") else None
    if lo < 1 or (hi is not None and hi < lo):
        raise RouteSpecError(f"bad budget in {spec!r}: budgets start at 1 and ranges are LO:HI with LO <= HI")
    if hi is None:
        return RouteSpec(name, lo)
    return RouteSpec(name, lo, tuple(range(lo, hi + 1)))


def _parse_auto(spec: str, name: str, budget: str, m: re.Match[str]) -> RouteSpec:
    """The :class:`RouteSpec` of a matched ``NAME@auto[:T,...][/M]``."""
    if budget == "none":
        raise RouteSpecError(f"{name!r} takes no budget (got {spec!r}); write {name!r}")
    targets = tuple(float(t) for t in m.group("targets").split(",")) if m.group("targets") else ()
    bad = [t for t in targets if not 0.0 < t <= 1.0]
    if bad:
        raise RouteSpecError(f"bad target in {spec!r}: NAME@auto:T wants a coverage target 0 < T <= 1 "
                             f"(e.g. {name}@auto:0.9), got {_fmt_target(bad[0])}")
    max_shards = int(m.group("max")) if m.group("max") else None
    if max_shards is not None and max_shards < 1:
        raise RouteSpecError(f"bad maximum in {spec!r}: NAME@auto:T/M searches at most M >= 1 shards")
    targets = tuple(sorted(set(targets)))
    if len(targets) > 1:
        return RouteSpec(name, None, auto=AutoBudget(targets[0], max_shards, targets))
    return RouteSpec(name, None, auto=AutoBudget(targets[0] if targets else None, max_shards))


def as_route(route: str | RouteSpec | Router | type[Router]) -> RouteSpec:
    """A route spec from a spec string, a spec, or a :class:`Router` object or subclass.

    A router object or class runs under its ``name`` (its class name when it has none) without
    a budget, i.e. with its own cut-off (:meth:`Router.cutoffs`) or on every shard; for budgets,
    register it (:func:`~selectsearch.route.register_router`) and write ``name@M``, or pass
    ``RouteSpec(name, budget, router=...)``.

    Example:
        >>> as_route("centroid@2") == parse_route("centroid@2")
        True
    """
    if isinstance(route, str):
        return parse_route(route)
    if isinstance(route, RouteSpec):
        return route
    if isinstance(route, type) and issubclass(route, Router):
        return RouteSpec(route.name or route.__name__, None, router=route)
    if isinstance(route, Router):
        return RouteSpec(route.name or type(route).__name__, None, router=route)
    raise RouteSpecError(f"a route is a spec such as 'centroid@2', a RouteSpec or a Router, not "
                         f"{type(route).__name__}")



#: the methods a router subclass defines that are serialised per router object (see __init_subclass__)
_SERIALISED = ("select", "selections", "rank", "scores", "cutoffs", "offer_encoded", "encoded_queries", "last_scores",
               "route_details", "familiarity")
#: where a router object keeps the texts and scores of its last ``scores`` call (see :meth:`Router.last_scores`)
_LAST_SCORES = "_selectsearch_last_scores"


def _remembered(method: Any) -> Any:
    """Wrap a router's ``scores`` so that the object keeps its last batch's texts and scores."""
    import functools

    @functools.wraps(method)
    def scores(self: Router, queries: Sequence[Query]) -> np.ndarray:
        out = method(self, queries)
        self.__dict__[_LAST_SCORES] = (tuple(q.text for q in queries), out)
        return out

    scores.__selectsearch_remembered__ = True  # type: ignore[attr-defined]
    return scores


class Router(ABC):
    """Ranks every shard for each query.

    Thread safety: one router object may be shared between threads. Every subclass's ``select``, ``selections``,
    ``rank``, ``scores``, ``cutoffs``, ``offer_encoded`` and ``encoded_queries`` run
    under the router's own re-entrant lock, added automatically to subclasses — a user's router
    too — so concurrent calls give the answers of sequential ones (see :mod:`selectsearch.locks`).
    """

    #: router name, as in route specs
    name: str = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        own_scores = cls.__dict__.get("scores")
        if callable(own_scores) and not getattr(own_scores, "__selectsearch_remembered__", False):
            setattr(cls, "scores", _remembered(own_scores))  # noqa: B010 - replacing the class's own method
        for attr in _SERIALISED:
            method = cls.__dict__.get(attr)
            if callable(method) and not getattr(method, "__selectsearch_serialised__", False):
                setattr(cls, attr, serialised(method))

    @abstractmethod
    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        """``(len(queries), n_shards)`` int32: a permutation of the shard ids per query, best first."""

    def encoded_queries(self) -> EncodedQueries | None:
        """The query embeddings of the last batch this router ranked, if it embeds queries
        (``None`` otherwise). A dense retriever with the same encoder reuses them."""
        return None

    def route_details(self) -> list[dict[str, Any]] | None:
        """Per-query facts about the last batch's routing decision, which search records in each
        query's trace under ``extra["route"]`` (``hybrid@m``: the fusion weights used); ``None``
        when the router has nothing to add."""
        return None

    def last_scores(self, queries: Sequence[Query]) -> np.ndarray | None:
        """The ``(len(queries), n_shards)`` shard scores of this router's last ``scores`` call, if
        that call scored exactly these query texts (``None`` otherwise, or for a router that ranks
        without scores, such as ``random``).

        Every router class that defines ``scores`` keeps them (added automatically to subclasses),
        so a trace or an explanation can show what the ranking was made of without scoring twice.
        """
        memo = self.__dict__.get(_LAST_SCORES)
        if memo is None or memo[0] != tuple(q.text for q in queries):
            return None
        return np.asarray(memo[1])

    def cutoffs(self, queries: Sequence[Query]) -> np.ndarray | None:
        """Shards to search per query when no budget is given (``None``: every shard).

        Routers with their own cut-off rule (Rank-S, Taily) override this.
        """
        return None

    def select(self, queries: Sequence[Query], budget: int | None) -> list[list[int]]:
        """The first ``budget`` shards of each query's ranking; without a budget, the router's
        own cut-off (or every shard)."""
        return self.selections(queries, [budget])[1][0]

    def selections(self, queries: Sequence[Query], budgets: Sequence[int | None]
                   ) -> tuple[np.ndarray, list[list[list[int]]]]:
        """Rank once, then cut that ranking at every budget (evaluation sweeps route once).

        Returns the ranking (as :meth:`rank`) and, per budget, each query's shards: the first
        ``budget`` of its ranking; for ``None`` the router's own cut-off (:meth:`cutoffs`), or
        every shard in id order when it has none. Budgets of one ranking are nested.
        """
        with instance_lock(self):  # ranking and cut-off of the same batch, not another thread's
            ranking = self.rank(queries)
            cut = self.cutoffs(queries) if any(b is None for b in budgets) else None
        rows = ranking.tolist()
        out: list[list[list[int]]] = []
        for budget in budgets:
            if budget is not None:
                out.append([r[:budget] for r in rows])
            elif cut is None:
                out.append([sorted(r) for r in rows])
            else:
                out.append([r[: max(1, int(c))] for r, c in zip(rows, cut.tolist(), strict=True)])
        return ranking, out


class ScoringRouter(Router):
    """A router that scores every shard (``hybrid@m`` can fuse it); the ranking is by score."""

    #: number of shards the scores cover
    n_shards: int

    @abstractmethod
    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        """``(len(queries), n_shards)`` shard scores, higher is better."""

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        if not queries:
            return np.zeros((0, self.n_shards), np.int32)
        return rank_by_scores(self.scores(queries))
