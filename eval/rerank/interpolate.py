"""BM25 + reranker score interpolation: the weight chosen on dev, applied to test.

Both inputs are result files of ``rerank_bench.py`` (per-query BM25 and reranker scores of the
same candidates): DEV from held-out TRAINING queries (never seen by the teacher), TEST from the
test queries. For every reranker, ``score = z(model) + w * z(bm25)`` over each query's candidates
(``selectsearch.rerank.interpolate``; ``load_reranker(..., first_stage_weight=w)`` does the same
at search time); ``w`` maximises dev nDCG@10 over --grid and is then applied to test. Latency
is the reranker's (interpolation adds a few microseconds). Writes OUT.json / OUT.md.

Example:
  .venv/bin/python eval/rerank/interpolate.py --data ../shared/data/homedepot \\
      --dev /work/logs/rerank-router/hd-dev/results.jsonl --test /work/logs/rerank-router/hd-rerank/results.jsonl \\
      --test-queries 150 --out eval/results/rerank/homedepot-interpolated
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from selectsearch.bench.report import write_result
from selectsearch.bench.script import command_line, judged_queries, script_parser, seeded_subset


def _load(path: Path, qids: list[str] | None) -> dict[str, dict[str, object]]:
    recs = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        recs[rec["qid"]] = rec
    return recs if qids is None else {q: recs[q] for q in qids if q in recs}


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--dev", type=Path, required=True, help="rerank_bench results.jsonl of dev (--dev-split)")
    parser.add_argument("--dev-split", default="train",
                        help="qrels split of the dev queries (default train; 'test' for a disjoint subset of test)")
    parser.add_argument("--test", type=Path, required=True, help="rerank_bench results.jsonl of test")
    parser.add_argument("--test-queries", type=int, default=0,
                        help="the seeded test subset size used (0: every query in the TEST file)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", default="0,0.1,0.2,0.3,0.5,0.75,1,1.5,2,3,5")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    import ir_measures

    from selectsearch.data import load_qrels, load_queries
    from selectsearch.rerank import interpolate

    grid = [float(x) for x in args.grid.split(",")]
    measure = ir_measures.parse_measure("nDCG@10")
    dev_qrels = load_qrels(args.data, split=args.dev_split)
    test_qrels = load_qrels(args.data, split="test")
    test_qids = list(judged_queries(load_queries(args.data, split="test"), test_qrels, relevant=True))
    test_qids = seeded_subset(test_qids, args.test_queries, seed=args.seed)
    dev = _load(args.dev, None)
    test = _load(args.test, test_qids if args.test_queries else None)
    if set(dev) & set(test):
        raise SystemExit(f"{args.dev} and {args.test} share {len(set(dev) & set(test))} queries; dev must be disjoint")
    if args.test_queries and len(test) != len(test_qids):
        raise SystemExit(f"{args.test} holds {len(test)} of the {len(test_qids)} test queries; finish that run first")

    def ndcg(recs: dict[str, dict[str, object]], qrels: dict[str, dict[str, int]], system: str, w: float) -> float:
        run = {}
        for qid, rec in recs.items():
            bm25 = dict(rec["runs"]["bm25"])  # type: ignore[index]
            model = dict(rec["runs"][system])  # type: ignore[index]
            ids = list(bm25)
            scores = interpolate(np.array([model[d] for d in ids]), np.array([bm25[d] for d in ids]), w)
            run[qid] = {d: float(s) for d, s in zip(ids, scores, strict=True)}
        return float(ir_measures.calc_aggregate([measure], {q: qrels[q] for q in recs}, run)[measure])

    dev_systems = set(next(iter(dev.values()))["runs"])  # type: ignore[call-overload]
    systems = [s for s in next(iter(test.values()))["runs"] if s != "bm25" and s in dev_systems]  # type: ignore[union-attr]
    base = float(ir_measures.calc_aggregate([measure], {q: test_qrels[q] for q in test},
                                            {q: dict(r["runs"]["bm25"]) for q, r in test.items()})[measure])  # type: ignore[index]
    rows = [{"system": "bm25", "w": None, "dev": None, "test_model_alone": base, "test": base, "ms": 0.0}]
    for system in systems:
        dev_scores = {w: ndcg(dev, dev_qrels, system, w) for w in grid}
        best = max(grid, key=lambda w: (dev_scores[w], -w))
        ms = float(np.mean([r["ms"][system] for r in test.values()]))  # type: ignore[index]
        rows.append({"system": system, "w": best, "dev": dev_scores[best], "dev_grid": dev_scores,
                     "test_model_alone": ndcg(test, test_qrels, system, 0.0),
                     "test": ndcg(test, test_qrels, system, best), "ms": ms})
    teacher = next((r for r in rows if r["system"] == "teacher"), None)
    for r in rows:
        r["gain"] = r["test"] - base  # type: ignore[operator]
        if teacher is not None and r is not teacher and r["system"] != "bm25":
            tg = teacher["test"] - base  # type: ignore[operator]
            r["share_of_teacher_gain"] = r["gain"] / tg if tg > 0 else None  # type: ignore[operator]
            r["latency_vs_teacher"] = r["ms"] / teacher["ms"] if teacher["ms"] else None  # type: ignore[operator]
    command = command_line(__file__, argv or sys.argv[1:], prefix="OMP_NUM_THREADS=1 .venv/bin/python ")
    result = {"command": command, "dev_queries": len(dev), "test_queries": len(test), "grid": grid, "rows": rows}
    lines = [f"# BM25 + reranker interpolation, weight chosen on dev: {Path(args.data).name}", "",
             f"Command: `{command}`", "",
             f"`score = z(model) + w * z(BM25)` over each query's BM25 top-100; `w` maximises nDCG@10 on {len(dev)} "
             + ("held-out training queries (not seen by the teacher)" if args.dev_split == "train" else
                f"{args.dev_split} queries disjoint from the test queries below")
             + f", then applied to {len(test)} test queries. "
             "Rerank ms are the model's (same runs as the pure-model table).", "",
             "| system | w (dev) | dev nDCG@10 | test nDCG@10, model alone | test nDCG@10, interpolated "
             "| gain over BM25 | share of teacher gain | rerank ms | latency vs teacher |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        share, lat = r.get("share_of_teacher_gain"), r.get("latency_vs_teacher")
        lines.append(f"| {r['system']} | {'' if r['w'] is None else r['w']} | "
                     f"{'' if r['dev'] is None else format(r['dev'], '.4f')} | {r['test_model_alone']:.4f} | "
                     f"{r['test']:.4f} | {r['gain']:+.4f} | {'' if share is None else format(share, '.2f')} | "
                     f"{r['ms']:.1f} | {'' if lat is None else format(lat, '.2f')} |")
    lines.append("")
    write_result(args.out, result, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
