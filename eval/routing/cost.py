"""Routing cost (issue 19): the default learned route's routing CPU against the BM25 search CPU it routes.

For each query encoder of the ``knn`` router (``--encoder LABEL=SPEC``, repeatable; the first is
the reference), a hard-linked copy of ``INDEX`` (``--work``; the shards are shared, only the
tuning file differs) is tuned as ``tune-route`` tunes it (``--routers``, logs = the ``--logs``
split of ``--data``, topic-held-out validation, per-query gating) with ``knn.encoder=SPEC``. Then,
in ONE process and interleaved query by query (``selectsearch.bench.harness.measure_interleaved``:
one warm-up pass, ``--passes`` recorded, least CPU kept), every copy's ``hybrid@M`` (the default
learned route with ``--budget`` M shards) and ``cori@M`` on the original index run the ``--split``
queries at k = ``--k``. Per configuration: routing CPU (thread time of ``router.select``: encode +
knowledge base + fusion) and search + merge CPU (the BM25 search of the selected shards), per
query; nDCG@10 and the coverage AUC on the same queries.

The ``--alone`` encoders' configurations (default: ``transformer``) are measured the same way in
runs of their own: a transformer's forward pass between two queries streams its 90 MB of
weights through the caches, and the static routers interleaved with it then read their tables
and knowledge base from memory on every query (the default router's per-query routing cost
was 0.465 ms interleaved with it, against 0.32-0.36 ms without; a server runs one router, with
its search between two queries).

Two modes, side by side:

- ``per-query``: one query at a time, as a server answers (each query pays every numpy call,
  the analyzer's and the encoder's set-up, and its crossing into Java; interleaved per query);
- ``batch``: the whole query set routed by one ``router.select`` and searched by one
  ``search_selected`` (what ``evaluate``/``batch_search`` do; configurations interleaved per
  pass, ``--batch-passes`` kept at their least CPU; ``selectsearch.bench.harness.measure_batched``).

Writes ``OUT.json`` + ``OUT.md`` and, with ``--summary FILE``, the rows ``{"setting": "cost",
"mode", "collection", "route", "encoder", "route_ms", "search_ms", "route_cpu_ms", "search_cpu_ms",
"coverage_auc", "reference_auc", "default"}`` that ``eval/routing/summary.py`` reads
(``cost.json``); ``default`` marks the encoder ``knn`` uses when none is named
(``selectsearch.route.knn.DEFAULT_KNN_ENCODER``).

A timing benchmark: run it alone on an idle machine (the report prints the load average).

Example (from the repository root):
  OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python eval/routing/cost.py indexes/sfwiki-kmeans32 \\
      --data ../shared/data/scifact --work /tmp/routing-cost --out eval/results/routing/cost-sfwiki32 \\
      --summary eval/results/routing/cost.json
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from selectsearch.bench.measure import load_average, machine
from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import command_line, script_parser

DEFAULT_ENCODERS = ("transformer=all-MiniLM-L6-v2", "minilm-static=minilm-static", "adapted=adapted")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def linked_copy(index: Path, dest: Path) -> Path:
    """``index`` hard-linked into ``dest`` (a new folder): the same files, its own routing.json."""
    if dest.exists():
        raise SystemExit(f"{dest} exists: give a new --work folder (nothing is deleted)")
    shutil.copytree(index, dest, copy_function=_link_or_copy)
    (dest / "routing.json").unlink(missing_ok=True)  # tuned below, never the original's
    return dest


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("index", type=Path, help="built index (not modified)")
    parser.add_argument("--data", required=True, help="BEIR folder: logs (--logs split) and evaluated queries")
    parser.add_argument("--logs", default="train")
    parser.add_argument("--split", default="test")
    parser.add_argument("--routers", default="centroid,cori,knn", help="routers the tuned hybrid fuses")
    parser.add_argument("--encoder", action="append", metavar="LABEL=SPEC", help="knn.encoder values to compare")
    parser.add_argument("--budget", type=int, default=2)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--batch-passes", type=int, default=3, help="recorded passes of the batch mode")
    parser.add_argument("--alone", action="append", metavar="LABEL",
                        help="measure this encoder's configuration in a run of its own (repeatable; default: "
                             "transformer)")
    parser.add_argument("--work", type=Path, required=True, help="new folder for the tuned copies (removed at the end)")
    parser.add_argument("--out", type=Path, required=True, help="OUT.json and OUT.md")
    parser.add_argument("--summary", type=Path, default=None, help="also write the summary rows here (cost.json)")
    parser.add_argument("--collection", default=None, help="name in the summary rows (default: the index folder's)")
    args = parser.parse_args(argv)

    from selectsearch.bench.harness import measure_batched, measure_interleaved
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route.knn import DEFAULT_KNN_ENCODER
    from selectsearch.route.tuning import tune_hybrid, write_routing
    from selectsearch.search import SelectiveSearcher

    encoders = dict(e.split("=", 1) for e in (args.encoder or DEFAULT_ENCODERS))
    unknown = sorted(set(args.alone or []) - set(encoders))
    if unknown:
        parser.error(f"--alone {', '.join(unknown)}: not an --encoder label ({', '.join(encoders)})")
    queries = load_queries(args.data, split=args.split)
    qrels = load_qrels(args.data, split=args.split)
    names = [n for n in args.routers.split(",") if n]
    route = f"hybrid@{args.budget}"
    copies: dict[str, Path] = {}
    tuning: dict[str, Any] = {}
    quality: dict[str, dict[str, float]] = {}
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        for label, spec in encoders.items():
            copy = linked_copy(args.index, args.work / label)
            tuned = tune_hybrid(ShardedIndex.open(copy), args.data, args.logs, names,
                                options={"knn.encoder": spec})
            write_routing(copy, tuned)
            copies[label] = copy
            fit = tuned.get("ranker_fit") or {}
            tuning[label] = {"weights": tuned["weights"], "gating": tuned.get("gating"),
                             "ranker": bool(tuned.get("ranker")), "ranker_fit": fit}
            print(f"{label}: tuned weights {tuned['weights']}; shard ranker "
                  f"{'kept' if tuned.get('ranker') else 'not kept'} ({fit.get('why', 'out-of-sample AUC')} "
                  f"{fit.get('cv_auc', float('nan')):.2f} vs {fit.get('baseline_auc', float('nan')):.2f})",
                  file=sys.stderr, flush=True)
            (row,) = evaluate(SelectiveSearcher.open(copy, "all"), queries, qrels, [route], ["nDCG@10"], k=args.k)
            quality[label] = {"ndcg10": row["metrics"]["nDCG@10"], "coverage_auc": row["metrics"]["coverage_auc"]}
        (cori,) = evaluate(SelectiveSearcher.open(args.index, "all"), queries, qrels, [f"cori@{args.budget}"],
                           ["nDCG@10"], k=args.k)
        quality["cori"] = {"ndcg10": cori["metrics"]["nDCG@10"], "coverage_auc": cori["metrics"]["coverage_auc"]}
        configs = [(str(copies[label]), route, None) for label in encoders]
        configs.append((str(args.index), f"cori@{args.budget}", None))
        labels = [*encoders, "cori"]
        # the --alone configurations are measured in runs of their own (module docs)
        # the default (transformer) only when there is such a label; named ones were checked above
        alone = [labels.index(label) for label in dict.fromkeys(args.alone or ["transformer"]) if label in encoders]
        groups = [[i for i in range(len(configs)) if i not in alone], *[[i] for i in alone]]
        load_before = load_average()
        per_query: list[Any] = [None] * len(configs)
        per_batch: list[Any] = [None] * len(configs)
        for group in groups:
            # every router routed in Python, cori too (one query at a time it can route inside the
            # engine): this benchmark compares the routers' own costs
            measured = measure_interleaved([configs[i] for i in group], list(queries.items()), k=args.k,
                                           passes=args.passes, route_in_engine=False)
            batched = measure_batched([configs[i][:2] for i in group], list(queries.items()), k=args.k,
                                      passes=args.batch_passes)
            for i, one, batch in zip(group, measured["configs"], batched["configs"], strict=True):
                per_query[i], per_batch[i] = one, batch
        load_after = load_average()
    finally:
        for copy in copies.values():
            shutil.rmtree(copy, ignore_errors=True)
        if args.work.is_dir() and not any(args.work.iterdir()):
            args.work.rmdir()
    rows = []
    for label, config, batch in zip(labels, per_query, per_batch, strict=True):
        cpu = [r for r in config["rows"] if r is not None]
        rows.append({"label": label, "route": route if label != "cori" else f"cori@{args.budget}",
                     "encoder": encoders.get(label), "route_cpu_ms": mean([r["route_cpu_ms"] for r in cpu]),
                     "search_cpu_ms": mean([r.get("search_cpu_ms", 0.0) + r.get("merge_cpu_ms", 0.0) for r in cpu]),
                     "batch_route_cpu_ms": batch["route_cpu_ms"], "batch_search_cpu_ms": batch["search_cpu_ms"],
                     "batch_route_process_cpu_ms": batch["route_process_cpu_ms"],
                     "docs_scored": mean([r["docs_scored"] for r in cpu]), **quality[label],
                     "tuning": tuning.get(label)})
    reference = rows[0]
    collection = args.collection or args.index.name
    summary = [{"setting": "cost", "mode": mode, "collection": collection,
                "route": f"{r['route']} (knn.encoder={r['encoder']})", "encoder": r["encoder"],
                "route_ms": r[f"{prefix}route_cpu_ms"], "search_ms": r[f"{prefix}search_cpu_ms"],
                "route_cpu_ms": r[f"{prefix}route_cpu_ms"], "search_cpu_ms": r[f"{prefix}search_cpu_ms"],
                "coverage_auc": r["coverage_auc"], "reference_auc": reference["coverage_auc"],
                "default": r["encoder"] == DEFAULT_KNN_ENCODER}
               for mode, prefix in (("per-query", ""), ("batch", "batch_")) for r in rows if r["label"] != "cori"]
    result = {"command": command_line(__file__, argv, prefix="OMP_NUM_THREADS=1 PYTHONPATH=. " + sys.executable + " "),
              "machine": machine(), "load_average": {"before": load_before, "after": load_after},
              "index": str(args.index), "queries": len(queries), "k": args.k, "budget": args.budget,
              "passes": args.passes, "batch_passes": args.batch_passes, "measured_alone": [labels[i] for i in alone],
              "rows": rows, "summary": summary}
    write_json(args.out.with_suffix(".json"), result, indent=1, end="\n")
    if args.summary:
        write_json(args.summary, {"command": result["command"], "rows": summary}, indent=1, end="\n")
    lines = [f"# Routing cost against search cost: {collection}", "", "```sh", result["command"], "```", "",
             f"{len(queries)} `{args.split}` queries, k={args.k}, {args.budget} shards per query; one process, "
             f"per query: configurations interleaved per query (each of {sorted(labels[i] for i in alone)} in a run of "
             f"its own), least CPU of {args.passes} passes kept; batch: the "
             f"{len(queries)} queries routed in one call and searched in one call, configurations interleaved per "
             f"pass, least CPU of {args.batch_passes} passes kept. Machine: {result['machine']}; load average before "
             f"{load_before}, after {load_after}. Default `knn` encoder: `{DEFAULT_KNN_ENCODER}`.", "",
             "| route | knn encoder | mode | routing CPU ms/query | routing CPU, all threads | "
             "search + merge CPU ms/query | routing / search | nDCG@10 | coverage AUC |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for mode, prefix in (("per query", ""), ("batch", "batch_")):
            routing, search = r[f"{prefix}route_cpu_ms"], r[f"{prefix}search_cpu_ms"]
            every = r.get(f"{prefix}route_process_cpu_ms")
            lines.append(f"| {r['route']} | {r['encoder'] or '-'} | {mode} | {routing:.3f} | "
                         f"{'-' if every is None else f'{every:.3f}'} | {search:.3f} | "
                         f"{routing / search:.0%} | {r['ndcg10']:.4f} | {r['coverage_auc']:.2f} |")
    ranked = [label for label, t in tuning.items() if t.get("ranker")]
    lines += ["", "Fusion as `tune-route` stores it: "
              + (f"ranked by its shard ranker for {', '.join(f'`{x}`' for x in ranked)} (kept: its cross-validated "
                 "coverage AUC beat the gated weights' by more than the standard error), by the gated weights "
                 "otherwise." if ranked else "the gated weights for every encoder (no shard ranker kept)."),
              "", "Routing CPU is the calling thread's (`time.thread_time`); in batch mode the routing's CPU on "
              "every thread of the process is shown beside it (`time.process_time`, an upper bound: it also counts "
              "the JVM's compiler and collector threads), the check that no router works on threads of its own.", "",
              "Target (issue 19): the default learned router's routing CPU <= 25% of the search CPU of the same "
              "queries, its coverage AUC within 1 point of the transformer version (the first row).", ""]
    write_markdown(args.out.with_suffix(".md"), lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
