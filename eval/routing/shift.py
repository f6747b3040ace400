"""Routers under a shift between the search logs and the test queries (issue 19, item 1).

Protocol (definitions in :mod:`selectsearch.route.shift`). From a BEIR folder with train qrels
(the search logs) and test qrels, two shifted test settings are derived and written as BEIR
folders under --work (corpus and queries linked, qrels/train.tsv = the logs, qrels/test.tsv = the
shifted test queries, shift.json = parameters and sizes):

  (a) new-topics     the train and test queries together are clustered by their embedding
                     (packaged all-MiniLM-L6-v2, spherical k-means, 32 clusters, seed 0); whole
                     clusters holding about --fraction 0.3 of them are held out. Test queries =
                     the test-split queries of the held-out clusters; logs = the train-split
                     judgements of the OTHER clusters only.
  (b) unlogged-docs  test queries = the whole test split; logs = the train judgements minus every
                     judgement of a document relevant to some test query.

One --shards 16 k-means index of the collection serves both settings (the corpus is the same and
the shards do not depend on queries); it is built once under --work (or --index names one) and
reused. For each setting, the fused router (centroid, cori, knn) is tuned on the setting's logs
exactly as `selectsearch tune-route INDEX --data SETTING --routers centroid,cori,knn --validation
random|topics` does (selectsearch.route.tuning.tune_hybrid; the weights are kept in the results,
not in the shared index's routing.json), and every route below is evaluated on the setting's test
queries with selectsearch.evaluation.evaluate (k=1000, BM25 with collection-wide statistics):

  all, cori@1,2,4, taily@1,2,4, redde@1,2,4, ranks@1,2,4, centroid@1,2,4, knn@1,2,4 (knowledge
  base = the setting's logs), hybrid[random]@1,2,4 and hybrid[topics]@1,2,4 (the weights each
  validation chose; hybrid[topics] is what `tune-route` now stores by default).

Writes OUT.json and OUT.md (default eval/results/routing/shift-<name>): nDCG@10 (and its share of
exhaustive), fraction of documents scored, coverage, coverage AUC on the test queries, and the
tuning AUCs of both validations next to the test AUC. `summary` rows give, per budget, the
default learned route against the best classic router (cori, taily, redde, ranks, centroid) at no
more documents scored. Quality only: no timing is reported (ms measured here are not results).

Example:
  PYTHONPATH=. .venv/bin/python eval/routing/shift.py ../shared/data/scifact
  PYTHONPATH=. .venv/bin/python eval/routing/shift.py ../shared/data/homedepot --work /tmp/shift
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import REPO, command_line, script_parser

#: budgets of every swept route
BUDGETS = (1, 2, 4)
#: term-statistics and centroid routers: the "classic" baselines of the acceptance criteria
CLASSIC = ("cori", "taily", "redde", "ranks", "centroid")
#: the fused routers
FUSED = ("centroid", "cori", "knn")


def build_or_reuse_index(data: Path, out: Path, shards: int, threads: int) -> Path:
    """The collection's k-means index at ``out`` (built by `selectsearch index` when missing)."""
    from selectsearch.cli import main as cli

    if (out / "manifest.json").is_file():
        return out
    code = cli(["-q", "index", str(data), "--out", str(out), "--shards", str(shards), "--partitioner", "kmeans",
                "--threads", str(threads)])
    if code != 0:
        raise SystemExit(f"index build failed (exit {code})")
    return out


def best_classic(rows: list[dict[str, Any]], frac: float) -> dict[str, Any] | None:
    """The classic row with the best nDCG@10 among those scoring no more documents than ``frac``."""
    pool = [r for r in rows if r["router"] in CLASSIC and r["docs_frac"] <= frac + 1e-9]
    return max(pool, key=lambda r: r["ndcg10"]) if pool else None


def run_setting(name: str, folder: Path, index_path: Path, step: float, k: int) -> dict[str, Any]:
    """Tune under both validations, then evaluate every route on the setting's test queries."""
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import make_router, parse_route
    from selectsearch.route.base import RouteSpec
    from selectsearch.route.tuning import tune_hybrid
    from selectsearch.search import SelectiveSearcher

    index = ShardedIndex.open(index_path)
    knn_options = {"knn.data": str(folder), "knn.logs": "train"}
    tuned = {}
    for validation in ("random", "topics"):
        started = time.time()
        tuned[validation] = tune_hybrid(index, folder, "train", list(FUSED), step=step, validation=validation)
        print(f"[{name}] tuned on {validation}: weights {tuned[validation]['weights']} "
              f"({time.time() - started:.0f} s)", file=sys.stderr)
    queries = load_queries(folder, split="test")
    qrels = load_qrels(folder, split="test")
    searcher = SelectiveSearcher(index, make_router("all", index), None, route_name="all")
    budgets = ",".join(map(str, BUDGETS))
    routes: list[Any] = ["all", *(f"{r}@{budgets}" for r in (*CLASSIC, "knn"))]
    for validation, t in tuned.items():
        fused = make_router(parse_route("hybrid@1"), index, routers=",".join(FUSED),
                            weights=",".join(str(w) for w in t["weights"]), **knn_options)
        routes += [RouteSpec(f"hybrid[{validation}]", m, router=fused) for m in BUDGETS]
    started = time.time()
    raw = evaluate(searcher, queries, qrels, routes, ["nDCG@10", "R@100", "R@1000"], k=k,
                   router_options=knn_options)
    print(f"[{name}] evaluated {len(raw)} rows ({time.time() - started:.0f} s)", file=sys.stderr)
    exhaustive = next(r for r in raw if r["route"] == "all")["metrics"]["nDCG@10"]
    rows = [{"route": r["route"], "router": r["router"], "budget": r["budget"],
             "ndcg10": r["metrics"]["nDCG@10"], "pct_exhaustive": 100 * r["metrics"]["nDCG@10"] / exhaustive,
             "r100": r["metrics"]["R@100"], "r1000": r["metrics"]["R@1000"],
             "docs_frac": r["cost"]["fraction_scored"], "coverage": r["metrics"].get("coverage"),
             "coverage_auc": r["metrics"].get("coverage_auc")} for r in raw]
    test_auc = {r["router"]: r["coverage_auc"] for r in rows if r["coverage_auc"] is not None}
    summary = []
    for r in rows:
        if r["router"] != "hybrid[topics]":
            continue
        best = best_classic(rows, r["docs_frac"])
        summary.append({"setting": name, "route": r["route"], "budget": str(r["budget"]),
                        "docs_frac": r["docs_frac"], "ndcg10": r["ndcg10"], "exhaustive_ndcg10": exhaustive,
                        "best_classic_route": best["route"] if best else None,
                        "best_classic_ndcg10": best["ndcg10"] if best else None})
    info = json.loads((folder / "shift.json").read_text())
    return {"setting": name, "folder": str(folder), "info": info, "exhaustive_ndcg10": exhaustive, "rows": rows,
            "tuning": tuned, "test_auc": test_auc, "summary": summary}


def val(tuned: dict[str, Any], kind: str, router: str) -> float:
    """A tuning AUC of ``router`` on the ``kind`` split (nan when that split could not be drawn)."""
    return float(tuned["auc"].get(kind, {}).get(router, float("nan")))


def markdown(report: dict[str, Any]) -> list[str]:
    """The report's tables."""
    lines = [f"# Routers under shift: {report['collection']}", "", "```sh", report["command"], "```", "",
             f"Index: {report['index']} ({report['n_shards']} k-means shards, {report['n_docs']} documents). "
             "Fused router: centroid + cori + knn, weights tuned on the setting's logs (`tune-route`).", ""]
    for s in report["settings"]:
        info = s["info"]
        lines += [f"## {s['setting']}", ""]
        if s["setting"] == "new-topics":
            lines.append(f"{len(info['held_topics'])} of {info['n_topics']} query clusters held out "
                         f"({100 * info['held_fraction']:.0f}% of train+test queries, seed {info['seed']}).")
        else:
            lines.append(f"{info['n_removed_log_pairs']} logged pairs removed (their documents, "
                         f"{info['n_test_relevant_docs']}, are relevant to test queries).")
        lines += [f"Logs: {info['n_log_queries']} queries / {info['n_log_pairs']} pairs (of "
                  f"{info['original']['n_log_queries']} / {info['original']['n_log_pairs']}); test: "
                  f"{info['n_test_queries']} queries / {info['n_test_pairs']} relevant pairs. "
                  f"Exhaustive nDCG@10 {s['exhaustive_ndcg10']:.4f}.", "",
                  "Coverage AUC: validation on the setting's logs (random split by query / topic-held-out) "
                  "against the shifted test queries.", "",
                  "| router | val random | val topics | test |", "|---|---|---|---|"]
        tr, tt = s["tuning"]["random"], s["tuning"]["topics"]
        nan = float("nan")
        for n in FUSED:
            lines.append(f"| {n} | {val(tr, 'random', n):.2f} | {val(tr, 'topics', n):.2f} | "
                         f"{s['test_auc'].get(n, nan):.2f} |")
        for v, t in (("random", tr), ("topics", tt)):
            w = ", ".join(f"{n} {x:g}" for n, x in zip(FUSED, t["weights"], strict=True))
            test = s["test_auc"].get(f"hybrid[{v}]", nan)
            lines.append(f"| hybrid[{v}] ({w}) | {val(t, 'random', 'hybrid'):.2f} | {val(t, 'topics', 'hybrid'):.2f} | "
                         f"{test:.2f} |")
        for n in CLASSIC:
            if n not in FUSED:
                lines.append(f"| {n} | - | - | {s['test_auc'].get(n, float('nan')):.2f} |")
        lines += ["", "| route | nDCG@10 | % of exhaustive | docs frac | coverage | coverage AUC |",
                  "|---|---|---|---|---|---|"]
        for r in s["rows"]:
            cov = "-" if r["coverage"] is None else f"{r['coverage']:.3f}"
            auc = "-" if r["coverage_auc"] is None else f"{r['coverage_auc']:.2f}"
            lines.append(f"| {r['route']} | {r['ndcg10']:.4f} | {r['pct_exhaustive']:.1f} | {r['docs_frac']:.3f} | "
                         f"{cov} | {auc} |")
        lines += ["", "Per budget: % of exhaustive nDCG@10. Best classic router (cori, taily, redde, ranks, centroid) "
                  "at no more documents scored than hybrid[topics], and at the same number of shards.", "",
                  "| budget | best classic, <= docs | best classic, same shards | knn | hybrid[random] | "
                  "hybrid[topics] |", "|---|---|---|---|---|---|"]
        by_route = {r["route"]: r for r in s["rows"]}
        for m in BUDGETS:
            h = by_route[f"hybrid[topics]@{m}"]
            best = best_classic(s["rows"], h["docs_frac"])
            same = max((r for r in s["rows"] if r["router"] in CLASSIC and r["budget"] == m),
                       key=lambda r: r["ndcg10"])
            best_text = f"{best['pct_exhaustive']:.1f} ({best['route']})" if best else "-"
            lines.append(f"| {m} | {best_text} | {same['pct_exhaustive']:.1f} ({same['route']}) | "
                         f"{by_route[f'knn@{m}']['pct_exhaustive']:.1f} | "
                         f"{by_route[f'hybrid[random]@{m}']['pct_exhaustive']:.1f} | {h['pct_exhaustive']:.1f} |")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("data", type=Path, help="BEIR folder with qrels/train.tsv (the logs) and qrels/test.tsv")
    parser.add_argument("--name", help="collection name in the output file names (default: the folder's name)")
    parser.add_argument("--work", type=Path, default=Path("~/.cache/selectsearch/shift").expanduser(),
                        help="folder for the derived settings and the index (default ~/.cache/selectsearch/shift)")
    parser.add_argument("--index", type=Path, help="an existing k-means index of the collection (default: built "
                                                    "under --work)")
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="index build threads (default 2)")
    parser.add_argument("--fraction", type=float, default=None,
                        help="new-topics: share of the queries whose clusters are held out (default 0.3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default="new-topics,unlogged-docs")
    parser.add_argument("--step", type=float, default=0.1, help="weight grid of tune-route (default 0.1)")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="OUT.json and OUT.md (default eval/results/routing/shift-<name>)")
    args = parser.parse_args(argv)

    import torch

    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route.shift import NEW_TOPICS_FRACTION, new_topics_setting, unlogged_docs_setting, write_setting

    torch.set_num_threads(1)
    data: Path = args.data.expanduser().resolve()
    name = args.name or data.name
    work = args.work.expanduser() / name
    index_path = args.index or build_or_reuse_index(data, work / f"index-k{args.shards}", args.shards, args.threads)
    fraction = args.fraction if args.fraction is not None else NEW_TOPICS_FRACTION
    results = []
    for setting in [s for s in args.settings.split(",") if s]:
        if setting == "new-topics":
            derived = new_topics_setting(data, fraction=fraction, seed=args.seed)
        elif setting == "unlogged-docs":
            derived = unlogged_docs_setting(data)
        else:
            parser.error(f"unknown setting {setting!r}")
        folder = write_setting(derived, data, work / setting)
        print(f"[{setting}] {folder}: {derived.info['n_log_pairs']} logged pairs, {derived.info['n_test_queries']} "
              "test queries", file=sys.stderr)
        results.append(run_setting(setting, folder, Path(index_path), args.step, args.k))
    index = ShardedIndex.open(index_path)
    report = {"command": command_line(__file__, argv, prefix="PYTHONPATH=. " + shlex.quote(sys.executable) + " "),
              "collection": name, "data": str(data), "index": str(index_path), "n_shards": index.n_shards,
              "n_docs": index.n_docs, "settings": results,
              "summary": [{"collection": name, **row} for s in results for row in s["summary"]]}
    out = args.out or REPO / "eval" / "results" / "routing" / f"shift-{name}"
    write_json(out.with_suffix(".json"), report, indent=1, end="\n")
    lines = markdown(report)
    write_markdown(out.with_suffix(".md"), lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
