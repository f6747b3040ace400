"""Per-query budgets (``hybrid@auto:T``) against fixed budgets and Rank-S/Taily's own cut-offs.

On a tuned index (``selectsearch tune-route`` wrote ``INDEX/routing.json``), this script:

1. calibrates the tuned ``hybrid`` router's shard probabilities on the held-out logged queries
   tune-route used (``--calibrate``: fitted and stored in ``INDEX/routing.json``; otherwise the
   calibration already stored is used), and reports that calibration on the held-out queries
   (in-sample: 2 parameters) and on the test queries (reliability table, ECE, and the coverage
   each target promises against the coverage it achieves);
2. evaluates on the test split: exhaustive search, ``hybrid@1..8`` (fixed budgets),
   ``hybrid@auto:T`` for every ``--targets`` T, and the classic routers' own cut-offs: Rank-S
   (``ranks`` with each ``--ranks-thresholds``) and Taily (``taily`` with each ``--taily-nmin``);
3. compares them at equal average documents scored (``docs_frac``, the mean fraction of the
   collection in the searched shards): a curve of nDCG@10 against docs_frac (PNG), each
   per-query budget against the fixed-budget curve interpolated at its docs_frac, and the
   smallest T reaching ``--share`` (97%) of exhaustive nDCG@10 with its docs_frac.

Quality only: the milliseconds in the JSON were measured while other jobs shared the machine
and are not results.

Usage (from the repository root; the index is modified only with --calibrate, so run it on a copy):
  cp -r indexes/scifact-k16 /tmp/sf-k16      # k-means, 16 shards, tuned: centroid,cori,knn
  .venv/bin/python eval/routing/budget.py /tmp/sf-k16 --data ../shared/data/scifact \\
      --collection scifact --docs-target 0.15 --calibrate --out eval/results/routing
  selectsearch index ../shared/data/homedepot --out /tmp/hd-k16 --shards 16 --partitioner kmeans
  selectsearch tune-route /tmp/hd-k16 --data ../shared/data/homedepot --routers centroid,cori,taily,knn
  .venv/bin/python eval/routing/budget.py /tmp/hd-k16 --data ../shared/data/homedepot \\
      --collection homedepot --docs-target 0.20 --calibrate --out eval/results/routing
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from selectsearch.bench.report import format_table, pyplot, save_figure, write_result
from selectsearch.bench.report.curves import interpolate_at
from selectsearch.bench.script import command_line, judged_queries, script_parser
from selectsearch.data import load_qrels, load_queries
from selectsearch.evaluation import evaluate
from selectsearch.index.sharded import ShardedIndex
from selectsearch.ranking import rank_by_scores
from selectsearch.route import make_router
from selectsearch.route.budget import (
    AutoBudgetRouter,
    coverage_at_targets,
    read_calibration,
    reliability,
    store_calibration,
)
from selectsearch.route.calibrate import calibrate_index
from selectsearch.route.routing_file import read_routing
from selectsearch.search import SelectiveSearcher
from selectsearch.selective_metrics import relevant_pairs
from selectsearch.types import Query

#: coverage targets swept: every 0.05 from 0.3 to 0.95, and 0.98
TARGETS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98)
RANKS_THRESHOLDS = (0.1, 0.03, 0.01, 0.003, 1e-3, 1e-4, 1e-5)
TAILY_NMIN = (10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01)
MEASURES = ["nDCG@10", "R@100"]


def _num(x: float) -> str:
    return f"{x:g}"


def calibration_report(index: ShardedIndex, data: str, split: str, targets: list[float], max_shards: int | None
                       ) -> dict[str, Any]:
    """The stored hybrid calibration, and how it does on the test queries."""
    queries = load_queries(data, split=split)
    qrels = load_qrels(data, split=split)
    ids = list(judged_queries(queries, qrels, relevant=True))
    pq, ps = relevant_pairs(ids, qrels, index.shard_of_doc)
    router = make_router(f"hybrid@auto{'/' + str(max_shards) if max_shards else ''}", index)
    assert isinstance(router, AutoBudgetRouter)
    qs = [Query(q, queries[q]) for q in ids]
    scores = router.scores(qs)
    probs = router.calibration.probabilities(scores, index.shard_sizes)
    ranking = rank_by_scores(scores)
    test = reliability(probs, pq, ps)
    test["coverage"] = coverage_at_targets(probs, ranking, pq, ps, targets, router.max_shards, index.shard_sizes)
    test.update({"n_queries": len(ids), "n_pairs": len(pq)})
    return {"stored": read_calibration(index.path, "hybrid"), "max_shards": router.max_shards, "test": test}


def run_evaluations(index_path: str, data: str, split: str, args: Any) -> list[dict[str, Any]]:
    """Every row: fixed budgets, per-query budgets, and each classic cut-off setting."""
    queries = load_queries(data, split=split)
    qrels = load_qrels(data, split=split)
    searcher = SelectiveSearcher.open(index_path, route="all")
    suffix = f"/{args.max_shards}" if args.max_shards else ""
    auto = f"hybrid@auto:{','.join(_num(t) for t in args.targets)}{suffix}"
    rows = evaluate(searcher, queries, qrels, ["all", f"hybrid@1:{args.max_budget}", auto], MEASURES, k=args.k)
    sweeps = (("threshold", "ranks", args.ranks_thresholds), ("taily_n_min", "taily", args.taily_nmin))
    for key, router, values in sweeps:
        for value in values:
            [row] = evaluate(searcher, queries, qrels, [router], MEASURES, k=args.k,
                             router_options={f"{router}.{key}": value})
            row["route"] = f"{router}[{key}={_num(value)}]"
            row["setting"] = {key: value}
            rows.append(row)
    return rows


def _point(row: dict[str, Any]) -> tuple[float, float]:
    return float(row["cost"]["fraction_scored"]), float(row["metrics"]["nDCG@10"])


def summarise(rows: list[dict[str, Any]], share: float, docs_target: float) -> dict[str, Any]:
    """Equal-docs comparisons and the T reaching ``share`` of exhaustive nDCG@10."""
    exhaustive = next(r for r in rows if r["route"] == "all")["metrics"]["nDCG@10"]
    goal = share * exhaustive
    fixed = [r for r in rows if r["router"] == "hybrid" and r.get("budget") is not None]
    auto = sorted((r for r in rows if "auto" in r), key=lambda r: r["auto"]["target"])
    classic = [r for r in rows if r["router"] in ("ranks", "taily")]
    fixed_pts = [_point(r) for r in fixed]
    auto_pts = [_point(r) for r in auto]
    versus_fixed = [{"route": r["route"], "docs_frac": _point(r)[0], "ndcg10": _point(r)[1],
                     "fixed_ndcg10_same_docs": interpolate_at(fixed_pts, _point(r)[0]),
                     "delta": _point(r)[1] - interpolate_at(fixed_pts, _point(r)[0])} for r in auto]
    versus_classic = [{"route": r["route"], "docs_frac": _point(r)[0], "ndcg10": _point(r)[1],
                       "auto_ndcg10_same_docs": interpolate_at(auto_pts, _point(r)[0]),
                       "delta": interpolate_at(auto_pts, _point(r)[0]) - _point(r)[1]} for r in classic]
    reach = next((r for r in auto if r["metrics"]["nDCG@10"] >= goal), None)
    reach_fixed = next((r for r in sorted(fixed, key=lambda r: r["budget"]) if r["metrics"]["nDCG@10"] >= goal), None)
    return {"exhaustive_ndcg10": exhaustive, "share": share, "goal_ndcg10": goal, "docs_target": docs_target,
            "auto_reaching": None if reach is None else {
                "route": reach["route"], "target": reach["auto"]["target"], "ndcg10": reach["metrics"]["nDCG@10"],
                "docs_frac": reach["cost"]["fraction_scored"], "shards": reach["cost"]["shards_searched"],
                "meets_docs_target": reach["cost"]["fraction_scored"] <= docs_target},
            "fixed_reaching": None if reach_fixed is None else {
                "route": reach_fixed["route"], "ndcg10": reach_fixed["metrics"]["nDCG@10"],
                "docs_frac": reach_fixed["cost"]["fraction_scored"]},
            "auto_vs_fixed": versus_fixed, "classic_vs_auto": versus_classic}


def plot(rows: list[dict[str, Any]], summary: dict[str, Any], out: Path, title: str) -> Path:
    """nDCG@10 against docs_frac: fixed budgets, per-query budgets, Rank-S and Taily cut-off sweeps."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    groups = [("hybrid@m (fixed)", [r for r in rows if r["router"] == "hybrid" and r.get("budget") is not None], "o"),
              ("hybrid@auto:T", sorted((r for r in rows if "auto" in r), key=lambda r: r["auto"]["target"]), "s"),
              ("Rank-S cut-off (threshold sweep)", [r for r in rows if r["router"] == "ranks"], "^"),
              ("Taily cut-off (n_min sweep)", [r for r in rows if r["router"] == "taily"], "v")]
    for label, family, marker in groups:
        pts = sorted(_point(r) for r in family)
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker=marker, markersize=4, label=label)
    for r in (r for r in rows if "auto" in r):
        ax.annotate(_num(r["auto"]["target"]), _point(r), fontsize=6, xytext=(3, -8), textcoords="offset points")
    ax.axhline(summary["exhaustive_ndcg10"], color="black", linestyle="--", linewidth=1, label="exhaustive")
    ax.axhline(summary["goal_ndcg10"], color="grey", linestyle=":", linewidth=1,
               label=f"{summary['share']:.0%} of exhaustive")
    ax.axvline(summary["docs_target"], color="red", linestyle=":", linewidth=1,
               label=f"docs target {summary['docs_target']:.0%}")
    ax.set_xscale("log")
    ax.set_xlabel("mean fraction of the collection scored (docs_frac)")
    ax.set_ylabel("nDCG@10")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, out, dpi=120)


def markdown(result: dict[str, Any]) -> list[str]:
    s, cal = result["summary"], result["calibration"]
    tuned = result["tuned"]
    fusion = " + ".join(f"{w:g} {n}" for n, w in zip(tuned["routers"], tuned["weights"], strict=True))
    stored, test = cal["stored"], cal["test"]
    lines = [f"# Per-query budgets on {result['collection']} ({result['n_shards']} shards)", "",
             "```", result["command"], "```", "",
             f"Index: `{result['index_command']}`, then `selectsearch tune-route` (logs `{result['tuned']['logs']}`): "
             f"hybrid = {fusion}"
             f" (validation coverage AUC {result['tuned']['val_auc']:.2f} on {result['tuned']['n_val_queries']} "
             "held-out logged queries). Test split: its judged queries. Quality only (no timing).", "",
             f"Exhaustive nDCG@10 {s['exhaustive_ndcg10']:.4f}; {s['share']:.0%} of it = {s['goal_ndcg10']:.4f}.", ""]
    reach, fixed = s["auto_reaching"], s["fixed_reaching"]
    if reach:
        ok = "meets" if reach["meets_docs_target"] else "misses"
        lines.append(f"**Smallest T reaching {s['share']:.0%}: `{reach['route']}`**, nDCG@10 {reach['ndcg10']:.4f} at "
                     f"docs_frac {reach['docs_frac']:.3f} ({reach['shards']:.2f} shards on average): {ok} the "
                     f"target docs_frac <= {s['docs_target']:.2f}.")
    else:
        lines.append(f"No T of the sweep reaches {s['share']:.0%} of exhaustive nDCG@10.")
    if fixed:
        lines.append(f"Cheapest fixed budget reaching it: `{fixed['route']}`, nDCG@10 {fixed['ndcg10']:.4f} at "
                     f"docs_frac {fixed['docs_frac']:.3f}.")
    lines += ["", f"![nDCG@10 vs docs_frac]({result['plot']})", "",
              "## Every route", "",
              "shards: mean, and p10/p50/p90/max per query; `vs fixed`: nDCG@10 minus that of the fixed budgets "
              "(hybrid@1..8, linearly interpolated) at the same docs_frac; for Rank-S/Taily, `vs fixed` is "
              "their nDCG@10 minus hybrid@auto's (interpolated over T) at their docs_frac.", ""]
    delta = {d["route"]: d["delta"] for d in s["auto_vs_fixed"]}
    delta.update({d["route"]: -d["delta"] for d in s["classic_vs_auto"]})
    table = []
    for r in result["rows"]:
        c = r["cost"]
        spread = "/".join(f"{c[f'shards_searched_{k}']:g}" for k in ("p10", "p50", "p90", "max"))
        table.append([f"`{r['route']}`", f"{r['metrics']['nDCG@10']:.4f}", f"{r['metrics']['R@100']:.4f}",
                      f"{r['metrics'].get('coverage', float('nan')):.3f}", f"{c['shards_searched']:.2f}", spread,
                      f"{c['fraction_scored']:.3f}", f"{delta[r['route']]:+.4f}" if r["route"] in delta else ""])
    lines.append(format_table(["route", "nDCG@10", "R@100", "coverage", "shards", "p10/p50/p90/max", "docs_frac",
                               "vs fixed"], table))
    lines += ["", "## Calibration of hybrid's shard probabilities", ""]
    if stored:
        info, nan = stored, float("nan")
        lines.append(f"Fitted on {info.get('n_queries')} held-out logged queries ({info.get('n_pairs')} pairs): "
                     f"scale `{info['scale']}`, inverse temperature {info['inv_temperature']:.3f}, size-prior weight "
                     f"{info['uniform']:.3f}; mean log-likelihood per pair {info.get('log_likelihood', nan):.3f} "
                     f"(size prior alone {info.get('log_likelihood_prior', nan):.3f}); held-out ECE "
                     f"{info.get('ece', nan):.4f} (in-sample, 2 parameters).")
    lines += ["", f"On the {test['n_queries']} test queries ({test['n_pairs']} relevant pairs): "
              f"**ECE {test['ece']:.4f}** (top shard), classwise ECE {test['classwise_ece']:.4f}. Reliability of "
              "the top shard's probability (weight = relevant pairs):", "",
              format_table(["p(top shard)", "weight", "predicted", "observed"],
                           [[b["bin"], f"{b['weight']:.0f}", f"{b['predicted']:.3f}", f"{b['observed']:.3f}"]
                            for b in test["table"]]), "",
              f"Coverage each target promises (`predicted`) and achieves on the test pairs (at most "
              f"{cal['max_shards']} shards):", "",
              format_table(["T", "predicted", "achieved", "shards", "docs_frac"],
                           [[_num(c["target"]), f"{c['predicted']:.3f}", f"{c['achieved']:.3f}", f"{c['shards']:.2f}",
                             f"{c['docs_frac']:.3f}"] for c in test["coverage"]])]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("index", help="tuned index (routing.json)")
    parser.add_argument("--data", required=True, help="BEIR folder (test queries and qrels; logs = --logs split)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--logs", default=None, help="logs to calibrate on (default: those routing.json names)")
    parser.add_argument("--collection", required=True, help="name in the output files (budget-NAME.json/.md/.png)")
    parser.add_argument("--calibrate", action="store_true",
                        help="fit the calibration on the held-out logs and store it in INDEX/routing.json")
    parser.add_argument("--targets", type=float, nargs="+", default=list(TARGETS))
    parser.add_argument("--max-shards", type=int, default=None, help="M of hybrid@auto:T/M (default: the router's)")
    parser.add_argument("--max-budget", type=int, default=8, help="fixed budgets hybrid@1..N (default 8)")
    parser.add_argument("--ranks-thresholds", type=float, nargs="+", default=list(RANKS_THRESHOLDS))
    parser.add_argument("--taily-nmin", type=float, nargs="+", default=list(TAILY_NMIN))
    parser.add_argument("--share", type=float, default=0.97, help="share of exhaustive nDCG@10 to reach (0.97)")
    parser.add_argument("--docs-target", type=float, default=0.15, help="docs_frac the share should need at most")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("eval/results/routing"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    index = ShardedIndex.open(args.index)
    if args.calibrate:
        calibration = calibrate_index(index, logs=args.logs)
        store_calibration(index.path, calibration)
    elif read_calibration(index.path, "hybrid") is None:
        raise SystemExit(f"{index.path} has no hybrid calibration; pass --calibrate (writes INDEX/routing.json)")
    cal = calibration_report(index, args.data, args.split, args.targets, args.max_shards)
    rows = run_evaluations(args.index, args.data, args.split, args)
    summary = summarise(rows, args.share, args.docs_target)
    stem = args.out / f"budget-{args.collection}"
    png = plot(rows, summary, stem.with_suffix(".png"), f"{args.collection}, {index.n_shards} shards: "
               "per-query budgets vs fixed budgets and classic cut-offs")
    tuned = read_routing(index.path) or {}
    setup = {"index_command": " ".join(index.manifest.command),
             "tuned": {k: tuned.get(k) for k in ("routers", "weights", "val_auc", "logs", "n_val_queries")}}
    result = {"collection": args.collection, "index": str(index.path), "n_shards": index.n_shards, **setup,
              "command": command_line(__file__, argv if argv is not None else sys.argv[1:],
                                      prefix=".venv/bin/python "),
              "plot": png.name, "summary": summary, "calibration": cal, "rows": rows}
    write_result(stem, result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
