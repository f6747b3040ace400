"""Evaluate routes: ir-measures metrics side by side with what they cost.

For each route spec the same queries are routed, searched and scored with any measure
``ir_measures`` parses (``nDCG@10``, ``R@1000``, ``RR@10`` ...). Cost columns per route:
mean shards searched, mean documents scored (documents in the searched shards), fraction of
the collection scored, the largest searched shard (latency proxy), router / search / total
milliseconds per query (mean, p50, p95); for dense and hybrid retrieval also the vectors
scored (FAISS distance computations) and their fraction of the collection. Selective-search
measures: coverage, AUC of the coverage-cost curve, overlap with exhaustive search (by the same
retriever). Per query: every ir-measures value (``per_query=True``), a bootstrap interval of each
mean, and against a baseline route (``all`` by default) paired t-test and Wilcoxon p-values,
Holm-corrected over the routes, win/tie/loss counts and a "not significantly worse" verdict
(:mod:`selectsearch.significance`).

Example:
    >>> rows = evaluate(searcher, queries, qrels, ["all", "centroid@2"], ["nDCG@10", "R@100"])  # doctest: +SKIP
    >>> rows[0]["metrics"]["nDCG@10"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from selectsearch.errors import SelectSearchError
from selectsearch.ranking import strict_scores
from selectsearch.route import Router, RouteSpec, as_route
from selectsearch.significance import bootstrap_ci
from selectsearch.types import Hit, HitList, Qrels, SearchResult

if TYPE_CHECKING:  # pragma: no cover
    from selectsearch.search import SelectiveSearcher

__all__ = ["check_cutoffs", "cost_summary", "evaluate", "format_table", "parse_measures", "per_query_lines",
           "results_to_run", "shards_histogram"]

log = logging.getLogger(__name__)


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


def check_cutoffs(measures: Sequence[Any], k: int) -> None:
    """Refuse ``k`` below 1, and a measure whose cutoff is deeper than the ``k`` hits retrieved
    (``R@1000`` on 100 hits would print R@100's value under R@1000's name).

    Raises:
        SelectSearchError: naming the measure and the fix.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SelectSearchError(f"k (hits retrieved per query) must be an integer of at least 1, got {k!r}")
    deep = {str(m): int(m.params["cutoff"]) for m in measures if int(getattr(m, "params", {}).get("cutoff") or 0) > k}
    if deep:
        raise SelectSearchError(f"{', '.join(deep)} needs the top {max(deep.values())} hits but only k={k} are "
                                f"retrieved per query (it would report a @{k} value); raise k (--k "
                                f"{max(deep.values())}) or drop {', '.join(deep)}")


def results_to_run(results: Mapping[str, SearchResult]) -> dict[str, dict[str, float]]:
    """``{query_id: {doc_id: score}}`` for ir_measures, the scores strictly decreasing down each
    returned ranking (:func:`~selectsearch.ranking.strict_scores`): ir-measures' providers break
    tied scores in different orders, and this makes all of them score the ranking we return."""
    return {qid: dict(zip(*_columns(r.hits), strict=True)) for qid, r in results.items()}


def _columns(hits: Sequence[Hit]) -> tuple[list[str], list[float]]:
    """Doc ids and strictly decreasing scores of a ranking (a HitList's columns, without Hit objects)."""
    if isinstance(hits, HitList):
        return hits.doc_ids, strict_scores(hits.scores)
    return [h.doc_id for h in hits], strict_scores([h.score for h in hits])


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
        # the distribution of shards per query: constant for a fixed budget, spread by a cut-off rule
        "shards_searched_min": float(shards.min()),
        "shards_searched_p10": _pct(shards, 10),
        "shards_searched_p50": _pct(shards, 50),
        "shards_searched_p90": _pct(shards, 90),
        "shards_searched_max": float(shards.max()),
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
             routes: Sequence[str | RouteSpec | Router | type[Router]], measures: Sequence[str], *, k: int = 1000,
             seed: int = 0,
             on_results: Callable[[RouteSpec, dict[str, SearchResult]], None] | None = None,
             router_options: Mapping[str, Any] | None = None, progress: bool = False,
             all_judged: bool = False, baseline: str | None = "auto", test: str = "t", alpha: float = 0.05,
             per_query: bool = False, postings: bool = False, setup: Mapping[str, Any] | None = None,
             n_resamples: int = 1000) -> list[dict[str, Any]]:
    """One row ``{"route", "router", "budget", "retriever", "metrics", "cost"}`` per route and budget.

    Which queries count: the queries given that have judgements in ``qrels`` (the *evaluated*
    queries). Metrics are their mean, and cost is over the same queries. Given queries without
    judgements are left out, and judged queries absent from ``queries`` are not scored, both with a
    warning that gives the counts; a warning also counts the judged documents that are not in the
    index (relevant documents no route can find). With ``all_judged=True`` metrics average over
    every query of ``qrels`` instead, an absent query scoring 0 (``trec_eval -c``).

    Budgets: a sweep (``centroid@1:16``) keeps the budgets the index can run, with a warning; a
    single budget above the shard count is refused (see
    :func:`~selectsearch.route.expand_for_index`). Router options are checked for the whole run
    before anything is searched (:func:`~selectsearch.route.split_router_options`).

    Each router ranks the shards of every query ONCE (timed; that time is each row's router
    cost); budgets of a range (``redde@1:16``) then search the top-m shards of that ranking
    (:meth:`~selectsearch.search.SelectiveSearcher.route_budgets`). A per-query budget
    (``hybrid@auto:0.9``, see :mod:`selectsearch.route.budget`) is routed on its own (its
    cut-off rule is part of its router) and its row adds ``auto`` (target, maximum, calibration).
    Every row has ``shards_histogram`` (queries per number of shards searched) and, in ``cost``,
    the distribution of shards searched (``shards_searched_min/p10/p50/p90/max``).
    Besides the ir-measures ``measures``, ``metrics`` holds the selective-search measures:
    ``coverage`` (fraction of relevant (query, doc) pairs whose document is in a searched shard),
    ``coverage_auc`` (AUC x100 of the router's coverage-cost curve over all budgets) and
    ``overlap@10/100/1000`` (fraction of exhaustive search's top-k retrieved).

    Per query: each row's ``ci`` holds a 95% percentile bootstrap interval over queries of every
    ir-measures mean (``n_resamples``, seeded by ``seed``); with ``per_query=True`` its
    ``per_query`` holds ``{measure: {query_id: value}}`` (their means are ``metrics``). Against a
    ``baseline`` route (``"auto"``: ``all`` when it is evaluated; ``None``: none) every other row
    gets ``significance`` (:func:`selectsearch.significance.compare_routes`: paired t-test and
    Wilcoxon, Holm-corrected over the routes compared, win/tie/loss, ``verdict`` from ``test``
    at ``alpha``, ``not_worse``) and, per measure, ``ratio`` and ``ratio_ci`` (the route's mean
    over the baseline's, with a paired bootstrap interval).

    Cost also holds the process CPU time per query (``route_cpu_ms``, ``search_cpu_ms``,
    ``cpu_ms``: every thread of the process, the JVM's included, over the batch, divided by its
    queries) and, with ``postings=True``, ``postings``: the postings of each query's distinct
    terms in its searched shards (the work of a term-at-a-time BM25 evaluation; Lucene's dynamic
    pruning skips part of it), from the index's term statistics (built on first use), and
    ``fraction_postings`` (of exhaustive search's). Every row has ``setup``: collection, index,
    shards, partitioner, documents, queries evaluated, k, retriever, plus ``setup`` given (e.g.
    the split), which ``selectsearch plot`` turns into a title and caption.

    Args:
        searcher: any searcher on the index; its Lucene readers are shared by every route.
        queries: ``{query_id: text}``; usually the queries of the qrels split.
        qrels: relevance judgements.
        routes: route specs (``all``, ``centroid@2``, ``random@1:4``, ``ranks`` ...), or router
            objects or classes (:func:`~selectsearch.route.as_route`).
        measures: ir-measures names.
        k: hits retrieved per query (depth of the evaluated ranking); at least 1 and at least
            every measure's cutoff.
        on_results: called with each route's raw results (e.g. to write run files).
        router_options: extra options for the router factories (e.g. ``csi_rate``).
        all_judged: average metrics over every query of ``qrels`` (absent ones score 0).
        baseline: route the others are tested against (``"auto"``: ``all`` if evaluated; ``None``: no tests).
        test: ``"t"`` (paired t-test) or ``"wilcoxon"``: the test whose Holm-adjusted p-value gives the verdict.
        alpha: significance level of the verdict.
        per_query: keep every query's measure values in the rows (``per_query``).
        postings: count the postings each query scores (``cost.postings``; needs Lucene).
        setup: fields added to every row's ``setup`` (e.g. ``{"split": "test"}``).
        n_resamples: bootstrap resamples of the intervals.

    Raises:
        SelectSearchError: bad ``k`` or measure, no judged query, an unknown router option, a
            budget the index cannot run, or a baseline that is not among the routes.
    """
    import ir_measures

    from selectsearch.route import expand_for_index, make_router, split_router_options
    from selectsearch.route.budget import make_auto_router
    from selectsearch.search import as_queries
    from selectsearch.selective_metrics import coverage_curve, partition_balance

    index = searcher.index
    parsed = parse_measures(measures)
    check_cutoffs(parsed, k)
    specs = [s for r in routes for s in expand_for_index(as_route(r), index.n_shards)]
    baseline_route = _baseline_route(baseline, [str(s) for s in specs], test, alpha)
    options = dict(router_options or {})
    run_names = {spec.name for spec in specs}
    split_router_options(run_names, options)  # fail fast, before anything is searched
    qs = _judged_queries(as_queries(queries), qrels, index.shard_of_doc, all_judged=all_judged)
    scored = qrels if all_judged else {q.query_id: qrels[q.query_id] for q in qs}
    evaluator = ir_measures.evaluator(parsed, scored)  # built once, reused for every route
    row_of_query = {q.query_id: i for i, q in enumerate(qs)}
    shard_of = index.shard_of_doc
    pairs = [(row_of_query[qid], shard_of[d]) for qid, rels in qrels.items() if qid in row_of_query
             for d, rel in rels.items() if rel > 0 and d in shard_of]
    pair_query = np.array([p[0] for p in pairs], dtype=np.int64)
    pair_shard = np.array([p[1] for p in pairs], dtype=np.int64)
    balance = partition_balance(index.shard_sizes)
    by_router: dict[str, list[RouteSpec]] = {}
    for spec in specs:  # fixed budgets of one router share its ranking; each per-query budget is its own router
        by_router.setdefault(spec.router_key, []).append(spec)
    # every router is built before anything is searched: a bad option or model fails the run at once
    base = {name: make_router(replace(next(s for s in specs if s.name == name), auto=None), index, qrels=qrels,
                              seed=seed, run=run_names, **options)
            for name in dict.fromkeys(spec.name for spec in specs)}
    routers = {key: base[family[0].name] if family[0].auto is None
               else make_auto_router(base[family[0].name], family[0].auto, index)
               for key, family in by_router.items()}
    cpu = time.process_time()
    exhaustive = searcher.with_route("all").search_selected(qs, [list(range(index.n_shards))] * len(qs), k=k)
    exhaustive_cpu_ms = _per_query_ms(time.process_time() - cpu, len(qs))
    query_postings = _query_postings(index, qs) if postings else None
    row_setup = {**_setup(index, searcher.retriever, len(qs), k), **dict(setup or {})}
    per_query_of: dict[str, dict[str, dict[str, float]]] = {}
    rows_by_spec: dict[str, dict[str, Any]] = {}
    from tqdm import tqdm

    bar = tqdm(total=len(specs), desc="routes", unit="route", disable=not progress)
    for name, family in by_router.items():
        routed = searcher.with_router(routers[name])
        routed.router.select(qs[:1], 1)  # warm-up: lazy loads and JIT are not per-query costs
        cpu = time.process_time()
        ranking, selections, route_ms = routed.route_budgets(qs, [spec.budget for spec in family])
        route_cpu_ms = _per_query_ms(time.process_time() - cpu, len(qs))
        curve = coverage_curve(ranking, pair_query, pair_shard, index.shard_sizes) if len(pairs) else None
        for spec, selected in zip(family, selections, strict=True):
            if name == "all":
                results = {qid: r._replace(trace=_retag(r.trace, str(spec), route_ms)) for qid, r in exhaustive.items()}
                search_cpu_ms = exhaustive_cpu_ms
            else:
                cpu = time.process_time()
                results = routed.search_selected(qs, selected, k=k, route_ms=route_ms, route_name=str(spec))
                search_cpu_ms = _per_query_ms(time.process_time() - cpu, len(qs))
            if on_results is not None:
                on_results(spec, results)
            run = results_to_run(results)
            aggregate = evaluator.calc_aggregate(run)
            metrics = {str(m): float(aggregate.get(m, 0.0)) for m in parsed}
            values = _per_query_values(evaluator, run, parsed, scored)
            per_query_of[str(spec)] = values
            if len(pairs):
                shard_sets = [set(sel) for sel in selected]
                metrics["coverage"] = float(np.mean([s in shard_sets[q] for q, s in pairs]))
                if curve is not None and name != "all":  # 'all' has no shard order to score
                    metrics["coverage_auc"] = curve.auc
            metrics.update(overlap_with(results, exhaustive, [d for d in (10, 100, 1000) if d <= k]))
            rows_by_spec[str(spec)] = {"route": str(spec), "router": spec.name, "budget": spec.budget,
                                       **({"auto": _auto_fields(routers[name])} if spec.auto is not None else {}),
                                       "retriever": searcher.retriever,
                                       **({"fusion": searcher.fusion.describe()} if searcher.retriever == "hybrid"
                                          else {}),
                                       "metrics": metrics,
                                       "ci": {m: list(bootstrap_ci(list(v.values()), n_resamples=n_resamples,
                                                                   seed=seed)) for m, v in values.items()},
                                       "cost": {**cost_summary(results, index.n_docs, index.shard_sizes),
                                                **_cpu_and_postings(route_cpu_ms, search_cpu_ms, selected,
                                                                    query_postings)},
                                       "shards_histogram": shards_histogram(results),
                                       "balance": balance, "setup": row_setup,
                                       **({"per_query": values} if per_query else {})}
            bar.update(1)
    bar.close()
    if baseline_route is not None:
        _add_significance(rows_by_spec, per_query_of, baseline_route, [str(m) for m in parsed], test=test,
                          alpha=alpha, n_resamples=n_resamples, seed=seed)
    return [rows_by_spec[str(spec)] for spec in specs]


def _baseline_route(baseline: str | None, routes: Sequence[str], test: str, alpha: float) -> str | None:
    """The baseline route of a run (``"auto"``: ``all`` when evaluated), checked before anything runs."""
    from selectsearch.significance import TESTS

    if test not in TESTS:
        raise SelectSearchError(f"unknown significance test {test!r}; one of {', '.join(TESTS)}")
    if not 0.0 < alpha < 1.0:
        raise SelectSearchError(f"the significance level must be in (0, 1), got {alpha}")
    if baseline is None or baseline == "none":
        return None
    if baseline == "auto":
        return "all" if "all" in routes else None
    try:
        baseline = str(as_route(baseline))  # written as the rows name it (centroid@2, not CENTROID@2)
    except SelectSearchError as exc:
        raise SelectSearchError(f"baseline {baseline!r}: {exc}") from exc
    if baseline not in routes:
        raise SelectSearchError(f"baseline {baseline!r} is not among the routes evaluated ({', '.join(routes)}); "
                                f"add --route {baseline}, or pass --baseline none")
    return baseline


def _per_query_ms(seconds: float, n: int) -> float:
    return seconds * 1000.0 / max(n, 1)


def _per_query_values(evaluator: Any, run: Mapping[str, Mapping[str, float]], parsed: Sequence[Any],
                      scored: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``{measure: {query_id: value}}`` over the queries the aggregate averages (absent ones 0,
    as ir-measures scores a judged query without hits)."""
    out = {str(m): dict.fromkeys(scored, 0.0) for m in parsed}
    for metric in evaluator.iter_calc(run):
        name = str(metric.measure)
        if name in out and metric.query_id in out[name]:
            out[name][metric.query_id] = float(metric.value)
    return out


def _setup(index: Any, retriever: str, n_queries: int, k: int) -> dict[str, Any]:
    """What a figure's title and caption say about the run (``setup`` of every row)."""
    from pathlib import Path

    manifest = index.manifest
    sources = [Path(s).name for s in manifest.corpus.sources]
    return {"collection": "+".join(sources) if sources else None, "index": Path(index.path).name,
            "n_shards": index.n_shards, "partitioner": manifest.partition_kind or manifest.build.get("partitioner"),
            "n_docs": index.n_docs, "queries": n_queries, "k": k, "retriever": retriever}


def _query_postings(index: Any, qs: Sequence[Any]) -> np.ndarray:
    """``(n_queries, K)`` postings of each query's distinct analysed terms in each shard."""
    from selectsearch.index.termstats import Analyzer, ensure_term_stats

    if not index.has_backend("lucene"):
        raise SelectSearchError(f"postings are counted from Lucene term statistics, which {index.path} (built "
                                "without Lucene) does not have; evaluate without --postings")
    stats = ensure_term_stats(index)
    analyzer = Analyzer(stats.analyzer_class)
    out = np.zeros((len(qs), index.n_shards), dtype=np.float64)
    for i, q in enumerate(qs):
        ids = np.unique(stats.term_ids(analyzer(q.text)))
        if len(ids):
            out[i] = stats.df_columns(ids).sum(axis=1)
    return out


def _cpu_and_postings(route_cpu_ms: float, search_cpu_ms: float, selected: Sequence[Sequence[int]],
                      query_postings: np.ndarray | None) -> dict[str, float]:
    out = {"route_cpu_ms": route_cpu_ms, "search_cpu_ms": search_cpu_ms, "cpu_ms": route_cpu_ms + search_cpu_ms}
    if query_postings is not None:
        touched = np.array([query_postings[i, list(sel)].sum() for i, sel in enumerate(selected)], dtype=np.float64)
        everything = float(query_postings.sum(axis=1).mean())
        out["postings"] = float(touched.mean()) if len(touched) else 0.0
        out["fraction_postings"] = out["postings"] / everything if everything else 0.0
    return out


def _add_significance(rows: Mapping[str, dict[str, Any]], per_query: Mapping[str, Mapping[str, Mapping[str, float]]],
                      baseline: str, measures: Sequence[str], *, test: str, alpha: float, n_resamples: int,
                      seed: int) -> None:
    """Each row but the baseline's gets ``significance`` (tests, Holm, verdict, ratio and its interval)."""
    from selectsearch.significance import compare_routes, ratio_ci

    compared = compare_routes(per_query, baseline, measures, alpha=alpha, test=test)
    for route, sig in compared.items():
        for measure, c in sig["measures"].items():
            qids = sorted(per_query[baseline][measure])
            x = [per_query[route][measure][q] for q in qids]
            y = [per_query[baseline][measure][q] for q in qids]
            c["ratio"] = c["mean"] / c["baseline_mean"] if c["baseline_mean"] else None
            found = ratio_ci(x, y, n_resamples=n_resamples, seed=seed)
            c["ratio_ci"] = list(found) if found is not None else None
        rows[route]["significance"] = sig


def per_query_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Tab-separated ``route, query_id, measure, value`` lines (header first) of rows evaluated with
    ``per_query=True``: one line per query, route and measure.

    Raises:
        SelectSearchError: a row without per-query values.
    """
    lines = ["route\tquery_id\tmeasure\tvalue"]
    for row in rows:
        if "per_query" not in row:
            raise SelectSearchError(f"row {row['route']} has no per-query values; evaluate with per_query=True")
        for measure, values in row["per_query"].items():
            lines += [f"{row['route']}\t{qid}\t{measure}\t{value!r}" for qid, value in values.items()]
    return lines


def _auto_fields(router: Any) -> dict[str, Any]:
    """What a per-query budget row ran with: target, maximum, and whether its calibration was fitted."""
    cal = router.calibration
    return {"target": router.target, "max_shards": router.max_shards, "calibrated": cal.fitted,
            "inv_temperature": cal.inv_temperature, "uniform": cal.uniform, "scale": cal.scale}


def shards_histogram(results: Mapping[str, SearchResult]) -> dict[str, int]:
    """Queries per number of shards searched, ``{"1": 120, "2": 60, ...}`` (JSON keys are strings)."""
    counts: dict[int, int] = {}
    for r in results.values():
        counts[len(r.trace.shards)] = counts.get(len(r.trace.shards), 0) + 1
    return {str(m): counts[m] for m in sorted(counts)}


def _judged_queries(qs: list[Any], qrels: Qrels, shard_of_doc: Mapping[str, int], *, all_judged: bool
                    ) -> list[Any]:
    """The queries with judgements, warning (with counts) about what the metrics leave out."""
    given = {q.query_id for q in qs}
    judged = [q for q in qs if q.query_id in qrels]
    if not judged:
        raise SelectSearchError(f"none of the {len(qs)} queries has judgements in the qrels ({len(qrels)} judged "
                                "queries); check the split (--split) or the --queries/--qrels pair")
    if len(judged) < len(qs):
        log.warning("%d of %d queries have no judgements; they are left out of metrics and cost (e.g. %s)",
                    len(qs) - len(judged), len(qs), ", ".join([q.query_id for q in qs if q.query_id not in qrels][:5]))
    absent = [qid for qid in qrels if qid not in given]
    if absent:
        log.warning("%d of %d judged queries are not among the queries evaluated (e.g. %s); %s", len(absent),
                    len(qrels), ", ".join(absent[:5]),
                    "they score 0 in the metrics (all_judged)" if all_judged
                    else f"metrics average over the {len(judged)} queries evaluated")
    unknown = {(q.query_id, d): rel for q in judged for d, rel in qrels[q.query_id].items() if d not in shard_of_doc}
    if unknown:
        log.warning("the qrels of the evaluated queries name %d documents that are not in the index (%d judgements, "
                    "%d relevant, e.g. %s); they count as relevant documents no route can find",
                    len({d for _, d in unknown}), len(unknown), sum(1 for r in unknown.values() if r > 0),
                    ", ".join(sorted({d for _, d in unknown})[:5]))
    return judged


def _retag(trace: Any, route: str, route_ms: float) -> Any:
    import dataclasses

    return dataclasses.replace(trace, route=route, timings_ms={**trace.timings_ms, "route": route_ms})


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of evaluation rows (metrics, then cost).

    When rows were tested against a baseline, two columns follow for the first measure:
    ``vs BASELINE MEASURE``, the verdict with the Holm-adjusted p-value of the test that gave it
    (``worse``/``better``: significantly, ``n.s.``: not significantly different, so not
    significantly worse), and ``W/T/L``, the queries the route wins, ties and loses against the
    baseline.
    """
    if not rows:
        return "(no rows)"
    table = _plain_table(rows)
    tested = [row for row in rows if "significance" in row]
    if not tested:
        return table
    first = tested[0]["significance"]
    measure = next(iter(first["measures"]), None)
    if measure is None:
        return table
    header = [f"vs {first['baseline']} {measure}", "W/T/L"]
    cells = [_significance_cells(row, measure) for row in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *cells, strict=True)]
    lines = table.split("\n")
    out = [lines[0] + "  " + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    out += [line + "  " + "  ".join(c.rjust(w) for c, w in zip(cell, widths, strict=True))
            for line, cell in zip(lines[1:], cells, strict=True)]
    return "\n".join(out)


def _significance_cells(row: Mapping[str, Any], measure: str) -> list[str]:
    sig = row.get("significance")
    c = sig["measures"].get(measure) if sig else None
    if sig is None or c is None:
        return ["-", "-"]
    p = c[sig["test"]]["p_holm"]
    shown = "p<1e-300" if p == 0.0 else f"p={p:.3g}"  # below the smallest double: scipy returns 0
    return [f"{c['verdict']} {shown}", f"{c['wins']}/{c['ties']}/{c['losses']}"]


def _plain_table(rows: Sequence[Mapping[str, Any]]) -> str:
    metric_names = list(dict.fromkeys(m for row in rows for m in row["metrics"]))  # any route order
    cost_cols = [("shards", "shards_searched", "{:.2f}"), ("docs", "docs_scored", "{:.0f}"),
                 ("frac", "fraction_scored", "{:.3f}"), ("route_ms", "router_ms", "{:.2f}"),
                 ("search_ms", "search_ms", "{:.2f}")]
    header = ["route", *metric_names, *[c[0] for c in cost_cols]]
    varying = any(_shards_vary(row["cost"]) for row in rows)
    if varying:  # only when some route's cut-off varies per query: tables of fixed budgets stay as they were
        header.insert(header.index("shards") + 1, "shards p10/50/90/max")
    lines = []
    for row in rows:
        cells = [row["route"], *[f"{row['metrics'][m]:.4f}" if m in row["metrics"] else "-" for m in metric_names],
                 *[fmt.format(row["cost"].get(key, float("nan"))) for _, key, fmt in cost_cols]]
        if varying:
            cells.insert(header.index("shards") + 1, _shards_spread(row["cost"]))
        lines.append(cells)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]

    def fmt_line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(padded)

    return "\n".join([fmt_line(header), *(fmt_line(cells) for cells in lines)])


def _shards_vary(cost: Mapping[str, Any]) -> bool:
    return "shards_searched_min" in cost and cost["shards_searched_min"] != cost["shards_searched_max"]


def _shards_spread(cost: Mapping[str, Any]) -> str:
    """``1/2/5/8``: p10, median, p90 and most shards searched per query (``-`` when constant)."""
    if not _shards_vary(cost):
        return "-"
    return "/".join(f"{cost[f'shards_searched_{k}']:g}" for k in ("p10", "p50", "p90", "max"))
