"""The router registry: every router's name, factory, description and options, in one place.

Route specs (``redde@4``), option checking (``--router-option``) and the CLI's help read this
registry; nothing else names routers. Importing it imports no router module: each factory is a
``"module:function"`` string imported when the router is built.

A factory is called with its options and with those of ``spec``, ``index``, ``qrels``, ``seed``,
``n_shards`` (of the index) and ``fused_defaults`` (options of the run for the routers a router
fuses) that it names as parameters, and returns a :class:`~selectsearch.route.base.Router`. Each
entry's ``meta`` says what route specs it takes (``budget``: ``"required"`` (the default),
``"optional"`` for routers with their own cut-off, ``"none"`` for ``all``) and whether it scores
shards so that ``hybrid`` can fuse it (``scores``, default true).

Add your own router in one line (or through the ``selectsearch.routers`` entry-point group)::

    from selectsearch.route import register_router
    register_router("largest", LargestFirst)     # a Router subclass, or a factory function

Example:
    >>> "redde" in ROUTERS and ROUTERS["redde"].param_names(ROUTERS.context)
    ('csi_rate', 'depth')
"""

from __future__ import annotations

from typing import Any

from selectsearch.errors import RouteSpecError
from selectsearch.registry import Param, Registry

__all__ = ["ROUTERS", "ROUTER_CONTEXT", "fusable", "register_router"]

#: what a router factory may ask for by parameter name (never options)
ROUTER_CONTEXT = ("spec", "index", "qrels", "seed", "n_shards", "fused_defaults")

#: every router, built in or added (by :func:`register_router` or the ``selectsearch.routers`` entry points)
ROUTERS = Registry("router", group="selectsearch.routers", context=ROUTER_CONTEXT, error=RouteSpecError)


def register_router(name: str, factory: Any = None, *, description: str | None = None,
                    params: list[Param] | None = None, replace: bool = False, **meta: Any) -> Any:
    """Register a router as ``name`` (usable in route specs ``name@M``); a decorator without ``factory``.

    Args:
        name: lower-case route-spec name (``[a-z][a-z0-9_-]*``).
        factory: a :class:`~selectsearch.route.base.Router` subclass, a function returning a router,
            a ready router object, or a ``"module:attr"`` string (imported when first built). It is
            called with the options the user gives and with the context it names as parameters
            (``index``, ``n_shards``, ``qrels``, ``seed``, ``spec``).
        description: one line for ``--help`` (default: the factory's docstring's first line).
        params: declared options (default: the factory's keyword parameters that are not context).
        replace: replace a router registered under ``name`` before.
        meta: ``budget="optional"`` for a router with its own cut-off, ``scores=False`` for one
            ``hybrid`` cannot fuse.

    Example:
        >>> @register_router("largest", description="largest shards first")  # doctest: +SKIP
        ... class LargestFirst(Router):
        ...     def __init__(self, index):
        ...         self.order = np.argsort(-index.shard_sizes, kind="stable").astype(np.int32)
        ...     def rank(self, queries):
        ...         return np.tile(self.order, (len(queries), 1))
    """
    return ROUTERS.register(name, factory, description=description, params=params, replace=replace, **meta)


def fusable(name: str) -> bool:
    """Whether ``hybrid`` can fuse router ``name`` (it scores every shard)."""
    return bool(ROUTERS[name].meta.get("scores", True))


_CSI = (Param("csi_rate", float, None, "fraction of each shard sampled into the central sample index (default: "
               "the CSI the index has, else 0.02)"),)
_SAMPLE = "selectsearch.route.sample:make_sample_router"
_STATS = "selectsearch.route.stats:make_stats_router"

register_router("all", "selectsearch.route.simple:ExhaustiveRouter", description="exhaustive: every shard",
                params=[], budget="none", scores=False)
register_router("random", "selectsearch.route.simple:RandomRouter", description="seeded random shards (per query)",
                params=[], scores=False)
register_router("centroid", "selectsearch.route.simple:make_centroid_router", params=[],
                description="nearest k-means centroids in the partition's feature space")
register_router("oracle", "selectsearch.route.simple:make_oracle_router", params=[], scores=False,
                description="shards holding most relevant documents (evaluation only, needs qrels)")
register_router("redde", _SAMPLE, description="ReDDE on the central sample index (Si & Callan 2003)",
                params=[*_CSI, Param("depth", int, 50, "top sampled documents that vote")])
register_router("ranks", _SAMPLE, description="Rank-S on the central sample index (Kulkarni et al. 2012)",
                budget="optional",
                params=[*_CSI, Param("depth", int, 100, "top sampled documents that vote"),
                        Param("base", float, 3.0, "vote decay: a document at rank r votes base^-r"),
                        Param("threshold", float, 1e-4, "cut-off without a budget: shards scoring at least this")])
register_router("taily", _STATS, description="Taily: Gamma-fitted shard score distributions (Aly et al. 2013)",
                budget="optional",
                params=[Param("taily_v", float, 50.0, "documents wanted above the collection cut-off score"),
                        Param("taily_n_min", float, 1.0,
                              "cut-off without a budget: shards expected to hold this many documents")])
register_router("cori", _STATS, description="CORI on shard term statistics (Callan et al. 1995)",
                params=[Param("cori_belief", float, 0.4, "default belief b")])
register_router("mico", "selectsearch.route.mico:make_mico_router",
                description="MICO query-routing head (learned from search logs)",
                params=[Param("mico_model", str, None, "MICO model folder (default: the index's own)")])
register_router("distilled", "selectsearch.route.distilled:make_distilled_router",
                description="ReAugKD-distilled student of the MICO router",
                params=[Param("model", str, None, "student folder (default INDEX/distilled-router)"),
                        Param("retrieval", bool, True, "0: the student alone, without its KB")])
register_router("knn", "selectsearch.route.knn:make_knn_router",
                description="k nearest logged queries vote with their clicked documents' shards",
                params=[Param("logs", str, "train", "qrels split of data, or a click-log file"),
                        Param("data", str, None, "BEIR folder of logs (default: the index's corpus)"),
                        Param("k", int, 100, "logged queries that vote"),
                        Param("temperature", float, 0.1, "softmax temperature of their similarities"),
                        Param("encoder", str, None, "query encoder (default adapted: a static table fitted to "
                              "the index; minilm-static unfitted; all-MiniLM-L6-v2 the transformer)")])
register_router("hybrid", "selectsearch.route.hybrid:make_hybrid_router",
                description="weighted sum of standardised router scores (default mico + cori)", fuses=True,
                scores=False,
                params=[Param("routers", str, None, "comma-separated routers to fuse (default: tuned, or mico,cori)"),
                        Param("weights", str, None, "comma-separated weights, one per router (default: equal)"),
                        Param("gating", str, "on", "off: ignore the tuned per-query gating (fixed tuned weights)"),
                        Param("ranker", str, "on", "off: ignore the tuned shard ranker (the weights and gating rank)")])
register_router("auto", "selectsearch.route.auto:make_auto_route", budget="none", scores=False,
                description="the index's tuned fused router with a per-query budget (hybrid@auto); cori@auto untuned",
                params=[Param("target", float, None, "coverage target of the per-query budget (default 0.9)"),
                        Param("max_shards", int, None, "most shards per query (default half the shards)")])
