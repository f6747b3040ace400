"""Query cost benchmark: what a query costs, stage by stage, exhaustive vs selective search.

Run by ``selectsearch bench DEF.toml`` when the definition says ``kind = "cost"``. Side by side,
on the same queries: exhaustive BM25 over all shards, exhaustive BM25 on an unsharded index
(an index built with ``shards = 1``: one Anserini Lucene index, what pyserini's
``LuceneSearcher`` searches), and selective search for every route and budget of the
definition. Per configuration:

* **CPU per query by stage** — routing, search, merge (and rerank when configured). Routing is
  timed on its own with ``time.thread_time`` (the thread's CPU, JNI calls included: Lucene runs
  on the calling thread). Search and merge run in one call; their thread CPU is measured
  together and split by their wall-clock shares. **Total** CPU is the whole process's CPU time
  (``time.process_time``) over the measured queries — it adds the JVM's own threads (garbage
  collection, JIT compilation) that no stage owns.
* **Wall latency** p50/p95/p99 at 1 client and at N concurrent clients (N separate processes,
  each with its own JVM over the same memory-mapped index, starting together at a barrier),
  and queries per second.
* **Documents scored** (documents in the searched shards, the selective-search cost measure)
  and **peak memory** (the process's peak resident set during the measured queries — JVM heap
  plus the index pages touched; reset with ``/proc/self/clear_refs`` before measuring).
* **Quality** (nDCG@10, R@100 with ir-measures), so the cheapest budget reaching a share of
  exhaustive quality can be read off.

Every configuration runs in a fresh process, one after the other (one heavy job at a time),
after ``warmup`` queries (JIT, page cache). A **cost model** is fitted to the measurements and
extrapolates total CPU per query to 10M and 100M documents (assumptions in
:func:`selectsearch.bench.costmodel.fit_cost_model` and in the report).

Jobs: :mod:`~selectsearch.bench.harness` runs and times the queries in fresh processes,
:mod:`~selectsearch.bench.costmodel` summarises and models the measurements,
:mod:`~selectsearch.bench.report.cost` writes the report and plots; this module strings them
together for one definition.

Example:
    >>> from selectsearch.bench import run_benchmark  # doctest: +SKIP
    >>> run_benchmark("eval/serve/cost-sfwiki32.toml", data_root=Path("../shared/data"),  # doctest: +SKIP
    ...               indexes_root=Path("indexes"), out=Path("eval/results/cost"))
"""


from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selectsearch.bench.costmodel import add_postings, fit_cost_model, mark_targets, summarise
from selectsearch.bench.harness import RouterSetup, concurrent_clients, in_fresh_process, measure_interleaved
from selectsearch.bench.measure import load_average
from selectsearch.bench.report import write_json
from selectsearch.bench.report.cost import write_cost_report

__all__ = ["cost_configurations", "run_cost_benchmark"]

log = logging.getLogger(__name__)


def cost_configurations(spec: Mapping[str, Any]) -> tuple[list[tuple[str, str, str, str | None]],
                                                           dict[tuple[str, str], RouterSetup]]:
    """Every configuration ``(index name, kind, route, rerank)`` a cost definition measures, and
    the router setup (options and the routers of that index's run) of each ``(index name, route)``.

    Budgets are expanded as ``evaluate()`` expands them (:func:`selectsearch.route.expand_for_index`:
    a sweep keeps the budgets the index can run, with a warning; a single budget above the shard
    count is refused) and router options are checked and passed as it passes them
    (:func:`selectsearch.route.split_router_options`), so no option is silently dropped.
    """
    from selectsearch.route import expand_for_index, parse_route, split_router_options

    configs: list[tuple[str, str, str, str | None]] = []
    setups: dict[tuple[str, str], RouterSetup] = {}
    for idx in spec["index"]:
        kind = "unsharded" if idx.get("role") == "unsharded" or int(idx["shards"]) == 1 else "sharded"
        n_shards = int(idx["shards"])
        specs = [s for r in idx["routes"] for s in expand_for_index(parse_route(r), n_shards)]
        options = dict(idx.get("router_options", {}))
        names = frozenset(s.name for s in specs)
        split_router_options(names, options)  # fail fast, before anything is measured
        for s in specs:
            configs.append((idx["name"], kind, str(s), None))
            setups[(idx["name"], str(s))] = RouterSetup(options, names)
    rerank = spec.get("rerank")
    if rerank:
        configs += [(name, kind, route, rerank) for name, kind, route, _ in list(configs)
                    if f"{name}:{route}" in spec.get("latency_routes", [])]
    return configs, setups


def run_cost_benchmark(spec: Mapping[str, Any], *, definition: str, indexes: Mapping[str, Path], out: Path,
                       queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], command: str,
                       progress: bool = False, report_only: bool = False) -> list[Path]:
    """Measure every configuration of a ``kind = "cost"`` definition; write JSON, Markdown, plots.

    ``indexes`` maps each ``[[index]]`` name to its built folder. The definition's keys:
    ``k`` (hits per query, default 100), ``warmup`` (queries, default 30), ``max_queries``
    (first n queries, default all), ``concurrency`` (client counts, default ``[1, 2]``),
    ``latency_routes`` (``"INDEX:ROUTE"`` configurations measured under concurrency), ``target``
    (share of exhaustive nDCG@10, default 0.97), ``rerank`` (a model for
    ``selectsearch.rerank.load_reranker``, measured on the ``latency_routes``) and per index ``role``
    (``"unsharded"`` for the single-index baseline).
    """
    from tqdm import tqdm

    from selectsearch.evaluation import parse_measures
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import parse_route

    json_file = out / f"{spec['name']}.json"
    if report_only:
        result = json.loads(json_file.read_text())
        result["notes"] = list(spec.get("notes", result.get("notes", [])))  # notes may be edited afterwards
        return write_cost_report(result, out)
    k = int(spec.get("k", 100))
    warmup = int(spec.get("warmup", 30))
    passes = int(spec.get("passes", 2))
    target = float(spec.get("target", 0.97))
    items = list(queries.items())[: int(spec["max_queries"])] if spec.get("max_queries") else list(queries.items())
    measures = parse_measures(["nDCG@10", "R@100"])
    import ir_measures

    evaluator = ir_measures.evaluator(measures, qrels)
    rerank = spec.get("rerank")
    configs, setups = cost_configurations(spec)  # (index name, kind, route, rerank)
    t_start = time.time()
    log.info("measuring %d configurations interleaved (%d queries, 1 warm-up + %d passes)", len(configs), len(items),
             passes)
    measured = in_fresh_process(measure_interleaved, [(str(indexes[n]), r, rr) for n, _, r, rr in configs], items,
                                k=k, warmup_passes=1 if warmup else 0, passes=passes,
                                router_setups=[setups[(n, r)] for n, _, r, _ in configs])
    results: list[dict[str, Any]] = []
    for (name, kind, route, rr), one in zip(configs, measured["configs"], strict=True):
        index = ShardedIndex.open(indexes[name])
        aggregate = evaluator.calc_aggregate(one["run"])
        metrics = {str(m): float(aggregate.get(m, 0.0)) for m in measures}
        results.append({"index": name, "kind": kind, "route": route, "router": parse_route(route).name,
                        "budget": parse_route(route).budget, "rerank": rr, "n_docs": index.n_docs,
                        "one_index": index.manifest.lucene_ranges is not None,
                        "n_shards": index.n_shards, "metrics": metrics,
                        "summary": summarise(one, measured["jvm_share"], index.n_docs), "shards": one["shards"],
                        "search_merge_cpu": [round(q.get("search_cpu_ms", 0.0) + q.get("merge_cpu_ms", 0.0), 4)
                                             for q in one["rows"]]})
    # latency, throughput and memory: each configuration alone, 1..N client processes
    latency: list[dict[str, Any]] = []
    runs = [(item, int(n)) for item in spec.get("latency_routes", []) for n in spec.get("concurrency", [1, 2])]
    for item, n in tqdm(runs, desc="latency runs", unit="run", disable=not progress):
        name, _, route = item.partition(":")
        part = concurrent_clients(n, str(indexes[name]), route, items, k=k, warmup=min(warmup, 100),
                                  router_setup=setups.get((name, route)), rerank=None)
        latency.append({"index": name, "route": route, **part})
    mark_targets(results, target)
    add_postings(results, indexes, items)
    sharded = [r for r in results if r["kind"] == "sharded" and not r["rerank"]]
    # the model is fitted on the first sharded index (another one, e.g. the same shards as one
    # Lucene index, is measured beside it, not mixed into the fit)
    primary = [r for r in results if r["kind"] == "unsharded" or (sharded and r["index"] == sharded[0]["index"])]
    model = fit_cost_model(primary, sharded[0]["n_docs"]) if sharded else {}
    result = {"benchmark": spec["name"], "command": command, "definition": definition,
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": time.time() - t_start, "k": k,
              "warmup": warmup, "passes": passes, "queries": len(items), "target": target,
              "cpu_count": os.cpu_count(), "jvm_share": measured["jvm_share"], "settle_s": measured["settle_s"],
              "interleaved_peak_rss_mb": measured["peak_rss_mb"],
              "load_average_at_end": load_average(), "rerank": rerank or None,
              "rerank_note": None if rerank else "no reranker: the definition names none",
              "notes": list(spec.get("notes", [])), "results": results, "latency": latency, "model": model}
    write_json(json_file, result)
    return [json_file, *write_cost_report(result, out)]
