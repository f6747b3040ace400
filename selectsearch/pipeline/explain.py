"""Why a query went where it went: every router's shard scores and ranks, the shards chosen at each
budget, shard sizes, and (with judgements) where the query's relevant documents lie.

:func:`explain_routing` is the data behind ``selectsearch explain``; it is plain JSON so that a
serving endpoint can return it as it is. A router's scores come from
:meth:`~selectsearch.route.Router.last_scores` after it ranked the query, so nothing is scored
twice and routers without scores (``random``, ``all``) still show their ranks. A fused router
(``hybrid``) also lists its components' own scores (as ``hybrid/cori`` ...), with their weights.

Example:
    >>> from selectsearch.route import make_router  # doctest: +SKIP
    >>> out = explain_routing(index, {"cori": make_router("cori@1", index)}, Query("q", "vitamin D"),
    ...                       budgets=[1, 2])  # doctest: +SKIP
    >>> out["routers"][0]["chosen"]["1"]  # doctest: +SKIP
    [7]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.ranking import rank_by_scores
from selectsearch.types import Query

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import Router

__all__ = ["explain_routing"]


def _router_entry(name: str, ranking: np.ndarray, scores: np.ndarray | None, budgets: Sequence[int],
                  relevant: np.ndarray | None, own: list[int] | None, **extra: Any) -> dict[str, Any]:
    order = [int(s) for s in ranking]
    chosen = {str(m): sorted(order[:m]) for m in budgets}
    entry: dict[str, Any] = {"name": name, "scores": scores is not None, "ranking": order, "chosen": chosen,
                             **extra}
    if own is not None:
        entry["own_cutoff"] = sorted(own)
    if relevant is not None:
        entry["relevant_found"] = {m: int(relevant[shards].sum()) for m, shards in chosen.items()}
        if own is not None:
            entry["own_cutoff_relevant_found"] = int(relevant[own].sum())
    entry["_scores"] = None if scores is None else [float(x) for x in scores]
    return entry


def explain_routing(index: ShardedIndex, routers: Mapping[str, Router], query: Query, *,
                    budgets: Sequence[int], qrels: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Explain how each router routes ``query`` on ``index``.

    Args:
        index: the opened index.
        routers: ``{label: router}``, each built for ``index``.
        query: the query (its id names its judgements in ``qrels``).
        budgets: shards per query to show the choice of (each at most the shard count).
        qrels: ``{doc_id: relevance}`` of this query, or ``None``.

    Returns:
        ``{"query", "n_shards", "n_docs", "budgets", "shards", "routers"}`` and, with ``qrels``,
        ``"relevant"``. ``shards`` has one entry per shard (``shard_id``, ``size``, ``fraction``
        of the collection, ``relevant`` documents with ``qrels``, and per router label its
        ``rank`` (1 = first) and ``score`` (``None`` for a router without scores)). ``routers``
        has per label the ``ranking``, the shards ``chosen`` at each budget, the ``own_cutoff``
        when the router has a cut-off rule of its own (``ranks``, ``taily``, ``NAME@auto``), and
        with ``qrels`` the relevant documents found (``relevant_found``).

    Raises:
        ValueError: a budget outside 1..n_shards, or a ranking that is not a permutation of the shards.
    """
    k = index.n_shards
    bad = [m for m in budgets if not 1 <= m <= k]
    if bad:
        raise ValueError(f"budgets must lie between 1 and the index's {k} shards, got {bad}")
    budgets = sorted(set(budgets))
    sizes = np.asarray(index.shard_sizes, dtype=np.int64)
    relevant: np.ndarray | None = None
    out: dict[str, Any] = {"query": {"query_id": query.query_id, "text": query.text}, "n_shards": k,
                           "n_docs": int(index.n_docs), "budgets": budgets}
    if qrels is not None:
        shard_of = index.shard_of_doc
        relevant = np.zeros(k, dtype=np.int64)
        positives = [d for d, rel in qrels.items() if rel > 0]
        missing = [d for d in positives if d not in shard_of]
        for d in positives:
            if d in shard_of:
                relevant[shard_of[d]] += 1
        out["relevant"] = {"judged_relevant": len(positives), "in_index": len(positives) - len(missing),
                           "not_in_index": missing[:20], "shards_holding": int((relevant > 0).sum())}
    entries: list[dict[str, Any]] = []
    for label, router in routers.items():
        ranking = np.asarray(router.rank([query]))[0]
        if sorted(ranking.tolist()) != list(range(k)):
            raise ValueError(f"router {label!r} returned a ranking that is not a permutation of the {k} shards")
        scores = router.last_scores([query])
        cut = router.cutoffs([query])
        own = [int(s) for s in ranking[: max(1, int(cut[0]))]] if cut is not None else None
        entries.append(_router_entry(label, ranking, None if scores is None else scores[0], budgets, relevant, own))
        fused: Any = router
        while fused is not None and not hasattr(fused, "routers"):  # NAME@auto and auto wrap it
            fused = getattr(fused, "router", None) or getattr(fused, "inner", None)
        details = fused.route_details() if fused is not None else None
        # a gated fusion weighs each query differently: the weights this query got
        used = details[0].get("weights", {}) if details else {}
        for sub, weight in zip(getattr(fused, "routers", ()), getattr(fused, "weights", ()), strict=False):
            weight = used.get(sub.name, weight)
            sub_scores = sub.last_scores([query])  # the fused router scored them just now
            if sub_scores is None:
                continue
            sub_ranking = rank_by_scores(sub_scores)[0]
            entries.append(_router_entry(f"{label}/{sub.name}", sub_ranking, sub_scores[0], budgets, relevant, None,
                                         component_of=label, weight=float(weight)))
    shards: list[dict[str, Any]] = []
    for s in range(k):
        row: dict[str, Any] = {"shard_id": s, "size": int(sizes[s]),
                               "fraction": float(sizes[s] / max(int(index.n_docs), 1))}
        if relevant is not None:
            row["relevant"] = int(relevant[s])
        row["routers"] = {e["name"]: {"rank": e["ranking"].index(s) + 1,
                                      "score": None if e["_scores"] is None else e["_scores"][s]} for e in entries}
        shards.append(row)
    out["shards"] = shards
    out["routers"] = [{key: value for key, value in e.items() if key != "_scores"} for e in entries]
    return out
