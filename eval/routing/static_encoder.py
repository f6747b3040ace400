"""Static (model2vec) against transformer query encoders for the learned routers: CPU and quality.

Cost: per-query CPU of each encoder (``time.thread_time`` of the calling thread, one torch thread,
tokenizers single-threaded), for one query per call and for all timed queries in one call
(batched as each encoder batches), and of the whole ``knn`` router per query (encode + score the
knowledge base). Quality on each collection (index built from a BEIR folder, logs = ``--logs``
qrels split, test = ``--split``): coverage AUC (:mod:`selectsearch.selective_metrics`) and
nDCG@10 at 1, 2 and 4 shards of ``knn@m`` with each encoder and of ``hybrid@m`` (``--fused``
routers, weights fitted for each encoder on held-out logged queries as ``tune-route`` fits them,
kept in memory), next to exhaustive search, CORI and the centroids.

Encoders are ``LABEL=SPEC`` (``--encoder``, repeatable; the first is the reference): SPEC is what
``knn.encoder`` takes (``all-MiniLM-L6-v2``, ``minilm-static``, a model folder), or ``pca:N``
for the packaged MiniLM distilled with N PCA dimensions instead of 256 (built once into the
cache). Timings taken while other jobs run are indicative only: the report prints the load.

Example (from the repository root; the lead's re-run for timings on an otherwise idle machine):
  OMP_NUM_THREADS=1 .venv/bin/python eval/routing/static_encoder.py \\
      --collection scifact=indexes/scifact-k16,../shared/data/scifact \\
      --collection homedepot=/tmp/hd-k16,../shared/data/homedepot \\
      --out eval/results/routing/static-encoder
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from selectsearch.bench.measure import limit_threads, load_average, machine, percentiles
from selectsearch.bench.report import write_result
from selectsearch.bench.script import command_line, script_parser, seeded_subset

DEFAULT_ENCODERS = ("transformer=all-MiniLM-L6-v2", "minilm-static=minilm-static", "static-pca384=pca:384")
BUDGETS = (1, 2, 4)


def resolve_encoder(spec: str) -> str:
    """What ``knn.encoder`` takes for SPEC (``pca:N`` is distilled into the cache once)."""
    if not spec.startswith("pca:"):
        return spec
    from selectsearch import settings
    from selectsearch.models.static_encoder import MANIFEST, StaticRecipe, distill_static_encoder

    dims = int(spec.split(":", 1)[1])
    recipe = StaticRecipe(pca_dims=dims)
    folder = settings.cache_dir() / "static-encoders" / f"eval-minilm-pca{dims}"
    if not (folder / MANIFEST).is_file():
        distill_static_encoder(folder, recipe, overwrite=True, progress=False)
    return str(folder)


def time_encoder(encoder: Any, texts: list[str]) -> dict[str, Any]:
    """Thread CPU ms per query: one query per call, then all of them in one call."""
    encoder.encode(texts[:8])  # warm-up: lazy loads, first-call allocations
    single = []
    for text in texts:
        c = time.thread_time()
        encoder.encode([text])
        single.append((time.thread_time() - c) * 1e3)
    c = time.thread_time()
    encoder.encode(texts)
    batch_ms = (time.thread_time() - c) * 1e3 / len(texts)
    return {"single": percentiles(single), "batch_mean_ms": batch_ms, "n_queries": len(texts)}


def time_router(router: Any, texts: list[str]) -> dict[str, float]:
    """Thread CPU ms of ``router.scores`` for one query at a time (encode + knowledge-base scoring)."""
    from selectsearch.types import Query

    router.scores([Query("warm", texts[0])])
    out = []
    for i, text in enumerate(texts):
        c = time.thread_time()
        router.scores([Query(f"t{i}", text)])
        out.append((time.thread_time() - c) * 1e3)
    return percentiles(out)


def quality_rows(index_path: str, data: str, logs: str, split: str, encoders: dict[str, str], k: int,
                 fused: str) -> list[dict[str, Any]]:
    """``evaluate`` rows: baselines once, then per encoder ``knn@m`` and ``hybrid@m`` whose weights
    are fitted for that encoder as ``tune-route`` fits them (held-out logged queries, step 0.1) —
    in memory: nothing is written into the index."""
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate
    from selectsearch.route.tuning import tune_hybrid
    from selectsearch.search import SelectiveSearcher

    searcher = SelectiveSearcher.open(index_path, "all")
    queries = load_queries(data, split=split)
    qrels = load_qrels(data, split=split)
    sweep = ",".join(str(b) for b in BUDGETS if b <= searcher.index.n_shards)
    rows = []
    for row in evaluate(searcher, queries, qrels, ["all", f"cori@{sweep}", f"centroid@{sweep}"], ["nDCG@10"], k=k):
        rows.append({**row, "encoder": None})
    names = [n for n in fused.split(",") if n]
    for label, encoder in encoders.items():
        tuned = tune_hybrid(searcher.index, data, logs, names, step=0.1, options={"knn.encoder": encoder})
        options = {"knn.encoder": encoder, "knn.logs": logs, "knn.data": data, "hybrid.routers": ",".join(names),
                   "hybrid.weights": ",".join(f"{w:g}" for w in tuned["weights"])}
        tuning = {key: tuned[key] for key in ("weights", "val_auc", "single_auc", "n_val_queries", "n_val_pairs")}
        for row in evaluate(searcher, queries, qrels, [f"knn@{sweep}", f"hybrid@{sweep}"], ["nDCG@10"], k=k,
                            router_options=options):
            rows.append({**row, "encoder": label, **({"tuning": tuning} if row["router"] == "hybrid" else {})})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--collection", action="append", required=True, metavar="NAME=INDEX,DATA",
                        help="an index and the BEIR folder it was built from (repeatable)")
    parser.add_argument("--encoder", action="append", metavar="LABEL=SPEC",
                        help=f"query encoder to compare (repeatable; default {' '.join(DEFAULT_ENCODERS)})")
    parser.add_argument("--logs", default="train", help="qrels split of the logs (default train)")
    parser.add_argument("--split", default="test", help="evaluated queries (default test)")
    parser.add_argument("--k", type=int, default=100, help="hits per query (default 100; nDCG@10 needs 10)")
    parser.add_argument("--timing-queries", type=int, default=300, help="test queries timed per collection")
    parser.add_argument("--fused", default="centroid,cori,knn",
                        help="routers of hybrid@m, weights fitted per encoder (default centroid,cori,knn: the demo's)")
    parser.add_argument("--no-quality", action="store_true", help="timings only")
    parser.add_argument("--out", type=Path, default=Path("eval/results/routing/static-encoder"),
                        help="OUT.json and OUT.md")
    args = parser.parse_args(argv)
    limit_threads()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"

    import torch

    from selectsearch.data import load_queries
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import make_router, parse_route

    torch.set_num_threads(1)
    collections = {}
    for item in args.collection:
        name, _, rest = item.partition("=")
        index_path, _, data = rest.partition(",")
        collections[name] = (index_path, data)
    encoders = {}
    for item in args.encoder or DEFAULT_ENCODERS:
        label, _, spec = item.partition("=")
        encoders[label] = resolve_encoder(spec)

    timing: dict[str, Any] = {"load_average_before": load_average()}
    for name, (index_path, data) in collections.items():
        index = ShardedIndex.open(index_path)
        texts = list(load_queries(data, split=args.split).values())
        texts = seeded_subset(texts, min(args.timing_queries, len(texts)), seed=0)
        for label, encoder in encoders.items():
            router = make_router(parse_route("knn@1"), index, logs=args.logs, data=data, encoder=encoder)
            entry = timing.setdefault(label, {"encoder": encoder, "dim": router.encoder.dim})
            if "encode" not in entry:
                entry["encode"] = time_encoder(router.encoder, texts)  # first collection's queries
                entry["encode"]["queries_from"] = name
            entry.setdefault("knn_route", {})[name] = {**time_router(router, texts), "kb_queries": len(router.kb)}
    timing["load_average_after"] = load_average()

    quality = {} if args.no_quality else {
        name: quality_rows(index_path, data, args.logs, args.split, encoders, args.k, args.fused)
        for name, (index_path, data) in collections.items()}

    from selectsearch.models.static_encoder import MANIFEST, is_static_encoder

    built = {}
    for label, encoder in encoders.items():
        if is_static_encoder(encoder):
            from selectsearch.encode import TextEncoder

            built[label] = getattr(TextEncoder(encoder), "manifest", {})
    result = {"command": command_line(__file__, argv, prefix="OMP_NUM_THREADS=1 " + shlex.quote(sys.executable) + " "),
              "machine": machine(), "encoders": encoders, "static_manifests": built,
              "manifest_file": MANIFEST, "timing": timing, "quality": quality}
    write_result(args.out, result, report(result))
    return 0


def _pct(value: float, ref: float) -> str:
    return f"{100 * value / ref:.1f}%" if ref else "-"


def report(result: dict[str, Any]) -> list[str]:
    """The Markdown report."""
    timing = result["timing"]
    labels = list(result["encoders"])
    lines = ["# Query encoders for routing: static (model2vec; adapted to the index) vs transformer", "",
             "```sh", result["command"], "```", "",
             f"Machine: {result['machine']}; load average before/after the timings: "
             f"{', '.join(f'{x:.2f}' for x in timing['load_average_before'])} / "
             f"{', '.join(f'{x:.2f}' for x in timing['load_average_after'])}. Timings taken on a busy machine are "
             "indicative only: re-run the command above alone for numbers to quote.", "",
             "## CPU per query (thread time, 1 torch thread)", "",
             "| encoder | dim | encode, 1 query/call: mean / p50 / p95 ms | encode, batched: ms/query | "
             + " | ".join(f"knn route ({c}) mean ms" for c in timing[labels[0]]["knn_route"]) + " |",
             "|---|---|---|---|" + "---|" * len(timing[labels[0]]["knn_route"])]
    for label in labels:
        t = timing[label]
        s = t["encode"]["single"]
        lines.append(f"| {label} | {t['dim']} | {s['mean_ms']:.3f} / {s['p50_ms']:.3f} / {s['p95_ms']:.3f} | "
                     f"{t['encode']['batch_mean_ms']:.3f} | "
                     + " | ".join(f"{r['mean_ms']:.3f} (KB {r['kb_queries']})" for r in t["knn_route"].values())
                     + " |")
    for name, rows in result["quality"].items():
        exhaustive = next(r for r in rows if r["route"] == "all")["metrics"]["nDCG@10"]
        lines += ["", f"## {name}: coverage AUC and nDCG@10 (% of exhaustive {exhaustive:.4f})", "",
                  "| router | encoder | coverage AUC | " + " | ".join(f"nDCG@10 @{b}" for b in BUDGETS) + " |",
                  "|---|---|---|" + "---|" * len(BUDGETS)]
        groups: dict[tuple[str, str], dict[int, Any]] = {}
        for r in rows:
            if r["route"] == "all":
                continue
            groups.setdefault((r["router"], r["encoder"] or "-"), {})[int(r["budget"])] = r["metrics"]
        for (router, encoder), by_budget in groups.items():
            auc = next(iter(by_budget.values())).get("coverage_auc", float("nan"))
            cells = [f"{m['nDCG@10']:.4f} ({_pct(m['nDCG@10'], exhaustive)})" if (m := by_budget.get(b)) else "-"
                     for b in BUDGETS]
            lines.append(f"| {router} | {encoder} | {auc:.2f} | " + " | ".join(cells) + " |")
        tunings = [(r["encoder"], r["tuning"]) for r in rows if "tuning" in r and int(r["budget"]) == BUDGETS[0]]
        if tunings:
            fits = [f"{encoder}: {' + '.join(f'{w:g} {n}' for w, n in zip(t['weights'], t['single_auc'], strict=True))}"
                    f" (validation AUC {t['val_auc']:.2f}, knn alone {t['single_auc'].get('knn', float('nan')):.2f})"
                    for encoder, t in tunings]
            lines += ["", "hybrid weights fitted per encoder on held-out logged queries (as `tune-route`): "
                      + "; ".join(fits)]
    if result["static_manifests"]:
        lines += ["", "Static encoders (from their manifests): " + "; ".join(
            f"{label}: {m.get('dim')} dims, {m.get('vocabulary')} tokens, recipe {m.get('recipe')}, distilled in "
            f"{m.get('distill_seconds')} s" for label, m in result["static_manifests"].items() if m)]
    return lines


if __name__ == "__main__":
    sys.exit(main())
