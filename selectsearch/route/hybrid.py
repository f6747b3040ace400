"""``hybrid@m``: rank shards by a weighted sum of several routers' standardised scores.

A learned router and a lexical one see different evidence: MICO's query head reads a frozen
sentence embedding of the query, CORI counts the query's terms in each shard. On Home Depot's MICO
shards CORI alone covers more relevant products at 2 shards than MICO's own head (0.81 vs 0.77),
and their fusion more than either (eval/results/mico/README.md). Each router's per-query shard
scores are standardised (mean 0, standard deviation 1 over the shards, so that logits and CORI
beliefs are on one scale) and combined::

    score(q, i) = sum_r  w_r * (s_r(q, i) - mean_i s_r(q, .)) / std_i s_r(q, .)

Options (``--router-option hybrid.KEY=VALUE``):

- ``routers``: comma-separated router names (default ``mico,cori``); each must produce scores
  (``mico``, ``distilled``, ``knn``, ``centroid``, ``cori``, ``taily``, ``redde``, ``ranks``);
- ``weights``: comma-separated weights, one per router (default: equal). Choose them on held-out
  logged queries: ``selectsearch tune-route INDEX --data DATA`` fits them on held-out topics of the
  logs (and on a random split, for the gating; :mod:`selectsearch.route.tuning`) and stores them
  with the index, and ``hybrid@m`` without ``routers``/``weights`` then uses them;
- ``gating``: ``on`` (default) or ``off``. When ``tune-route`` fitted a per-query gating
  (:mod:`selectsearch.route.gating`: familiar queries get the weights chosen on a random split of
  the logs, unfamiliar ones those chosen on held-out topics), the stored fusion applies it;
  ``off`` keeps the single tuned weight vector;
- ``ranker``: ``on`` (default) or ``off``. When ``tune-route`` stored a learned shard ranker
  (:mod:`selectsearch.route.ranker`: a small network over every router's standardised score and
  rank position, the shard's size and the query's familiarity, kept only when it beat the gated
  fusion out of sample), the stored fusion ranks shards with it instead of the weighted sum;
  ``off`` falls back to the weights (and their gating);
- ``ROUTER.KEY=VALUE``: an option for one sub-router, e.g. ``hybrid.mico.mico_model=DIR``.

Query vectors of a sub-router that embeds queries (``mico``) are handed on to a dense retriever.

Example:
    >>> standardise(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])).round(3).tolist()
    [[-1.225, 0.0, 1.225], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import RouteSpecError
from selectsearch.route.base import Router, RouteSpec, parse_route, rank_by_scores
from selectsearch.route.gating import Gating, weighted_sum
from selectsearch.route.ranker import ShardRanker
from selectsearch.route.registry import ROUTERS, fusable
from selectsearch.types import EncodedQueries, Qrels, Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["DEFAULT_ROUTERS", "HybridRouter", "fit_weights", "make_hybrid_router", "standardise", "weight_grid"]

#: routers fused when the ``routers`` option is not given
DEFAULT_ROUTERS = ("mico", "cori")


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores of ``(n, K)`` shard scores; a row with one value throughout becomes zeros
    whatever the value (its computed mean can miss the value by a rounding, which would make
    ``+-1`` z-scores of nothing: checked exactly)."""
    s = np.asarray(scores, dtype=np.float64)
    n = s.shape[1]
    # numpy's own mean and std, written out so the mean is taken once (``s.std`` takes it again
    # and both pay numpy's argument handling: this runs three times per fused query)
    centred = s - np.add.reduce(s, axis=1, keepdims=True) / n
    std = np.sqrt(np.add.reduce(centred * centred, axis=1, keepdims=True) / n)
    constant = np.maximum.reduce(s, axis=1, keepdims=True) == np.minimum.reduce(s, axis=1, keepdims=True)
    return np.divide(centred, std, out=np.zeros_like(centred), where=(std > 1e-12) & ~constant)


class HybridRouter(Router):
    """Weighted sum of standardised sub-router scores (see the module docs).

    Args:
        routers: sub-routers, each with a ``scores(queries) -> (n, K)`` method.
        weights: one non-negative weight per router, not all zero.
    """

    name = "hybrid"

    def __init__(self, routers: Sequence[Router], weights: Sequence[float], *, gating: Gating | None = None,
                 ranker: ShardRanker | None = None) -> None:
        if not routers:
            raise RouteSpecError("'hybrid' needs at least one router")
        if len(weights) != len(routers):
            raise RouteSpecError(f"'hybrid' got {len(weights)} weights for {len(routers)} routers")
        if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
            raise RouteSpecError(f"'hybrid' weights must be >= 0 and not all 0, got {list(weights)}")
        for router in routers:
            if not callable(getattr(router, "scores", None)):
                raise RouteSpecError(f"router {router.name!r} has no shard scores and cannot be fused")
        self.routers = list(routers)
        self.weights = [float(w) for w in weights]
        if gating is not None:
            names = [r.name for r in self.routers]
            if gating.routers != names:
                raise RouteSpecError(f"the gating was fitted for routers {gating.routers}, not {names}")
            if not any(callable(getattr(r, "familiarity", None)) for r in self.routers):
                raise RouteSpecError("gating reads the familiarity of the 'knn' router, which this fusion lacks")
        if ranker is not None:
            names = [r.name for r in self.routers]
            if ranker.routers != names:
                raise RouteSpecError(f"the shard ranker was fitted for routers {ranker.routers}, not {names}")
            if ranker.uses_familiarity and not any(callable(getattr(r, "familiarity", None)) for r in self.routers):
                raise RouteSpecError("the shard ranker reads the familiarity of the 'knn' router, which this "
                                     "fusion lacks")
        self.gating = gating
        self.ranker = ranker
        self._last_weights: np.ndarray | None = None
        self._last_ranked = 0

    def needed(self) -> list[bool]:
        """Which sub-routers a query can need: a weight above 0 in some weight vector the fusion
        uses (the fixed weights, or the gating's two; only one of them when the gate is constant,
        the other then multiplying every score by exactly 0), or the familiarity the gating reads;
        with a shard ranker, every one (it reads them all)."""
        if self.ranker is not None:
            return [True] * len(self.routers)
        if self.gating is None:
            vectors = [self.weights]
        elif self.gating.constant is None:
            vectors = [self.gating.familiar, self.gating.unfamiliar]
        else:
            vectors = [self.gating.familiar if self.gating.constant == 1.0 else self.gating.unfamiliar]
        gated = self.gating is not None
        return [any(v[i] > 0 for v in vectors) or (gated and callable(getattr(r, "familiarity", None)))
                for i, r in enumerate(self.routers)]

    def component_scores(self, queries: Sequence[Query]) -> list[np.ndarray]:
        """Each sub-router's standardised ``(n, K)`` scores, in order.

        A sub-router whose weight is 0 wherever it could be used is not run (its part is zeros,
        which the weights ignore): a tuned fusion pays only for the routers it kept. Query
        vectors of an earlier sub-router are offered to later ones that take them
        (``offer_encoded``), so routers sharing an encoder embed each query once."""
        parts: list[np.ndarray | None] = []
        encoded: EncodedQueries | None = None
        for router, needed in zip(self.routers, self.needed(), strict=True):
            if not needed:
                parts.append(None)
                continue
            if encoded is not None and hasattr(router, "offer_encoded"):
                router.offer_encoded(encoded)
            parts.append(standardise(router.scores(queries)))  # type: ignore[attr-defined]
            encoded = encoded or router.encoded_queries()
        shape = next(p.shape for p in parts if p is not None)  # the weights are not all 0
        return [np.zeros(shape) if p is None else p for p in parts]

    def scores(self, queries: Sequence[Query]) -> np.ndarray:
        """``(n, K)`` fused scores: from the shard ranker, else with the fixed weights, or per query
        through the gating."""
        parts = self.component_scores(queries)
        if self.ranker is not None:
            self._last_weights, self._last_ranked = None, len(queries)
            return self.ranker.scores(parts, self.familiarity() if self.ranker.uses_familiarity else None)
        if self.gating is None:
            self._last_weights = np.tile(np.asarray(self.weights), (len(queries), 1))
            return np.asarray(sum(w * p for w, p in zip(self.weights, parts, strict=True)))
        familiarity = self.familiarity()
        assert familiarity is not None and len(familiarity) == len(queries)
        self._last_weights = self.gating.weights(familiarity)
        return weighted_sum(parts, self._last_weights)  # Gating.fuse, without weighing twice

    def familiarity(self) -> np.ndarray | None:
        """The last batch's query familiarity from the fused ``knn`` router (``None`` without one)."""
        for router in self.routers:
            get = getattr(router, "familiarity", None)
            if callable(get):
                value = get()
                return None if value is None else np.asarray(value)
        return None

    def route_details(self) -> list[dict[str, Any]] | None:
        """Per query of the last batch: the weights used (``{router: weight}``) and, with a
        ``knn`` router, the familiarity they were gated on; recorded in the query's trace. With a
        shard ranker: ``{"ranker": True}`` and the familiarity it read."""
        if self.ranker is not None and self._last_ranked:
            fam = self.familiarity() if self.ranker.uses_familiarity else None
            return [{"ranker": True, **({"familiarity": round(float(fam[i]), 4)} if fam is not None else {})}
                    for i in range(self._last_ranked)]
        if self._last_weights is None:
            return None
        names = [r.name for r in self.routers]
        fam = self.familiarity() if self.gating is not None else None
        out: list[dict[str, Any]] = []
        for i, row in enumerate(self._last_weights.tolist()):
            entry: dict[str, Any] = {"weights": {n: round(float(w), 4) for n, w in zip(names, row, strict=True)}}
            if fam is not None:
                entry["familiarity"] = round(float(fam[i]), 4)
                entry["gated"] = True
            out.append(entry)
        return out

    def rank(self, queries: Sequence[Query]) -> np.ndarray:
        return rank_by_scores(self.scores(queries))

    def encoded_queries(self) -> EncodedQueries | None:
        for router in self.routers:
            encoded = router.encoded_queries()
            if encoded is not None:
                return encoded
        return None


def weight_grid(n_routers: int, step: float = 0.05) -> list[tuple[float, ...]]:
    """Every weight vector on the simplex with coordinates in multiples of ``step`` (sum 1).

    Example:
        >>> weight_grid(2, 0.5)
        [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    """
    if n_routers < 1:
        raise ValueError("need at least one router")
    n = round(1.0 / step)
    out = []
    for combo in itertools.product(range(n + 1), repeat=n_routers - 1):
        if sum(combo) <= n:
            out.append((*(c / n for c in combo), (n - sum(combo)) / n))
    return sorted(out)


def fit_weights(component_scores: Sequence[np.ndarray], pair_query: np.ndarray, pair_shard: np.ndarray,
                shard_sizes: np.ndarray, *, step: float = 0.05,
                weights: np.ndarray | None = None) -> tuple[tuple[float, ...], float, list[dict[str, Any]]]:
    """The grid weights whose fused ranking has the largest coverage AUC on held-out log pairs.

    Args:
        component_scores: standardised ``(n_queries, K)`` scores of each router (same queries).
        pair_query, pair_shard, shard_sizes, weights: as in
            :func:`selectsearch.selective_metrics.coverage_curve`.
        step: grid resolution (see :func:`weight_grid`).

    Returns:
        ``(best weights, best AUC, every grid point as {"weights", "auc", "coverage"})``; ties keep
        the first grid point in :func:`weight_grid` order.
    """
    from selectsearch.selective_metrics import coverage_curve

    table: list[dict[str, Any]] = []
    best: tuple[tuple[float, ...], float] | None = None
    for w in weight_grid(len(component_scores), step):
        fused = sum(wi * s for wi, s in zip(w, component_scores, strict=True))
        curve = coverage_curve(rank_by_scores(np.asarray(fused)), pair_query, pair_shard, shard_sizes, weights)
        table.append({"weights": list(w), "auc": curve.auc, "coverage": curve.coverage.tolist()})
        if best is None or curve.auc > best[1] + 1e-12:
            best = (w, curve.auc)
    assert best is not None
    return best[0], best[1], table


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError as exc:
        raise RouteSpecError(f"'hybrid' option {what} must be comma-separated numbers, got {text!r}") from exc


def make_hybrid_router(spec: RouteSpec, index: ShardedIndex, *, qrels: Qrels | None = None, seed: int = 0,
                       routers: str | Sequence[str] | None = None, weights: str | Sequence[float] | None = None,
                       fused_defaults: Mapping[str, Any] | None = None, gating: str = "on", ranker: str = "on",
                       **options: Any) -> HybridRouter:
    """The ``hybrid`` router for ``index`` (factory called by :func:`selectsearch.route.make_router`).

    Without ``routers`` and ``weights`` it uses the fusion ``selectsearch tune-route`` stored with
    the index (``routing.json``), else ``mico,cori`` with equal weights. A fused router's options
    come, strongest first, from ``ROUTER.KEY`` given to hybrid (``hybrid.knn.k=50``), from
    ``fused_defaults`` (the run's options outside hybrid's scope: ``knn.data=DIR``, ``k=50``), then
    from ``routing.json`` (whose stored paths :func:`~selectsearch.route.routing_file.stored_options`
    resolves: ``$SELECTSEARCH_DATA`` first, then the absolute path stored).

    Raises:
        RouteSpecError: an unknown or unfusable sub-router, a nested ``hybrid``, bad weights, or no
            tuned routing on an index where the default fusion cannot be built (the message names
            ``selectsearch tune-route``).
    """
    from selectsearch.route import make_router, options_for
    from selectsearch.route.routing_file import ROUTING_FILE, read_routing, stored_options

    defaults = dict(fused_defaults or {})
    stored: dict[str, Any] = {}
    for key, value in (("gating", gating), ("ranker", ranker)):
        if str(value).lower() not in ("on", "off", "1", "0", "true", "false"):
            raise RouteSpecError(f"'hybrid' option {key} must be on or off, got {value!r}")
    gate: Gating | None = None
    learned: ShardRanker | None = None
    if routers is None and weights is None:
        tuned = read_routing(index.path)
        if tuned is not None:
            routers, weights = tuned["routers"], tuned["weights"]
            stored = stored_options(tuned, index.path, given={**defaults, **options})
            if tuned.get("gating") and str(gating).lower() in ("on", "1", "true"):
                gate = Gating.from_dict(tuned["gating"])
            if tuned.get("ranker") and str(ranker).lower() in ("on", "1", "true"):
                learned = ShardRanker.from_dict(tuned["ranker"])
                if len(learned.log_size) != index.n_shards:
                    raise RouteSpecError(f"the shard ranker in {index.path / ROUTING_FILE} was fitted for "
                                         f"{len(learned.log_size)} shards, not this index's {index.n_shards}; run "
                                         "`selectsearch tune-route` again")
    untuned = routers is None
    if routers is None:
        routers = DEFAULT_ROUTERS
    names = [n.strip() for n in routers.split(",")] if isinstance(routers, str) else list(routers)
    names = [n for n in names if n]
    if any(n in ROUTERS and not fusable(n) for n in names):
        raise RouteSpecError(f"'hybrid' fuses real routers; got {', '.join(names)}")
    stray = sorted(k for k in options if k.partition(".")[0] not in names)
    if stray:
        raise RouteSpecError(f"unknown options for 'hybrid': {', '.join(stray)}; use routers=, weights= or "
                             f"ROUTER.KEY=VALUE for a fused router ({', '.join(names)})")
    if weights is None:
        w = [1.0 / len(names)] * len(names)
    else:
        w = _floats(weights, "weights") if isinstance(weights, str) else [float(x) for x in weights]
    merged = {**stored, **defaults, **options}
    try:
        subs = [make_router(parse_route(f"{name}@1"), index, qrels=qrels, seed=seed, **options_for(name, merged))
                for name in names]
    except RouteSpecError as exc:
        if not untuned:
            raise
        kind = index.manifest.partition_kind
        why = (f"the default fusion {','.join(names)} needs a MICO model, which this {kind!r} index does not have"
               if kind != "mico" and "mico" in names else f"the default fusion {','.join(names)} failed: {exc}")
        raise RouteSpecError(
            f"'hybrid' on {index.path}: no routing is tuned ({ROUTING_FILE} is missing) and {why}; run "
            f"`selectsearch tune-route {index.path} --data DATA --routers centroid,cori,knn` first, or choose the "
            "fused routers with --router-option hybrid.routers=centroid,cori") from exc
    return HybridRouter(subs, w, gating=gate, ranker=learned)
