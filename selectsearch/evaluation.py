"""Evaluate routes: ir-measures metrics side by side with what they cost.

For each route spec the same queries are routed, searched and scored with any measure
``ir_measures`` parses (``nDCG@10``, ``R@1000``, ``RR@10`` ...). Cost columns per route:
mean shards searched, mean documents scored (documents in the searched shards), fraction of
the collection scored, the largest searched shard (latency proxy), router / search / total
milliseconds per query (mean, p50, p95); for dense and hybrid retrieval also the vectors
scored (FAISS distance computations) and their fraction of the collection. Selective-search
measures: coverage, AUC of the coverage-cost curve, overlap with exhaustive search (by the same
retriever).

Example:
    >>> rows = evaluate(searcher, queries, qrels, ["all", "centroid@2"], ["nDCG@10", "R@100"])  # doctest: +SKIP
    >>> rows[0]["metrics"]["nDCG@10"]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import SelectSearchError
from selectsearch.ranking import strict_scores
from selectsearch.route import RouteSpec, parse_route
from selectsearch.types import Qrels, SearchResult

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.search import SelectiveSearcher

__all__ = ["cost_summary", "evaluate", "format_table", "parse_measures", "results_to_run"]


def parse_measures(names: Sequence[str]) -> list[Any]:
    """Parse measure strings with ir_measures (raises a clear error on a bad one)."""
    import ir_measures

    out = []
    for name in names:
        try:
            out.append(ir_measures.parse_measure(name))
        except (ValueError, NameError, SyntaxError, TypeError) as exc:
            raise SelectSearchError(
                f"unknown measure {name!r} ({exc}); use ir-measures names such as nDCG@10, R@100, RR@10, AP"
            ) from exc
    return out


def results_to_run(results: Mapping[str, SearchResult]) -> dict[str, dict[str, float]]:
    """``{query_id: {doc_id: score}}`` for ir_measures, the scores strictly decreasing down each
    returned ranking (:func:`~selectsearch.ranking.strict_scores`): ir-measures' providers break
    tied scores in different orders, and this makes all of them score the ranking we return."""
    return {qid: dict(zip([h.doc_id for h in r.hits], strict_scores([h.score for h in r.hits]), strict=True))
            for qid, r in results.items()}


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0


def cost_summary(results: Mapping[str, SearchResult], n_docs: int, shard_sizes: np.ndarray | None = None
                 ) -> dict[str, float]:
    """Mean cost per query over a result set, with p50/p95 of the stage and total times.

    ``largest_shard`` (mean size of the largest searched shard) is the latency proxy when shards
    are searched in parallel on separate machines.
    """
    traces = [r.trace for r in results.values()]
    if not traces:
        return {}
    shards = np.array([len(t.shards) for t in traces], dtype=np.float64)
    docs = np.array([t.docs_scored for t in traces], dtype=np.float64)
    out = {
        "queries": float(len(traces)),
        "shards_searched": float(shards.mean()),
        "docs_scored": float(docs.mean()),
        "fraction_scored": float(docs.mean() / n_docs) if n_docs else 0.0,
    }
    vectors = [t.extra.get("vectors_scored") for t in traces]
    if all(isinstance(v, (int, float)) for v in vectors):
        mean_vectors = float(np.mean(np.asarray(vectors, dtype=np.float64)))
        out["vectors_scored"] = mean_vectors
        out["fraction_vectors_scored"] = mean_vectors / n_docs if n_docs else 0.0
    if shard_sizes is not None:
        largest = np.array([shard_sizes[t.shards].max() if t.shards else 0 for t in traces], dtype=np.float64)
        out["largest_shard"] = float(largest.mean())
        out["largest_shard_fraction"] = float(largest.mean() / n_docs) if n_docs else 0.0
    stages = sorted({k for t in traces for k in t.timings_ms})
    for stage in stages:
        values = np.array([t.timings_ms.get(stage, 0.0) for t in traces])
        key = "router" if stage == "route" else stage
        out[f"{key}_ms"] = float(values.mean())
        out[f"{key}_ms_p50"] = _pct(values, 50)
        out[f"{key}_ms_p95"] = _pct(values, 95)
    total = np.array([sum(t.timings_ms.values()) for t in traces])
    out.update({"total_ms": float(total.mean()), "total_ms_p50": _pct(total, 50), "total_ms_p95": _pct(total, 95)})
    return out


def overlap_with(results: Mapping[str, SearchResult], reference: Mapping[str, SearchResult],
                 depths: Sequence[int] = (10, 100, 1000)) -> dict[str, float]:
    """Mean fraction of the reference (exhaustive) top-k that the results also retrieve."""
    out = {}
    for depth in depths:
        fractions = []
        for qid, ref in reference.items():
            ref_ids = {h.doc_id for h in ref.hits[:depth]}
            if not ref_ids or qid not in results:
                continue
            got = {h.doc_id for h in results[qid].hits[:depth]}
            fractions.append(len(ref_ids & got) / len(ref_ids))
        if fractions:
            out[f"overlap@{depth}"] = float(np.mean(fractions))
    return out


def evaluate(searcher: SelectiveSearcher, queries: Mapping[str, str], qrels: Qrels,
             routes: Sequence[str | RouteSpec], measures: Sequence[str], *, k: int = 1000, seed: int = 0,
             on_results: Callable[[RouteSpec, dict[str, SearchResult]], None] | None = None,
             router_options: Mapping[str, Any] | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """One row ``{"route", "router", "budget", "retriever", "metrics", "cost"}`` per route and budget.

    Each router ranks the shards of every query ONCE (timed; that time is each row's router
    cost); budgets of a range (``redde@1:16``) then search the top-m shards of that ranking.
    Besides the ir-measures ``measures``, ``metrics`` holds the selective-search measures:
    ``coverage`` (fraction of relevant (query, doc) pairs whose document is in a searched shard),
    ``coverage_auc`` (AUC x100 of the router's coverage-cost curve over all budgets) and
    ``overlap@10/100/1000`` (fraction of exhaustive search's top-k retrieved).

    Args:
        searcher: any searcher on the index; its Lucene readers are shared by every route.
        queries: ``{query_id: text}``; usually the queries of the qrels split.
        qrels: relevance judgements.
        routes: route specs (``all``, ``centroid@2``, ``random@1:4``, ``ranks`` ...).
        measures: ir-measures names.
        k: hits retrieved per query (depth of the evaluated ranking).
        on_results: called with each route's raw results (e.g. to write run files).
        router_options: extra options for the router factories (e.g. ``csi_rate``).
    """
    import ir_measures

    from selectsearch.route import make_router
    from selectsearch.search import as_queries
    from selectsearch.selective_metrics import coverage_curve, partition_balance

    index = searcher.index
    parsed = parse_measures(measures)
    evaluator = ir_measures.evaluator(parsed, qrels)  # built once, reused for every route
    qs = as_queries(queries)
    row_of_query = {q.query_id: i for i, q in enumerate(qs)}
    shard_of = index.shard_of_doc
    pairs = [(row_of_query[qid], shard_of[d]) for qid, rels in qrels.items() if qid in row_of_query
             for d, rel in rels.items() if rel > 0 and d in shard_of]
    pair_query = np.array([p[0] for p in pairs], dtype=np.int64)
    pair_shard = np.array([p[1] for p in pairs], dtype=np.int64)
    balance = partition_balance(index.shard_sizes)
    exhaustive = searcher.with_route("all").search_selected(qs, [list(range(index.n_shards))] * len(qs), k=k)

    specs = [s for r in routes for s in (parse_route(r) if isinstance(r, str) else r).expand(index.n_shards)]
    by_router: dict[str, list[RouteSpec]] = {}
    for spec in specs:
        by_router.setdefault(spec.name, []).append(spec)
    rows_by_spec: dict[str, dict[str, Any]] = {}
    from tqdm import tqdm

    bar = tqdm(total=len(specs), desc="routes", unit="route", disable=not progress)
    for name, family in by_router.items():
        router = make_router(family[0], index, qrels=qrels, seed=seed, **dict(router_options or {}))
        router.select(qs[:1], 1)  # warm-up: lazy loads and JIT are not per-query costs
        t0 = time.perf_counter()
        ranking = router.rank(qs)
        cut = router.cutoffs(qs) if any(s.budget is None for s in family) else None
        route_ms = (time.perf_counter() - t0) * 1000.0 / max(len(qs), 1)
        curve = coverage_curve(ranking, pair_query, pair_shard, index.shard_sizes) if len(pairs) else None
        for spec in family:
            if spec.budget is not None:
                selected = [r[: spec.budget] for r in ranking.tolist()]
            elif cut is None:
                selected = [list(range(index.n_shards))] * len(qs)
            else:
                selected = [r[: max(1, int(c))] for r, c in zip(ranking.tolist(), cut.tolist(), strict=True)]
            if name == "all":
                results = {qid: r._replace(trace=_retag(r.trace, str(spec), route_ms)) for qid, r in exhaustive.items()}
            else:
                results = searcher.search_selected(qs, selected, k=k, route_ms=route_ms, route_name=str(spec))
            if on_results is not None:
                on_results(spec, results)
            aggregate = evaluator.calc_aggregate(results_to_run(results))
            metrics = {str(m): float(aggregate.get(m, 0.0)) for m in parsed}
            if len(pairs):
                shard_sets = [set(sel) for sel in selected]
                metrics["coverage"] = float(np.mean([s in shard_sets[q] for q, s in pairs]))
                if curve is not None and name != "all":  # 'all' has no shard order to score
                    metrics["coverage_auc"] = curve.auc
            metrics.update(overlap_with(results, exhaustive, [d for d in (10, 100, 1000) if d <= k]))
            rows_by_spec[str(spec)] = {"route": str(spec), "router": spec.name, "budget": spec.budget,
                                       "retriever": searcher.retriever,
                                       **({"fusion": searcher.fusion.describe()} if searcher.retriever == "hybrid"
                                          else {}),
                                       "metrics": metrics,
                                       "cost": cost_summary(results, index.n_docs, index.shard_sizes),
                                       "balance": balance}
            bar.update(1)
    bar.close()
    return [rows_by_spec[str(spec)] for spec in specs]


def _retag(trace: Any, route: str, route_ms: float) -> Any:
    import dataclasses

    return dataclasses.replace(trace, route=route, timings_ms={**trace.timings_ms, "route": route_ms})


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of evaluation rows (metrics, then cost)."""
    if not rows:
        return "(no rows)"
    metric_names = list(rows[0]["metrics"])
    cost_cols = [("shards", "shards_searched", "{:.2f}"), ("docs", "docs_scored", "{:.0f}"),
                 ("frac", "fraction_scored", "{:.3f}"), ("route_ms", "router_ms", "{:.2f}"),
                 ("search_ms", "search_ms", "{:.2f}")]
    header = ["route", *metric_names, *[c[0] for c in cost_cols]]
    lines = []
    for row in rows:
        cells = [row["route"], *[f"{row['metrics'][m]:.4f}" for m in metric_names],
                 *[fmt.format(row["cost"].get(key, float("nan"))) for _, key, fmt in cost_cols]]
        lines.append(cells)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]

    def fmt_line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(padded)

    return "\n".join([fmt_line(header), *(fmt_line(cells) for cells in lines)])
