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
from selectsearch.route.budget import calibrate_routers, store_calibration

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["calibrate_index", "store_calibration"]


def calibrate_index(index: ShardedIndex, data: str | os.PathLike[str] | None = None, logs: str | None = None,
                    *, routers: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Fit calibrations for the fusion tuned on ``index`` (``routing.json``; with its per-query
    gating when it has one) and each of its routers, on the same held-out logged queries
    ``tune-route`` chose the weights on (the knn knowledge base is the training
    part of the logs, as in tuning).

    Args:
        index: a tuned index.
        data, logs: the logs (default: those stored in ``routing.json``).
        routers: routers to calibrate besides ``hybrid`` (default: the fused ones).

    Raises:
        RouteSpecError: the index has no ``routing.json``.
    """
    from selectsearch.route.gating import Gating
    from selectsearch.route.hybrid import standardise
    from selectsearch.route.routing_file import read_routing
    from selectsearch.route.tuning import held_out_logs, scoring_routers

    tuned = read_routing(index.path)
    if tuned is None or "routers" not in tuned:
        raise RouteSpecError(f"{index.path} has no tuned routing (routing.json); run `selectsearch tune-route` first")
    names = list(tuned["routers"])
    weights = [float(w) for w in tuned["weights"]]
    data = data if data is not None else tuned["data"]
    logs = logs if logs is not None else tuned["logs"]
    extra = [n for n in (routers or ()) if n not in names]
    # the split tune-route chose the weights on, drawn again with its parameters
    validation = str(tuned.get("validation", "random"))
    split = tuned.get("splits", {}).get(validation, {}) if validation == "topics" else {}
    held = held_out_logs(index, str(data), str(logs), validation,
                         **{k: split[k] for k in ("fraction", "seed", "n_topics", "by") if k in split})
    options = {k: v for k, v in tuned.get("options", {}).items() if k.partition(".")[0] in names + extra
               and k.partition(".")[2] not in ("logs", "data")}
    built = scoring_routers(index, names + extra, held.train_records, options)
    raw = {n: np.asarray(built[n].scores(held.queries), dtype=np.float64) for n in names + extra}
    gating = Gating.from_dict(tuned["gating"]) if tuned.get("gating") else None
    if gating is not None:  # the stored fusion is gated per query: calibrate what hybrid@auto will score
        fused = gating.fuse([standardise(raw[n]) for n in names], np.asarray(built["knn"].familiarity()))
    else:
        fused = np.asarray(sum(w * standardise(raw[n]) for n, w in zip(names, weights, strict=True)))
    return calibrate_routers({**raw, "hybrid": np.asarray(fused)}, held.pair_query, held.pair_shard,
                             index.shard_sizes, fusion=(names, weights),
                             gating=gating.to_dict() if gating is not None else None)
