"""Routers under a shift between the search logs and the test queries (issue 19, item 1).

Protocol (definitions in :mod:`selectsearch.route.shift`). From a BEIR folder with train qrels
(the search logs) and test qrels, three test settings are derived and written as BEIR folders
under --work (corpus and queries linked, qrels/train.tsv = the logs, qrels/test.tsv = the test
queries, shift.json = parameters and sizes):

  in-distribution    the collection's own train (logs) and test split: the reference.
  (a) new-topics     the train and test queries together are clustered by their embedding
                     (packaged all-MiniLM-L6-v2, spherical k-means, 32 clusters, seed 0); whole
                     clusters holding about --fraction 0.3 of them are held out. Test queries =
                     the test-split queries of the held-out clusters; logs = the train-split
                     judgements of the OTHER clusters only.
  (b) unlogged-docs  test queries = the whole test split; logs = the train judgements minus every
                     judgement of a document relevant to some test query.

One --shards 16 k-means index of the collection serves every setting (the corpus is the same and
the shards do not depend on queries); it is built once under --work (or --index names one) and
reused. For each setting, the fused router (centroid, cori, knn) is tuned on the setting's logs
exactly as `selectsearch tune-route INDEX --data SETTING --routers centroid,cori,knn --validation
random|topics` does (selectsearch.route.tuning.tune_hybrid; kept in the results, not in the shared
index's routing.json), and every route below is evaluated on the setting's test queries with
selectsearch.evaluation.evaluate (k=1000, BM25 with collection-wide statistics):

  all; cori, taily, redde, ranks, centroid at 1,2,3,4,6,8 shards; knn@1,2,4 (knowledge base = the
  setting's logs); hybrid[random]@1,2,4 and hybrid[topics]@1,2,4 (the single weight vector each
  validation chose); hybrid[gated]@1,2,4 (the topic-chosen weights with the per-query familiarity
  gating of selectsearch.route.gating); hybrid[tuned]@1,2,4 and hybrid[tuned]@auto: the DEFAULT
  learned route, what `tune-route` stores by default: the shard ranker of selectsearch.route.ranker
  when tune-route kept it (it beat the gated fusion out of sample on the setting's logs), else the
  gated weights; and the per-query budget at the default target 0.9 calibrated on its scores.

Writes OUT.json and OUT.md (default eval/results/routing/shift-<name>): nDCG@10 (and its share of
exhaustive), fraction of documents scored, coverage, coverage AUC on the test queries, and the
tuning AUCs of both validations next to the test AUC. `summary` rows give, per budget, the
default learned route against the best classic router (cori, taily, redde, ranks, centroid) at
the same fraction of documents scored (each classic router's nDCG@10 interpolated linearly
between its budgets). Quality only: no timing is reported (ms measured here are not results).
`eval/routing/summary.py` gathers the summary rows of both collections into summary.json.

``--tune-seed S`` draws tune-route's two validation splits with seed S instead of tune-route's own:
``eval/routing/seed_spread.py`` sets several seeds' cells side by side. ``--tune-folds F`` tunes on
F draws of each split stacked (``tune_hybrid(folds=F)``).

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

import numpy as np

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import REPO, command_line, script_parser

#: budgets of every swept route
BUDGETS = (1, 2, 4)
#: budgets of the classic routers: a denser curve, interpolated at the learned route's documents scored
CLASSIC_BUDGETS = (1, 2, 3, 4, 6, 8)
#: term-statistics and centroid routers: the "classic" baselines of the acceptance criteria
CLASSIC = ("cori", "taily", "redde", "ranks", "centroid")
#: the fused routers
FUSED = ("centroid", "cori", "knn")
#: label of the default learned route: what tune-route stores (the shard ranker when kept, else the
#: topic-chosen weights with the per-query gating)
DEFAULT = "hybrid[tuned]"
#: label of the gated linear fusion (the default before the shard ranker; shown beside it)
GATED = "hybrid[gated]"


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
    """The best classic router at ``frac`` of the documents scored: each classic router's nDCG@10
    is interpolated linearly between its budgets (:data:`CLASSIC_BUDGETS`) at ``frac`` (and taken
    at its largest budget beyond it; a router whose one shard already scores more than ``frac`` is
    left out). When every classic router's one shard scores more than ``frac``, the best of them at
    one shard is returned (a comparison that favours the classic router: it scores more documents;
    ``route`` then says ``cori@1``). Returns ``{"route": "cori@~0.144", "ndcg10", "pct_exhaustive",
    "docs_frac"}``."""
    best: dict[str, Any] | None = None
    smallest: dict[str, Any] | None = None
    for router in CLASSIC:
        points = sorted((r["docs_frac"], r["ndcg10"], r["pct_exhaustive"], r["route"]) for r in rows
                        if r["router"] == router and r["budget"] is not None)
        if points and (smallest is None or points[0][1] > smallest["ndcg10"]):
            smallest = {"route": f"{router}@1", "ndcg10": points[0][1], "pct_exhaustive": points[0][2],
                        "docs_frac": points[0][0], "mix": {points[0][3]: 1.0}}
        if not points or points[0][0] > frac + 1e-9:
            continue
        d = np.array([p[0] for p in points])
        ndcg = float(np.interp(frac, d, [p[1] for p in points]))
        pct = float(np.interp(frac, d, [p[2] for p in points]))
        if best is None or ndcg > best["ndcg10"]:
            best = {"route": f"{router}@~{min(frac, d[-1]):.3f}", "ndcg10": ndcg, "pct_exhaustive": pct,
                    "docs_frac": float(min(frac, d[-1])), "mix": _mixture(points, frac)}
    return best if best is not None else smallest


def _mixture(points: list[tuple[float, float, float, str]], frac: float) -> dict[str, float]:
    """The routes (and weights) whose linear interpolation gives a router's nDCG@10 at ``frac``:
    the same weights interpolate each query's value, for :func:`margin_ci`."""
    xs = [p[0] for p in points]
    if frac <= xs[0]:
        return {points[0][3]: 1.0}
    if frac >= xs[-1]:
        return {points[-1][3]: 1.0}
    hi = next(i for i, x in enumerate(xs) if x >= frac)
    t = (frac - xs[hi - 1]) / (xs[hi] - xs[hi - 1]) if xs[hi] > xs[hi - 1] else 1.0
    return {points[hi - 1][3]: 1.0 - t, points[hi][3]: t}


def margin_ci(default: dict[str, float], mix: dict[str, dict[str, float]], weights: dict[str, float], *,
              resamples: int = 2000, seed: int = 0) -> list[float]:
    """95% paired bootstrap interval (over test queries, nDCG@10 points; the project's
    :func:`~selectsearch.significance.bootstrap_ci` of the per-query differences) of the default route's
    margin over the interpolated classic router: each query's classic value is interpolated with
    the same weights as the mean, so the margin's mean is exactly the reported one."""
    from selectsearch.significance import bootstrap_ci

    diff = [default[q] - sum(w * mix[route][q] for route, w in weights.items()) for q in sorted(default)]
    low, high = bootstrap_ci(diff, n_resamples=resamples, seed=seed)
    return [100 * low, 100 * high]


def run_setting(name: str, folder: Path, index_path: Path, step: float, k: int,
                tune_seed: int | None = None, tune_folds: int | None = None) -> dict[str, Any]:
    """Tune under both validations (their splits drawn with ``tune_seed`` and ``tune_folds`` draws of
    each stacked; ``None``: tune-route's), then evaluate every route on the setting's test queries."""
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import make_router, parse_route
    from selectsearch.route.base import RouteSpec
    from selectsearch.route.budget import AutoBudgetRouter, Calibration
    from selectsearch.route.gating import Gating
    from selectsearch.route.hybrid import HybridRouter
    from selectsearch.route.ranker import ShardRanker
    from selectsearch.route.tuning import tune_hybrid
    from selectsearch.search import SelectiveSearcher

    index = ShardedIndex.open(index_path)
    knn_options = {"knn.data": str(folder), "knn.logs": "train"}
    tuned = {}
    for validation in ("random", "topics"):
        started = time.time()
        # the shard ranker belongs to the default (topics) tuning; the random one only gives its weights
        tuned[validation] = tune_hybrid(index, folder, "train", list(FUSED), step=step, validation=validation,
                                        topic_seed=tune_seed, random_seed=tune_seed, folds=tune_folds,
                                        ranker=validation == "topics")
        print(f"[{name}] tuned on {validation}: weights {tuned[validation]['weights']} "
              f"({time.time() - started:.0f} s)", file=sys.stderr)
    queries = load_queries(folder, split="test")
    qrels = load_qrels(folder, split="test")
    searcher = SelectiveSearcher(index, make_router("all", index), None, route_name="all")
    budgets = ",".join(map(str, BUDGETS))
    classic_budgets = ",".join(map(str, CLASSIC_BUDGETS))
    routes: list[Any] = ["all", *(f"{r}@{classic_budgets}" for r in CLASSIC), f"knn@{budgets}"]
    for validation, t in tuned.items():
        fused = make_router(parse_route("hybrid@1"), index, routers=",".join(FUSED),
                            weights=",".join(str(w) for w in t["weights"]), **knn_options)
        routes += [RouteSpec(f"hybrid[{validation}]", m, router=fused) for m in BUDGETS]
    # the default learned route: what `tune-route` stores (the shard ranker when kept, else topic weights +
    # per-query gating), at fixed budgets and with the per-query budget calibrated on its scores (default target)
    default = tuned["topics"]
    gate = Gating.from_dict(default["gating"]) if default.get("gating") else None
    gated = HybridRouter(fused.routers, default["weights"], gating=gate)
    routes += [RouteSpec(GATED, m, router=gated) for m in BUDGETS]
    chosen = HybridRouter(fused.routers, default["weights"], gating=gate,
                          ranker=ShardRanker.from_dict(default["ranker"]) if default.get("ranker") else None)
    routes += [RouteSpec(DEFAULT, m, router=chosen) for m in BUDGETS]
    auto = AutoBudgetRouter(chosen, Calibration.from_json(default["calibration"]["hybrid"]), index.shard_sizes)
    # named apart (budget None: the router's own cut-off): evaluate would otherwise re-wrap it with the shared
    # index's stored calibration, not this setting's
    routes.append(RouteSpec(f"{DEFAULT}@auto", None, router=auto))
    started = time.time()
    raw = evaluate(searcher, queries, qrels, routes, ["nDCG@10", "R@100", "R@1000"], k=k,
                   router_options=knn_options, per_query=True)
    per_query = {r["route"]: r["per_query"]["nDCG@10"] for r in raw}
    print(f"[{name}] evaluated {len(raw)} rows ({time.time() - started:.0f} s)", file=sys.stderr)
    exhaustive = next(r for r in raw if r["route"] == "all")["metrics"]["nDCG@10"]
    rows = [{"route": r["route"], "router": r["router"], "budget": r["budget"],
             "ndcg10": r["metrics"]["nDCG@10"], "pct_exhaustive": 100 * r["metrics"]["nDCG@10"] / exhaustive,
             "r100": r["metrics"]["R@100"], "r1000": r["metrics"]["R@1000"],
             "docs_frac": r["cost"]["fraction_scored"], "coverage": r["metrics"].get("coverage"),
             "shards_mean": r["cost"]["shards_searched"],
             "coverage_auc": r["metrics"].get("coverage_auc")} for r in raw]
    test_auc = {r["router"]: r["coverage_auc"] for r in rows if r["coverage_auc"] is not None}
    summary = []
    for r in rows:
        if r["router"] not in (DEFAULT, f"{DEFAULT}@auto"):
            continue
        best = best_classic(rows, r["docs_frac"])
        summary.append({"setting": name, "route": r["route"], "budget": str(r["budget"] or "auto"),
                        "shards_mean": r["shards_mean"],
                        "docs_frac": r["docs_frac"], "ndcg10": r["ndcg10"], "exhaustive_ndcg10": exhaustive,
                        "best_classic_route": best["route"] if best else None,
                        "best_classic_ndcg10": best["ndcg10"] if best else None,
                        "margin_ci95": margin_ci(per_query[r["route"]], per_query, best["mix"]) if best else None})
    info = json.loads((folder / "shift.json").read_text())
    return {"setting": name, "folder": str(folder), "info": info, "exhaustive_ndcg10": exhaustive, "rows": rows,
            "tuning": tuned, "test_auc": test_auc, "summary": summary}


def val(tuned: dict[str, Any], kind: str, router: str) -> float:
    """A tuning AUC of ``router`` on the ``kind`` split (nan when that split could not be drawn)."""
    return float(tuned["auc"].get(kind, {}).get(router, float("nan")))


def markdown(report: dict[str, Any]) -> list[str]:
    """The report's tables."""
    seed = report.get("tune_seed")
    folds = int(report["settings"][0]["tuning"]["topics"].get("folds", 1)) if report["settings"] else 1
    lines = [f"# Routers under shift: {report['collection']}", "", "```sh", report["command"], "```", "",
             f"Index: {report['index']} ({report['n_shards']} k-means shards, {report['n_docs']} documents). "
             "Fused router: centroid + cori + knn, weights tuned on the setting's logs (`tune-route`"
             + (f"; validation splits drawn with seed {seed}" if seed is not None else "")
             + (f"; {folds} draws of each validation split stacked" if folds > 1 else "; one draw of each split")
             + ").", ""]
    for s in report["settings"]:
        info = s["info"]
        lines += [f"## {s['setting']}", ""]
        if s["setting"] == "in-distribution":
            lines.append("The collection's own logs (train qrels) and test split, unchanged: the reference.")
        elif s["setting"] == "new-topics":
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
        gate = tt.get("gating") or {}
        gate_text = (f"familiarity gate centre {gate['centre']:.3f}, width {gate['width']:.3f}"
                     if gate and abs(gate["centre"]) < 1e8 else "constant gate" if gate else "no gate")
        lines.append(f"| {GATED} ({gate_text}) | {val(tt, 'random', 'hybrid_gated'):.2f} | "
                     f"{val(tt, 'topics', 'hybrid_gated'):.2f} | {s['test_auc'].get(GATED, nan):.2f} |")
        fit = tt.get("ranker_fit") or {}
        what = (f"shard ranker, out-of-sample AUC {fit['cv_auc']:.2f} on both splits stacked vs gated "
                f"{fit['baseline_auc']:.2f}" if fit.get("kept") else f"= {GATED}: {fit.get('why', 'no ranker fitted')}")
        lines.append(f"| {DEFAULT} ({what}) | - | - | {s['test_auc'].get(DEFAULT, nan):.2f} |")
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
        lines += ["", f"Per budget: % of exhaustive nDCG@10. Best classic router (cori, taily, redde, ranks, centroid) "
                  f"at the documents scored by {DEFAULT} (the default learned route; each classic router's nDCG@10 "
                  f"interpolated between its budgets {', '.join(map(str, CLASSIC_BUDGETS))}), and at the same number "
                  "of shards; `margin` = default minus best classic at equal docs, in nDCG@10 points (acceptance: "
                  ">= -0.5 under shift), with its 95% paired bootstrap interval over the test queries in brackets "
                  "(each query's classic value interpolated like the mean).", "",
                  f"| budget | best classic, equal docs | best classic, same shards | knn | hybrid[random] | "
                  f"hybrid[topics] | {GATED} | {DEFAULT} | margin |", "|---|---|---|---|---|---|---|---|---|"]
        by_route = {r["route"]: r for r in s["rows"]}
        ci_of = {row["budget"]: row.get("margin_ci95") for row in s["summary"]}
        for m in (*BUDGETS, "auto"):
            h = by_route[f"{DEFAULT}@{m}"]
            best = best_classic(s["rows"], h["docs_frac"])
            best_text = f"{best['pct_exhaustive']:.1f} ({best['route']})" if best else "-"
            ci = ci_of.get(str(m))
            margin = (f"{100 * (h['ndcg10'] - best['ndcg10']):+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")
                      if best else "-")
            if m == "auto":
                lines.append(f"| auto ({h['docs_frac']:.3f} docs) | {best_text} | - | - | - | - | - | "
                             f"{h['pct_exhaustive']:.1f} | {margin} |")
                continue
            same = max((r for r in s["rows"] if r["router"] in CLASSIC and r["budget"] == m),
                       key=lambda r: r["ndcg10"])
            lines.append(f"| {m} | {best_text} | {same['pct_exhaustive']:.1f} ({same['route']}) | "
                         f"{by_route[f'knn@{m}']['pct_exhaustive']:.1f} | "
                         f"{by_route[f'hybrid[random]@{m}']['pct_exhaustive']:.1f} | "
                         f"{by_route[f'hybrid[topics]@{m}']['pct_exhaustive']:.1f} | "
                         f"{by_route[f'{GATED}@{m}']['pct_exhaustive']:.1f} | {h['pct_exhaustive']:.1f} | "
                         f"{margin} |")
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
    parser.add_argument("--settings", default="in-distribution,new-topics,unlogged-docs")
    parser.add_argument("--step", type=float, default=0.1, help="weight grid of tune-route (default 0.1)")
    parser.add_argument("--tune-seed", type=int, default=None,
                        help="seed of tune-route's random and topic validation splits (default: tune-route's own); "
                             "other seeds show how much the tuned route depends on which logged queries were held out")
    parser.add_argument("--tune-folds", type=int, default=None,
                        help="validation draws of each split that tune-route stacks (default: tune-route's, 10; "
                             "1 is one draw of each)")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="OUT.json and OUT.md (default eval/results/routing/shift-<name>)")
    args = parser.parse_args(argv)
    if args.tune_folds is not None and args.tune_folds < 1:
        parser.error(f"--tune-folds must be at least 1, got {args.tune_folds}")

    import torch

    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route.shift import (
        NEW_TOPICS_FRACTION,
        in_distribution_setting,
        new_topics_setting,
        unlogged_docs_setting,
        write_setting,
    )

    torch.set_num_threads(1)
    data: Path = args.data.expanduser().resolve()
    name = args.name or data.name
    work = args.work.expanduser() / name
    index_path = args.index or build_or_reuse_index(data, work / f"index-k{args.shards}", args.shards, args.threads)
    fraction = args.fraction if args.fraction is not None else NEW_TOPICS_FRACTION
    results = []
    for setting in [s for s in args.settings.split(",") if s]:
        if setting == "in-distribution":
            derived = in_distribution_setting(data)
        elif setting == "new-topics":
            derived = new_topics_setting(data, fraction=fraction, seed=args.seed)
        elif setting == "unlogged-docs":
            derived = unlogged_docs_setting(data)
        else:
            parser.error(f"unknown setting {setting!r}")
        folder = write_setting(derived, data, work / setting)
        print(f"[{setting}] {folder}: {derived.info['n_log_pairs']} logged pairs, {derived.info['n_test_queries']} "
              "test queries", file=sys.stderr)
        results.append(run_setting(setting, folder, Path(index_path), args.step, args.k, args.tune_seed,
                                   args.tune_folds))
    index = ShardedIndex.open(index_path)
    report = {"command": command_line(__file__, argv, prefix="PYTHONPATH=. " + shlex.quote(sys.executable) + " "),
              "collection": name, "data": str(data), "index": str(index_path), "n_shards": index.n_shards,
              "tune_seed": args.tune_seed, "tune_folds": args.tune_folds, "default_route": DEFAULT,
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
