"""Routed dense search vs the FAISS-IVF anchor on SciFact + Wikipedia, 32 shards.

Cost–quality curves (nDCG@10 and R@100 of the SciFact test queries against the fraction of the
collection's vectors scored) for:

- ``mico@m`` dense search on the MICO partition (``--mico-index``);
- ``centroid@m`` dense search on the dense k-means partition (``--dense-index``);
- FAISS ``IndexIVFFlat`` over the whole collection with ``nlist`` = shard count (quantizer trained
  like the dense k-means partitioner) and ``nprobe`` = 1..K; and, as a stronger reference, the
  same with ``nlist`` = 8 x shard count;

plus exhaustive dense search (``all``, one flat search over everything). At the smallest fraction
where IVF keeps 99% of exhaustive nDCG@10 the routed curves are interpolated and compared.
Single-query latency (batch of one: encode + route + search) is measured for the main operating
points.

Usage:
  OMP_NUM_THREADS=1 .venv/bin/python eval/dense/bench_sfwiki.py --dense-index indexes/sfw-dense32 \\
      --mico-index indexes/sfw-mico32 --sources ../shared/data/scifact WIKI.jsonl --out eval/results/dense
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from selectsearch.bench.measure import load_average, percentiles, time_each, timed
from selectsearch.bench.report import pyplot, save_figure, write_json, write_markdown
from selectsearch.bench.report.curves import crossing, first_reaching, interpolate_at
from selectsearch.bench.script import REPO, command_line, data_root, judged_queries, script_parser

MEASURES = ["nDCG@10", "R@100"]


def latency(fn, items: list) -> dict[str, float]:
    """Per-item wall ms of ``fn`` (a batch of one): p50, p95, mean and the count."""
    return {**percentiles(time_each(fn, items), (50, 95)), "queries": len(items)}


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--dense-index", type=Path, required=True)
    parser.add_argument("--mico-index", type=Path, required=True)
    parser.add_argument("--sources", nargs="+", required=True, help="corpus sources of both indexes (for doc ids)")
    parser.add_argument("--queries", type=Path, default=data_root() / "scifact")
    parser.add_argument("--split", default="test")
    parser.add_argument("--budgets", default="1,2,3,4,6,8,12,16,24,32")
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--label", default="sfwiki")
    parser.add_argument("--out", type=Path, default=REPO / "eval/results/dense")
    parser.add_argument("--replot", action="store_true", help="only redraw the PNG from the existing JSON")
    args = parser.parse_args(argv)
    if args.replot:
        result = json.loads((args.out / f"{args.label}.json").read_text())
        plot(args.out / f"{args.label}.png", result, int(result["collection"]["shards"]))
        return 0
    command = command_line(__file__, sys.argv[1:] if argv is None else argv,
                           prefix="OMP_NUM_THREADS=1 .venv/bin/python ", quote=False)
    os.chdir(REPO)
    import faiss
    import ir_measures

    from selectsearch.data import load_qrels, load_queries, open_corpus
    from selectsearch.dense.ivf import IvfAnchor
    from selectsearch.encode import EmbeddingCache
    from selectsearch.evaluation import evaluate, parse_measures
    from selectsearch.search import SelectiveSearcher
    from selectsearch.types import Query

    faiss.omp_set_num_threads(1)
    started = time.time()
    budgets = [int(b) for b in args.budgets.split(",")]
    qrels = load_qrels(args.queries, split=args.split)
    queries = judged_queries(load_queries(args.queries, split=args.split), qrels)
    dense_s = SelectiveSearcher.open(args.dense_index, route="all", retriever="dense")
    mico_s = SelectiveSearcher.open(args.mico_index, route="all", retriever="dense")
    n_docs = dense_s.index.n_docs
    k = dense_s.index.n_shards
    budget_spec = ",".join(str(b) for b in budgets if b <= k)
    t0 = time.time()
    rows_centroid = evaluate(dense_s, queries, qrels, ["all", f"centroid@{budget_spec}"], MEASURES, k=100)
    rows_mico = evaluate(mico_s, queries, qrels, ["all", f"mico@{budget_spec}"], MEASURES, k=100)
    print(f"routed sweeps {time.time() - t0:.0f}s", flush=True)
    exhaustive = rows_centroid[0]["metrics"]
    assert abs(rows_mico[0]["metrics"]["nDCG@10"] - exhaustive["nDCG@10"]) < 1e-9, "exhaustive differs by partition"

    # -- the IVF anchor ---------------------------------------------------------------------------
    cache = EmbeddingCache(Path(dense_s.index.manifest.dense.embedding_cache))
    matrix = cache.load()
    ids = [d.doc_id for d in open_corpus(args.sources)]
    assert len(ids) == len(matrix) == n_docs
    parsed = parse_measures(MEASURES)
    evaluator = ir_measures.evaluator(parsed, qrels)
    qids = list(queries)
    vectors = dense_s.dense.encode([queries[q] for q in qids])
    ivf_curves: dict[str, list[dict]] = {}
    anchors = {}
    for nlist in (k, 8 * k):
        t0 = time.time()
        anchor = IvfAnchor.build(matrix, ids, nlist, seed=0)
        anchors[nlist] = anchor
        build_s = time.time() - t0
        probes = sorted({p for p in [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256] if p <= nlist}
                        | {nlist})
        curve = []
        for nprobe in probes:
            hits, ms = timed(anchor.search, vectors, 100, nprobe)
            ms /= len(qids)
            run = {q: dict(zip(h.doc_ids, h.scores, strict=True)) for q, h in zip(qids, hits, strict=True)}
            agg = evaluator.calc_aggregate(run)
            curve.append({"nprobe": nprobe, "metrics": {str(m): float(agg.get(m, 0.0)) for m in parsed},
                          "fraction_vectors_scored": float(np.mean([h.vectors_scored for h in hits])) / n_docs,
                          "search_ms": ms})
        ivf_curves[f"ivf{nlist}"] = curve
        print(f"ivf{nlist}: built in {build_s:.0f}s", flush=True)

    def points(rows_or_curve: list[dict], metric: str) -> list[tuple[float, float]]:
        out = []
        for r in rows_or_curve:
            if "cost" in r:
                if r["route"] == "all":
                    continue
                out.append((r["cost"]["fraction_vectors_scored"], r["metrics"][metric]))
            else:
                out.append((r["fraction_vectors_scored"], r["metrics"][metric]))
        return out

    curves = {"mico": rows_mico, "centroid": rows_centroid, **ivf_curves}
    target = 0.99 * exhaustive["nDCG@10"]
    ivf_key = f"ivf{k}"
    f_ivf = first_reaching(points(ivf_curves[ivf_key], "nDCG@10"), target)
    comparison: dict[str, object] = {"exhaustive_nDCG@10": exhaustive["nDCG@10"], "target_99pct": target,
                                     "ivf_fraction_at_99pct": f_ivf}
    for name, curve in curves.items():
        pts = points(curve, "nDCG@10")
        comparison[name] = {
            "fraction_at_99pct": first_reaching(pts, target),
            "fraction_at_99pct_interpolated": crossing(pts, target),
            "nDCG@10_at_ivf_fraction": interpolate_at(pts, f_ivf) if f_ivf is not None else None,
            "R@100_at_ivf_fraction": interpolate_at(points(curve, "R@100"), f_ivf) if f_ivf is not None else None,
        }

    # -- single-query latency (batch of one) -----------------------------------------------------
    lat_q = [Query(q, queries[q]) for q in qids[: args.latency_queries]]
    mico_points = sorted((r["budget"], r["metrics"]["nDCG@10"]) for r in rows_mico if r["route"] != "all")
    m_star = next((b for b, v in mico_points if v >= target), 2)  # MICO's own 99% operating point
    lat = {}
    for label, searcher in (("dense all", dense_s), (f"mico@{m_star}", mico_s.with_route(f"mico@{m_star}")),
                            (f"centroid@{m_star}", dense_s.with_route(f"centroid@{m_star}"))):
        searcher.warm()
        searcher.dense._query_cache.clear()
        searcher.dense.query_cache_size = 0  # every query encoded for real
        lat[label] = latency(lambda q, s=searcher: s.batch_search([q], k=100), lat_q)
    encoder = dense_s.dense.encoder()
    nprobe_star = next((c["nprobe"] for c in ivf_curves[ivf_key] if c["metrics"]["nDCG@10"] >= target), k)
    lat[f"ivf{k} nprobe={nprobe_star}"] = latency(
        lambda q: anchors[k].search(encoder.encode([q.text]), 100, nprobe_star), lat_q)
    lat["query encoding only"] = latency(lambda q: encoder.encode([q.text]), lat_q)

    result = {"command": command, "collection": {"sources": [str(s) for s in args.sources], "n_docs": n_docs,
                                                 "shards": k},
              "queries": {"source": str(args.queries), "split": args.split, "n": len(qids)},
              "exhaustive": exhaustive, "curves": curves, "comparison": comparison, "latency": lat,
              "load_average": [round(x, 2) for x in load_average()], "seconds": round(time.time() - started, 1)}
    write_json(args.out / f"{args.label}.json", result, end="\n")
    write_report(args.out / f"{args.label}.md", result, k)
    plot(args.out / f"{args.label}.png", result, k)
    print(json.dumps(comparison, indent=2))
    return 0


def write_report(path: Path, result: dict, k: int) -> None:
    lines = [f"# Routed dense search vs FAISS IVF — {result['collection']['n_docs']} documents, {k} shards\n",
             f"Command: `{result['command']}`\n",
             f"Queries: {result['queries']['n']} SciFact {result['queries']['split']} queries. Exhaustive dense "
             f"(one flat search): nDCG@10 {result['exhaustive']['nDCG@10']:.4f}, R@100 "
             f"{result['exhaustive']['R@100']:.4f}.\n",
             "| system | budget | fraction of vectors scored | nDCG@10 | R@100 |", "|---|---|---|---|---|"]
    for name, curve in result["curves"].items():
        for r in curve:
            if "cost" in r:
                if r["route"] == "all":
                    continue
                lines.append(f"| {name} dense | {r['route']} | {r['cost']['fraction_vectors_scored']:.4f} | "
                             f"{r['metrics']['nDCG@10']:.4f} | {r['metrics']['R@100']:.4f} |")
            else:
                lines.append(f"| FAISS {name.upper()} | nprobe={r['nprobe']} | {r['fraction_vectors_scored']:.4f} | "
                             f"{r['metrics']['nDCG@10']:.4f} | {r['metrics']['R@100']:.4f} |")
    c = result["comparison"]
    lines += ["", "## At IVF's 99% point", "", "```", json.dumps(c, indent=2), "```", "",
              "## Single-query latency (batch of one, ms)", "", "| system | p50 | p95 |", "|---|---|---|"]
    for name, v in result["latency"].items():
        lines.append(f"| {name} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} |")
    write_markdown(path, lines)


def plot(path: Path, result: dict, k: int) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric in zip(axes, MEASURES, strict=True):
        for name, curve in result["curves"].items():
            xs, ys = [], []
            for r in curve:
                if "cost" in r:
                    if r["route"] == "all":
                        continue
                    xs.append(r["cost"]["fraction_vectors_scored"])
                else:
                    xs.append(r["fraction_vectors_scored"])
                ys.append(r["metrics"][metric])
            names = {"mico": "MICO-routed dense", "centroid": "centroid-routed dense (identical to IVF32)"}
            label = names.get(name, f"FAISS {name.upper()}")
            style = {"ls": ":", "lw": 3, "alpha": 0.6} if name == "centroid" else {}
            ax.plot(xs, ys, marker="o", ms=3, label=label, **style)
        ax.axhline(result["exhaustive"][metric], ls="--", color="grey", label="exhaustive dense")
        ax.set_xscale("log")
        ax.set_xlabel("fraction of vectors scored")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"SciFact test on SciFact + Wikipedia ({result['collection']['n_docs']} docs, {k} shards)")
    save_figure(fig, path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
