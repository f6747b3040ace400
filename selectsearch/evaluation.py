"""Evaluate routes: ir-measures metrics side by side with what they cost.

For each route spec the same queries are routed, searched and scored with any measure
``ir_measures`` parses (``nDCG@10``, ``R@1000``, ``RR@10`` ...). Cost columns per route:
mean shards searched, mean documents scored (documents in the searched shards), fraction of
the collection scored, router / search / total milliseconds per query (mean, p50, p95).

Example:
    >>> rows = evaluate(searcher, queries, qrels, ["all", "centroid@2"], ["nDCG@10", "R@100"])  # doctest: +SKIP
    >>> rows[0]["metrics"]["nDCG@10"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import SelectSearchError
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
    """``{query_id: {doc_id: score}}`` for ir_measures."""
    return {qid: {h.doc_id: h.score for h in r.hits} for qid, r in results.items()}


def cost_summary(results: Mapping[str, SearchResult], n_docs: int) -> dict[str, float]:
    """Mean cost per query over a result set (plus p50/p95 of the total time)."""
    traces = [r.trace for r in results.values()]
    if not traces:
        return {}
    shards = np.array([len(t.shards) for t in traces], dtype=np.float64)
    docs = np.array([t.docs_scored for t in traces], dtype=np.float64)
    route = np.array([t.timings_ms.get("route", 0.0) for t in traces])
    stage_names = sorted({k for t in traces for k in t.timings_ms})
    total = np.array([sum(t.timings_ms.values()) for t in traces])
    out = {
        "queries": float(len(traces)),
        "shards_searched": float(shards.mean()),
        "docs_scored": float(docs.mean()),
        "fraction_scored": float(docs.mean() / n_docs) if n_docs else 0.0,
        "router_ms": float(route.mean()),
    }
    for stage in stage_names:
        if stage != "route":
            out[f"{stage}_ms"] = float(np.mean([t.timings_ms.get(stage, 0.0) for t in traces]))
    out.update({"total_ms": float(total.mean()), "total_ms_p50": float(np.percentile(total, 50)),
                "total_ms_p95": float(np.percentile(total, 95))})
    return out


def evaluate(searcher: SelectiveSearcher, queries: Mapping[str, str], qrels: Qrels,
             routes: Sequence[str | RouteSpec], measures: Sequence[str], *, k: int = 1000, seed: int = 0,
             on_results: Callable[[RouteSpec, dict[str, SearchResult]], None] | None = None,
             progress: bool = False) -> list[dict[str, Any]]:
    """One row ``{"route", "metrics", "cost"}`` per route (budget ranges expanded).

    Args:
        searcher: any searcher on the index; its Lucene readers are shared by every route.
        queries: ``{query_id: text}``; usually the queries of the qrels split.
        qrels: relevance judgements.
        routes: route specs (``all``, ``centroid@2``, ``random@1:4`` ...).
        measures: ir-measures names.
        k: hits retrieved per query (depth of the evaluated ranking).
        on_results: called with each route's raw results (e.g. to write run files).
    """
    import ir_measures

    parsed = parse_measures(measures)
    evaluator = ir_measures.evaluator(parsed, qrels)  # built once, reused for every route
    specs = [s for r in routes for s in (parse_route(r) if isinstance(r, str) else r).expand(searcher.index.n_shards)]
    rows: list[dict[str, Any]] = []
    from tqdm import tqdm

    for spec in tqdm(specs, desc="routes", unit="route", disable=not progress):
        routed = searcher.with_route(spec, qrels=qrels, seed=seed)
        results = routed.batch_search(queries, k=k)
        if on_results is not None:
            on_results(spec, results)
        aggregate = evaluator.calc_aggregate(results_to_run(results))
        metrics = {str(m): float(aggregate.get(m, 0.0)) for m in parsed}
        rows.append({"route": str(spec), "router": spec.name, "budget": spec.budget,
                     "metrics": metrics, "cost": cost_summary(results, searcher.index.n_docs)})
    return rows


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
