"""Report of the query cost benchmark: the Markdown report (<benchmark>.md) and its plots, from the result JSON.

Everything here reads the result dict that :func:`selectsearch.bench.cost.run_cost_benchmark`
writes as JSON, so a report can be rebuilt from the JSON alone (``selectsearch bench
--report-only``).

Example:
    >>> from selectsearch.bench.report.cost import write_cost_report  # doctest: +SKIP
    >>> write_cost_report(json.loads(Path("eval/results/cost/cost-sfwiki32.json").read_text()),  # doctest: +SKIP
    ...                   Path("eval/results/cost"))
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.bench.costmodel import crossover, describe_size
from selectsearch.bench.report import pyplot, save_figure, write_markdown

__all__ = ["cost_plots", "write_cost_report"]


def _route_cpu(summary: Mapping[str, Any]) -> str:
    """The route CPU cell: ``in search`` for a configuration routed inside the engine (its routing
    CPU is part of the search column), else the milliseconds."""
    return "in search" if summary.get("routed_in_engine") else f"{summary['cpu_ms']['route']:.2f}"


def write_cost_report(result: Mapping[str, Any], out: Path) -> list[Path]:
    """Write ``out/<benchmark>.md`` and the plots of a cost benchmark result; the written files.

    Named after the benchmark (not README.md) so that several definitions (k=10, k=1000, sizes)
    can share one results folder without overwriting each other's report."""
    rows = result["results"]
    name = result["benchmark"]
    plots = cost_plots(result, out)
    exhaustive = next((r for r in rows if r["kind"] == "sharded" and r["router"] == "all" and not r["rerank"]), None)
    single = next((r for r in rows if r["kind"] == "unsharded"), None)
    lines = [f"# Query cost: {name}", "",
             f"Command: `{result['command']}` ({result['date']}, {result['seconds']:.0f} s). Definition: "
             f"`{result['definition']}`.", "",
             f"{result['queries']} queries, k={result['k']} hits per query. All configurations are measured in "
             "ONE process (searchers of an index share its Lucene readers, as in a server), interleaved: for "
             "each query every configuration runs once, in a seeded random order, so the slow periods of this "
             f"shared {result['cpu_count']}-core machine (load average at the end: "
             f"{', '.join(f'{x:.1f}' for x in result['load_average_at_end'])}) hit all of them alike. One "
             "warm-up pass over all queries, then on until the JVM's JIT compiler had settled (other threads at "
             "most 10% of the query thread's CPU over a second"
             + (f"; {result['settle_s']:.0f} s" if "settle_s" in result else "") +
             f"), then {result['passes']} recorded passes; per (configuration, query) "
             "the pass with the least CPU is kept. Compare rows of one run, not absolute numbers across runs.", "",
             "CPU columns are milliseconds of CPU per query (`route` reads `in search` where the query is routed "
             "inside the engine, in the same call into Java as its search: cori@M with the compiled engine): "
             "`route`, `search`, `merge` are the query thread's "
             "CPU (`time.thread_time`, JNI included: Lucene searches on the calling thread; search and merge "
             "split by their wall-clock shares); `total` adds the JVM's own threads (garbage collection, JIT), "
             f"measured over the whole run as {result['jvm_share']:.0%} of the query thread's CPU and charged "
             "in proportion. `docs` = documents in the searched shards; `frac` = their share of the collection; "
             "`P` = postings of the query's terms in the searched shards; wall p50/p95 from the interleaved run "
             "(latency, throughput and memory of single configurations are in the next section). BM25 hits "
             "come back as columns (`selectsearch.types.HitList`: the Lucene engine cuts and orders the top k "
             "by score, then doc id), so `merge` is only what is left in Python; a `Hit` object is made when a "
             "hit is read — here when the run is made, after the timing (about 0.3 ms per 1,000 hits read, "
             "`eval/results/cost/engine-profile.md`).", ""]
    if result.get("rerank_note"):
        lines += [f"Reranking: {result['rerank_note']}.", ""]
    elif result.get("rerank"):
        lines += [f"Reranking (`+rerank` rows): `{result['rerank']}` over the top {result['k']} hits, measured on the "
                  "latency routes; its CPU is the `rerank` column.", ""]
    for note in result.get("notes", []):
        lines += [f"Note: {note}", ""]
    if exhaustive is not None:
        goal = result["target"] * exhaustive["metrics"]["nDCG@10"]
        lines += ["## Acceptance", "",
                  f"Target: {result['target']:.0%} of exhaustive nDCG@10 ({exhaustive['metrics']['nDCG@10']:.4f}) = "
                  f"{goal:.4f}. Per router, the smallest measured budget reaching it:", "",
                  "| router | budget | nDCG@10 | frac scored | ≤ 15%? | total CPU ms (route) | exhaustive, "
                  f"{exhaustive['n_shards']} shards | exhaustive, unsharded | below both? |",
                  "|---|---|---|---|---|---|---|---|---|"]
        ex_cpu = exhaustive["summary"]["total_cpu_ms"]
        single_cpu = single["summary"]["total_cpu_ms"] if single is not None else float("inf")
        several = len({r["index"] for r in rows if r["kind"] == "sharded"}) > 1
        for r in rows:
            if r.get("target_budget"):
                s = r["summary"]
                below = s["total_cpu_ms"] < min(ex_cpu, single_cpu)
                label = f"{r['index']}: {r['router']}" if several else r["router"]
                lines.append(f"| {label} | {r['budget']} | {r['metrics']['nDCG@10']:.4f} | "
                             f"{s['fraction_scored']:.3f} | {'yes' if s['fraction_scored'] <= 0.15 else 'no'} | "
                             f"{s['total_cpu_ms']:.2f} ({_route_cpu(s)}) | {ex_cpu:.2f} | "
                             f"{single_cpu:.2f} | {'yes' if below else 'no'} |")
        reached = {r["router"] for r in rows if r.get("target_budget")}
        missed = sorted({r["router"] for r in rows if r["kind"] == "sharded" and r["router"] != "all"} - reached)
        if missed:
            lines += ["", f"Never reaching the target within the measured budgets: {', '.join(missed)}."]
        lines.append("")
    lines += ["## Cost per query", "", f"![cpu by stage]({name}-cpu.png)", "",
              "| index | route | nDCG@10 | R@100 | shards | docs | frac | P | route | search | merge | rerank | "
              "total CPU | wall p50 ms | wall p95 ms |", "|" + "---|" * 15]
    for r in rows:
        s = r["summary"]
        c, lat = s["cpu_ms"], s["latency_interleaved"]
        route = r["route"] + (" +rerank" if r["rerank"] else "") + (" (unsharded)" if r["kind"] == "unsharded" else "")
        lines.append(f"| {r['index']} | {route} | {r['metrics']['nDCG@10']:.4f} | {r['metrics']['R@100']:.4f} | "
                     f"{s['shards']:.1f} | {s['docs_scored']:.0f} | {s['fraction_scored']:.3f} | "
                     f"{s.get('postings', 0):,.0f} | {_route_cpu(s)} | "
                     f"{c.get('search', 0):.2f} | {c.get('merge', 0):.2f} | {c.get('rerank', 0):.2f} | "
                     f"{s['total_cpu_ms']:.2f} | {lat['p50_ms']:.1f} | {lat['p95_ms']:.1f} |")
    if single is not None:
        for ex in (r for r in rows if r["kind"] == "sharded" and r["router"] == "all" and not r["rerank"]):
            mine, base = ex["summary"]["total_cpu_ms"], single["summary"]["total_cpu_ms"]
            lines += ["", f"Sharding overhead of exhaustive search, {ex['index']}: {mine:.2f} ms CPU over "
                          f"{ex['n_shards']} shards vs {base:.2f} ms on the unsharded index ({mine / base:.2f}x; "
                          "same documents, same scores)."]
    if result["latency"]:
        lines += ["", "## Latency, throughput and memory", "", f"![latency]({name}-latency.png)", "",
                  "Each configuration alone: N client processes, each with its own JVM over the same memory-mapped "
                  "index, each running all queries in a closed loop (rotated start) after a warm-up (at least 100 "
                  "queries, and until the JVM's JIT compiler has settled: a fresh JVM's compiler is as busy as the "
                  "queries for its first seconds), started together. CPU ms/query = the client processes' CPU "
                  "(all threads) per query; peak MB = the largest client's peak resident set (JVM heap + index "
                  "pages touched + router state).", "",
                  "| index | route | clients | p50 ms | p95 ms | p99 ms | q/s | CPU ms/query | peak MB |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for x in result["latency"]:
            lines.append(f"| {x['index']} | {x['route']} | {x['clients']} | {x['p50_ms']:.1f} | {x['p95_ms']:.1f} | "
                         f"{x['p99_ms']:.1f} | {x['qps']:.0f} | {x['process_cpu_ms_per_query']:.2f} | "
                         f"{x.get('peak_rss_mb', 0):.0f} |")
    model = result.get("model")
    if model:
        sizes = model["sizes"]
        lines += ["", "## Cost model and extrapolation", "", f"![model]({name}-model.png)", "",
                  f"Fitted on the sharded index ({model['n_docs_measured']:,} documents) over {model['points']:,} "
                  "(query, configuration) pairs: search + merge CPU of a query = a + c_s·S + c_p·P, S = shards "
                  "searched, P = postings of the query's terms in them (from the index's per-shard term statistics). "
                  f"a = {model['a_ms']:.2f} ms (fixed per query), c_s = {model.get('c_s_ms_per_shard', 0.0):.3f} ms "
                  f"per shard, c_p = {model['c_p_ns_per_posting']:.2f} ns per "
                  f"posting, R² = {model['r2']:.3f} (per-query timings on a shared machine are noisy; the means "
                  "below are what matters). At N documents: (route(N) + a + c_s·S + c_p·P·N/N0)·(1 + JVM-thread "
                  "share), fixed ms = a + c_s·S; "
                  "route(N) constant for centroid/CORI/Taily, linear in N for ReDDE/Rank-S (central sample = "
                  "fixed share of the collection).", "",
                  "| configuration | frac scored | postings P | route CPU ms | fixed ms | JVM share | measured CPU ms "
                  "| model CPU ms | " + " | ".join(f"CPU ms at {n / 1e6:.0f}M docs" for n in sizes) + " |",
                  "|---|---|---|---|---|---|---|---|" + "---|" * len(sizes)]
        for m in model["rows"]:
            lines.append(f"| {m['config']} | {m['fraction']:.3f} | {m['postings']:,.0f} | {m['route_cpu_ms']:.2f} | "
                         f"{m['fixed_ms']:.2f} | {m['jvm_share']:.0%} | {m['measured_total_cpu_ms']:.2f} | "
                         f"{m['model_total_cpu_ms']:.2f} | " + " | ".join(f"{m[f'cpu_ms_{n}']:.0f}" for n in sizes)
                         + " |")
        crossing = crossover(model)
        if crossing:
            lines += ["", "Where selective search's total CPU drops below exhaustive search's (model): "
                      + "; ".join(f"{cfg}: {describe_size(n, model['n_docs_measured'])}" for cfg, n in crossing) + "."]
        lines += ["", "Assumptions: the same document and query distributions at every size (postings per "
                      "document constant, so postings scanned grow linearly with the documents searched); Lucene's "
                      "dynamic pruning no better at scale (conservative for both); the shard count stays as "
                      "measured, shards grow; the fraction selective search needs for the target stays as measured "
                      "(larger collections have been found to need smaller fractions); one process per query, so "
                      "no network or fan-out cost (a distributed deployment adds per-shard-group RPC time, see "
                      "eval/results/serve/)."]
    return [write_markdown(out / f"{name}.md", lines), *plots]


def cost_plots(result: Mapping[str, Any], out: Path) -> list[Path]:
    """CPU by stage, quality against CPU, latency against clients and the cost model, as PNGs."""
    plt = pyplot()

    name = result["benchmark"]
    rows = result["results"]
    written = []
    # CPU by stage (stacked), with the JVM's other threads on top
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(rows)), 4.5))
    labels = [r["route"] + (" +rr" if r["rerank"] else "") + (" (1 idx)" if r["kind"] == "unsharded" else "")
              for r in rows]
    bottom = np.zeros(len(rows))
    for stage in ("route", "search", "merge", "rerank"):
        vals = np.array([r["summary"]["cpu_ms"].get(stage, 0.0) for r in rows])
        if vals.any():
            ax.bar(labels, vals, bottom=bottom, label=stage)
            bottom += vals
    other = np.array([r["summary"]["jvm_other_cpu_ms"] for r in rows])
    ax.bar(labels, other, bottom=bottom, label="JVM threads (GC, JIT)", color="lightgrey")
    ax.set_ylabel("CPU ms per query")
    ax.tick_params(axis="x", rotation=70, labelsize=8)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    written.append(save_figure(fig, out / f"{name}-cpu.png"))
    # quality against CPU
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for router in sorted({r["router"] for r in rows}):
        pts = sorted((r["summary"]["total_cpu_ms"], r["metrics"]["nDCG@10"]) for r in rows
                     if r["router"] == router and r["kind"] == "sharded" and not r["rerank"])
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, label=router if router != "all" else "exhaustive (32 shards)")
    for r in rows:
        if r["kind"] == "unsharded":
            ax.plot([r["summary"]["total_cpu_ms"]], [r["metrics"]["nDCG@10"]], marker="*", markersize=11,
                    linestyle="none", color="black", label="exhaustive (unsharded)")
    ax.set_xlabel("total CPU ms per query")
    ax.set_ylabel("nDCG@10")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    written.append(save_figure(fig, out / f"{name}-quality-cpu.png"))
    if result["latency"]:
        fig, ax = plt.subplots(figsize=(6, 4.2))
        keys = sorted({(x["index"], x["route"]) for x in result["latency"]})
        for index, route in keys:
            pts = sorted((x["clients"], x["p95_ms"]) for x in result["latency"] if (x["index"], x["route"]) == (index,
                                                                                                            route))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{index}:{route}")
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("p95 latency ms")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        written.append(save_figure(fig, out / f"{name}-latency.png"))
    model = result.get("model")
    if model:
        fig, ax = plt.subplots(figsize=(6, 4.2))
        mx = [model["n_docs_measured"], *model["sizes"]]
        for m in model["rows"]:
            my = [m["measured_total_cpu_ms"], *(m[f"cpu_ms_{n}"] for n in model["sizes"])]
            ax.plot(mx, my, marker="o", label=m["config"])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("documents in the collection")
        ax.set_ylabel("CPU ms per query (first point measured)")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=7)
        written.append(save_figure(fig, out / f"{name}-model.png"))
    return written
