"""Tune ``hybrid@m`` on held-out logged queries and store the result with the index.

The weights of a fused router are chosen on logged queries that no learned part has seen: the
validation split by query that MICO training held out (its ``val_fraction`` and ``seed``, read from
the model's config; for an index that is not MICO-partitioned the same default split of the logs).
The ``knn`` router's knowledge base is the training part of the logs only, so no validation query
finds itself. :func:`tune_hybrid` scores every grid point of weights by coverage AUC
(:func:`~selectsearch.route.hybrid.fit_weights`);
:func:`~selectsearch.route.routing_file.write_routing` stores the winner as ``INDEX/routing.json``,
which ``hybrid@m`` reads when no ``routers``/``weights`` option is given.

Example:
    >>> from selectsearch.index.sharded import ShardedIndex  # doctest: +SKIP
    >>> index = ShardedIndex.open("indexes/hd-mico16")  # doctest: +SKIP
    >>> tuned = tune_hybrid(index, "../shared/data/homedepot", "train",  # doctest: +SKIP
    ...                     ["mico", "cori", "taily", "knn"])
    >>> write_routing(index.path, tuned)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import RouteSpecError
from selectsearch.route.hybrid import fit_weights, standardise
from selectsearch.route.routing_file import ROUTING_FILE, read_routing, stored_options, write_routing
from selectsearch.types import Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex

__all__ = ["ROUTING_FILE", "HeldOutLogs", "check_tuning_options", "held_out_logs", "read_routing", "scoring_routers",
           "stored_options", "tune_hybrid", "write_routing"]

#: the split of the logs when the index has no MICO model to read it from (MICO's defaults)
DEFAULT_SPLIT = {"val_fraction": 0.1, "seed": 0}


@dataclass
class HeldOutLogs:
    """Validation queries of the logs with their (query row, shard) pairs, and the training records."""

    queries: list[Query]
    pair_query: np.ndarray
    pair_shard: np.ndarray
    train_records: list[tuple[str, str, float]] = field(repr=False)


def held_out_logs(index: ShardedIndex, data: str | os.PathLike[str], logs: str) -> HeldOutLogs:
    """The logs' validation split by query, as MICO training drew it (see the module docs).

    Raises:
        RouteSpecError: no validation pair lands in the index.
    """
    from selectsearch.index.manifest import PartitionSection
    from selectsearch.mico.logs import read_log_records, split_by_query

    part = index.manifest.partition or PartitionSection()
    config = dict(DEFAULT_SPLIT)
    model_config = index.path / "partition" / part.model_dir / "config.json"
    if part.kind == "mico" and model_config.is_file():
        training = json.loads(model_config.read_text()).get("training", {})
        config.update({k: v for k, v in training.items() if k in config})
    records = read_log_records(data, logs)
    rows: dict[str, int] = {}
    pair_query = np.asarray([rows.setdefault(text, len(rows)) for text, _, _ in records])
    train, val = split_by_query(pair_query, len(rows), float(config["val_fraction"]), int(config["seed"]))
    texts = list(rows)
    shard_of = index.shard_of_doc
    val_rows: dict[int, int] = {}
    pq, ps = [], []
    for i in val.tolist():
        shard = shard_of.get(records[i][1])
        if shard is not None:
            pq.append(val_rows.setdefault(int(pair_query[i]), len(val_rows)))
            ps.append(shard)
    if not pq:
        raise RouteSpecError(f"no held-out logged document of {logs!r} is in {index.path}; nothing to tune on")
    queries = [Query(f"val{j}", texts[q]) for q, j in sorted(val_rows.items(), key=lambda kv: kv[1])]
    return HeldOutLogs(queries, np.asarray(pq), np.asarray(ps), [records[i] for i in train.tolist()])


def scoring_routers(index: ShardedIndex, names: Sequence[str], train_records: Sequence[tuple[str, str, float]],
                    options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The named routers for ``index``; ``knn`` gets ``train_records`` as its knowledge base.

    Raises:
        RouteSpecError: an unknown router, or one without shard scores.
    """
    from selectsearch.encode import TextEncoder
    from selectsearch.route import make_router, options_for, parse_route
    from selectsearch.route.knn import router_from_records

    options = options or {}
    check_tuning_options(names, options)
    routers: dict[str, Any] = {}
    for name in names:
        if name == "knn":
            own = options_for("knn", options)
            encoder = TextEncoder(own["encoder"]) if own.get("encoder") else TextEncoder()
            routers[name] = router_from_records(train_records, index, encoder, k=int(own.get("k", 100)),
                                                temperature=float(own.get("temperature", 0.1)))
        else:
            routers[name] = make_router(parse_route(f"{name}@1"), index, **options_for(name, options))
        if not callable(getattr(routers[name], "scores", None)):
            raise RouteSpecError(f"router {name!r} has no shard scores and cannot be fused")
    return routers


def tune_hybrid(index: ShardedIndex, data: str | os.PathLike[str], logs: str, routers: Sequence[str], *,
                step: float = 0.1, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Weights of ``routers`` with the best coverage AUC on the held-out logged queries.

    Returns:
        a JSON-able dict: ``routers``, ``weights``, ``val_auc``, each router's own validation AUC
        (``single_auc``), the sub-router ``options`` ``hybrid@m`` needs to rebuild them, and the
        validation sizes.
    """
    from selectsearch.ranking import rank_by_scores
    from selectsearch.selective_metrics import coverage_curve

    names = [n for n in routers if n]
    if not names:
        raise RouteSpecError("tune at least one router")
    held = held_out_logs(index, data, logs)
    built = scoring_routers(index, names, held.train_records, options)
    scores = [standardise(built[n].scores(held.queries)) for n in names]
    weights, auc, _ = fit_weights(scores, held.pair_query, held.pair_shard, index.shard_sizes, step=step)
    single = {n: coverage_curve(rank_by_scores(s), held.pair_query, held.pair_shard, index.shard_sizes).auc
              for n, s in zip(names, scores, strict=True)}
    # paths are stored absolute, so the tuned index works from any working directory
    data_path = str(Path(data).expanduser().resolve())
    logs_value = str(Path(logs).expanduser().resolve()) if Path(logs).is_file() else str(logs)
    stored = {k: v for k, v in (options or {}).items() if k.partition(".")[0] in names}
    for key in ("knn.data", "knn.logs"):
        value = stored.get(key)
        if isinstance(value, str) and (key == "knn.data" or Path(value).is_file()):
            stored[key] = str(Path(value).expanduser().resolve())
    if "knn" in names:
        stored.setdefault("knn.logs", logs_value)
        if not Path(logs).is_file():
            stored.setdefault("knn.data", data_path)
    return {"router": "hybrid", "routers": names, "weights": [float(w) for w in weights], "val_auc": float(auc),
            "single_auc": single, "options": stored, "logs": logs_value, "data": data_path,
            "data_root_relative": _under_data_root(stored.get("knn.data", data_path)), "step": step,
            "n_val_queries": len(held.queries), "n_val_pairs": len(held.pair_query)}


def _under_data_root(path: object) -> str | None:
    """``path`` relative to the data folder (``$SELECTSEARCH_DATA`` or the default), if inside it."""
    from selectsearch.data import resolve_data_dir

    try:
        return Path(str(path)).resolve().relative_to(resolve_data_dir(must_exist=False)).as_posix()
    except ValueError:
        return None


def check_tuning_options(names: Sequence[str], options: dict[str, Any]) -> None:
    """Refuse an option that is not ``ROUTER.KEY`` for one of the tuned routers ``names``, or a
    ``KEY`` that router does not take (the message names the valid ones).

    Raises:
        RouteSpecError: a bad option.
    """
    from selectsearch.route import _check_key

    for key in options:
        head, dot, rest = key.partition(".")
        if not dot or head not in names:
            raise RouteSpecError(f"router option {key!r}: write ROUTER.KEY=VALUE for one of the tuned routers "
                                 f"({', '.join(names)})")
        _check_key(head, rest, key)
