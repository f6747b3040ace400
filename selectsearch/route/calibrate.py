"""Calibrate the per-query budgets of an index already tuned, on the held-out logs tune-route used.

Its own module, apart from :mod:`selectsearch.route.budget`, because it builds routers through
the tuning code (which imports the fused router, which imports the route package), while the
route package imports the budget module to build ``NAME@auto`` routers.

Example:
    >>> from selectsearch.index.sharded import ShardedIndex  # doctest: +SKIP
    >>> index = ShardedIndex.open("indexes/scifact-k16")  # doctest: +SKIP
    >>> store_calibration(index.path, calibrate_index(index))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import RouteSpecError
from selectsearch.route.budget import store_calibration

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["calibrate_index", "store_calibration"]


def calibrate_index(index: ShardedIndex, data: str | os.PathLike[str] | None = None, logs: str | None = None,
                    *, routers: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Fit calibrations for the fusion tuned on ``index`` (``routing.json``; with its per-query
    gating or shard ranker when it has one) and each of its routers, on the held-out logged queries ``tune-route``
    used (:func:`selectsearch.route.tuning.calibrate_fusion`: a gated fusion on both validation
    splits, the routers on the split the weights were chosen on; the knn knowledge base is the
    training part of each split, and the topic split is drawn again with the stored parameters and
    the knn router's encoder, as in tuning).

    Args:
        index: a tuned index.
        data, logs: the logs (default: those stored in ``routing.json``).
        routers: routers to calibrate besides ``hybrid`` (default: the fused ones).

    Raises:
        RouteSpecError: the index has no ``routing.json``, or a split it needs cannot be drawn.
    """
    from selectsearch.route import options_for
    from selectsearch.route.gating import Gating
    from selectsearch.route.knn import knn_encoder
    from selectsearch.route.ranker import ShardRanker
    from selectsearch.route.routing_file import read_routing
    from selectsearch.route.tuning import VALIDATIONS, calibrate_fusion, held_out_splits, score_held_out

    tuned = read_routing(index.path)
    if tuned is None or "routers" not in tuned:
        raise RouteSpecError(f"{index.path} has no tuned routing (routing.json); run `selectsearch tune-route` first")
    names = list(tuned["routers"])
    weights = [float(w) for w in tuned["weights"]]
    data = data if data is not None else tuned["data"]
    logs = logs if logs is not None else tuned["logs"]
    extra = [n for n in (routers or ()) if n not in names]
    validation = str(tuned.get("validation", "random"))
    gating = Gating.from_dict(tuned["gating"]) if tuned.get("gating") else None
    ranker = ShardRanker.from_dict(tuned["ranker"]) if tuned.get("ranker") else None
    options = {k: v for k, v in tuned.get("options", {}).items() if k.partition(".")[0] in names + extra
               and k.partition(".")[2] not in ("logs", "data")}
    # the splits tune-route drew, drawn again: the topic split with its stored parameters, its queries
    # clustered by the knn router's encoder
    encoder = knn_encoder(options_for("knn", options).get("encoder"), index)
    topics = tuned.get("splits", {}).get("topics", {})
    splits = held_out_splits(index, str(data), str(logs), encoder=encoder,
                             random_seed=tuned.get("splits", {}).get("random", {}).get("seed"),
                             folds=int(tuned.get("folds", 1)),
                             **{k: topics[k] for k in ("fraction", "seed", "n_topics", "by") if k in topics})
    raw: dict[str, dict[str, np.ndarray]] = {}
    familiarity: dict[str, np.ndarray] = {}
    shared: dict[str, Any] = {}
    kinds: tuple[str, ...] = VALIDATIONS if gating is not None else (validation,)
    if ranker is not None:  # the splits the ranker was fitted on
        kinds = tuple(k for k in VALIDATIONS if k in ranker.fit.get("splits", kinds))
    for kind in kinds:
        held = splits[kind]
        if isinstance(held, str):
            raise RouteSpecError(f"the {kind} validation split of the logs cannot be drawn again: {held}")
        wanted = names + extra if kind == validation else names
        scored, familiar = score_held_out(index, wanted, held, options, encoder=encoder, shared=shared)
        raw[kind] = {n: a.astype(np.float64) for n, a in scored.items()}
        if familiar is not None:
            familiarity[kind] = familiar
    return calibrate_fusion(index, names, weights, gating, splits, raw, familiarity, validation, ranker=ranker)
