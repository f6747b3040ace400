"""Rerank the exhaustive BM25 top-DEPTH of test queries with several rerankers, side by side.

For a seeded subset of --queries test queries (all when 0), BM25 candidates come from our own
index (route ``all``: exactly ``selectsearch eval INDEX --route all``). For every query the
rerankers run one after the other (interleaved per query, so machine load hits all of them
alike) and their wall time per query is recorded (tokenisation, model, KB retrieval and the
sort — what ``SelectiveSearcher`` records as ``rerank`` ms). Metrics with ir-measures on the
test qrels. Per-query results are appended to WORK/results.jsonl as they finish, so an
interrupted run resumes where it stopped. Writes OUT.json and OUT.md.

Systems: ``bm25`` (no reranking) and each ``--system LABEL=FOLDER[:noretrieval]``. With
--ablate-retrieval a student is also scored without its KB from the same forward pass: the
``(no retrieval)`` row's ms is that pass alone, the student's ms adds retrieval and mixing.

Example:
  .venv/bin/python eval/rerank/rerank_bench.py indexes/homedepot-mico16 --data ../shared/data/homedepot \\
      --queries 300 --system teacher=/work/models/hd-rerank-teacher \\
      --system student=/work/models/hd-rerank-student --ablate-retrieval \\
      --work /work/logs/rerank-router/hd-rerank --out eval/results/rerank/homedepot
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from selectsearch.bench.measure import percentiles, timed
from selectsearch.bench.report import write_result
from selectsearch.bench.script import (
    add_collection_arguments,
    command_line,
    judged_queries,
    script_parser,
    seeded_subset,
)


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    add_collection_arguments(parser)
    parser.add_argument("--queries", type=int, default=0, help="seeded subset of test queries (0: all)")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--system", action="append", default=[],
                        help="LABEL=FOLDER[:OPTION[,OPTION]]; options: noretrieval, max_length=N")
    parser.add_argument("--max-length", type=int, default=0, help="override the models' max_length (0: keep)")
    parser.add_argument("--measures", nargs="+", default=["nDCG@10", "RR@10", "R@10", "nDCG@100"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, required=True, help="folder for resumable per-query results")
    parser.add_argument("--out", type=Path, required=True, help="OUT.json / OUT.md")
    parser.add_argument("--note", default="", help="a sentence for the Markdown report")
    parser.add_argument("--exclude-queries", type=Path, help="file of query ids to leave out (e.g. training queries)")
    parser.add_argument("--ablate-retrieval", action="store_true",
                        help="students: also score without KB retrieval from the same forward pass (timed apart)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    import ir_measures

    from selectsearch.data import load_qrels, load_queries
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.rerank import DistilledReranker, bm25_candidates, load_reranker
    from selectsearch.types import Hit

    index = ShardedIndex.open(args.index)
    qrels = load_qrels(args.data, split=args.split)
    queries = load_queries(args.data, split=args.split)
    qids = list(judged_queries(queries, qrels, relevant=True))
    if args.exclude_queries:
        excluded = set(args.exclude_queries.read_text().split())
        qids = [q for q in qids if q not in excluded]
    n_total = len(qids)
    qids = seeded_subset(qids, args.queries, seed=args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    cands = bm25_candidates(index, {q: queries[q] for q in qids}, depth=args.depth, cache_dir=args.work)

    systems: list[tuple[str, str, bool]] = []
    lengths: dict[str, int | None] = {}
    for item in args.system:
        label, _, spec = item.partition("=")
        folder, _, flags = spec.partition(":")
        options = [f for f in flags.split(",") if f]
        unknown = [f for f in options if f != "noretrieval" and not f.startswith("max_length=")]
        if unknown:
            parser.error(f"--system {item}: unknown option(s) {unknown}")
        lengths[label] = next((int(f.split("=")[1]) for f in options if f.startswith("max_length=")),
                              args.max_length or None)
        systems.append((label, folder, "noretrieval" not in options))
    rerankers = {label: load_reranker(folder, retrieval=retrieval, max_length=lengths[label])
                 for label, folder, retrieval in systems}

    done_path = args.work / "results.jsonl"
    done: dict[str, dict[str, object]] = {}
    if done_path.exists():
        for line in done_path.read_text().splitlines():
            rec = json.loads(line)
            done[rec["qid"]] = rec
    todo = [q for q in qids if q not in done]
    print(f"{len(qids)} queries ({len(done)} done), systems: {[s[0] for s in systems]}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with done_path.open("a") as f:
        for n, qid in enumerate(todo, 1):
            hits = [Hit(d, s, 0) for d, s in cands[qid]]
            texts = [str(index.doc(h.doc_id)["contents"]) for h in hits]
            rec: dict[str, object] = {"qid": qid, "runs": {"bm25": [[h.doc_id, h.score] for h in hits]}, "ms": {}}
            order = list(rerankers)
            if n % 2 == 0:  # alternate the order, so neither system always runs first
                order.reverse()
            for label in order:
                r = rerankers[label]
                if args.ablate_retrieval and isinstance(r, DistilledReranker):
                    # one student forward pass; time it alone, then the KB retrieval + mix on top
                    (alone, alone_ms), (mixed, mixed_ms) = _student_both(r, queries[qid], texts)
                    for name, scores, ms in ((label, mixed, mixed_ms), (f"{label} (no retrieval)", alone, alone_ms)):
                        ranked = sorted((h._replace(score=float(x)) for h, x in zip(hits, scores, strict=True)),
                                        key=lambda h: (-h.score, h.doc_id))
                        rec["ms"][name] = ms  # type: ignore[index]
                        rec["runs"][name] = [[h.doc_id, h.score] for h in ranked]  # type: ignore[index]
                    continue
                ranked, rec["ms"][label] = timed(r.rerank, queries[qid], hits, texts)  # type: ignore[index]
                rec["runs"][label] = [[h.doc_id, h.score] for h in ranked]  # type: ignore[index]
            f.write(json.dumps(rec) + "\n")
            f.flush()
            done[qid] = rec
            if n % 25 == 0:
                el = time.perf_counter() - start
                print(f"{n}/{len(todo)} queries, {el:.0f}s, ~{el / n * (len(todo) - n):.0f}s left", file=sys.stderr,
                      flush=True)

    labels = ["bm25"]
    for label, r in rerankers.items():
        labels.append(label)
        if args.ablate_retrieval and isinstance(r, DistilledReranker):
            labels.append(f"{label} (no retrieval)")
    parsed = [ir_measures.parse_measure(m) for m in args.measures]
    sub_qrels = {q: qrels[q] for q in qids}
    rows = []
    for label in labels:
        run = {q: {d: float(s) for d, s in done[q]["runs"][label]} for q in qids}  # type: ignore[index]
        agg = ir_measures.calc_aggregate(parsed, sub_qrels, run)
        ms = np.array([done[q]["ms"].get(label, 0.0) for q in qids]) if label != "bm25" else np.zeros(len(qids))  # type: ignore[attr-defined]
        p = percentiles(ms, (50, 95))
        rows.append({"system": label, "metrics": {str(m): float(agg[m]) for m in parsed},
                     "rerank_ms": p["mean_ms"], "rerank_ms_p50": p["p50_ms"], "rerank_ms_p95": p["p95_ms"]})
    base = rows[0]["metrics"]["nDCG@10"]
    teacher = next((r for r in rows if r["system"] == "teacher"), None)
    for r in rows:
        r["gain_ndcg10"] = r["metrics"]["nDCG@10"] - base
        if teacher is not None and teacher is not r and r["system"] != "bm25":
            tg = teacher["metrics"]["nDCG@10"] - base
            r["share_of_teacher_gain"] = (r["metrics"]["nDCG@10"] - base) / tg if tg > 0 else None
            r["latency_vs_teacher"] = r["rerank_ms"] / teacher["rerank_ms"] if teacher["rerank_ms"] else None
    command = command_line(__file__, argv or sys.argv[1:], prefix="OMP_NUM_THREADS=1 .venv/bin/python ")
    result = {"command": command, "index": args.index, "data": args.data, "split": args.split,
              "queries": len(qids), "queries_in_split": n_total, "depth": args.depth, "seed": args.seed,
              "systems": {label: folder + ("" if retrieval else " (no retrieval)")
                          + (f" reading {lengths[label]} tokens" if lengths[label] else "")
                          for label, folder, retrieval in systems},
              "max_length_override": args.max_length or None, "rows": rows,
              "reranker_stats": {k: v.stats.to_json() for k, v in rerankers.items()}}
    cols = [str(m) for m in parsed]
    lines = [f"# Reranking BM25 top-{args.depth}: {Path(args.data).name} {args.split}", "",
             f"Command: `{command}`", "",
             f"{len(qids)} of {n_total} judged {args.split} queries"
             + (f" (seeded subset, seed {args.seed})" if len(qids) < n_total else "")
             + f"; candidates: exhaustive BM25 top-{args.depth} from `{args.index}`. Rerank ms: wall time per query "
               "on one torch thread, systems interleaved per query (2-core machine shared with other jobs: compare "
               "ratios). " + args.note, "",
             "| system | " + " | ".join(cols) + " | gain nDCG@10 | share of teacher gain | rerank ms | p95 ms "
             "| latency vs teacher |",
             "|---|" + "---|" * (len(cols) + 5)]
    for r in rows:
        share = r.get("share_of_teacher_gain")
        lat = r.get("latency_vs_teacher")
        lines.append(f"| {r['system']} | " + " | ".join(f"{r['metrics'][c]:.4f}" for c in cols)
                     + f" | {r['gain_ndcg10']:+.4f} | {'' if share is None else f'{share:.2f}'} | "
                       f"{r['rerank_ms']:.1f} | {r['rerank_ms_p95']:.1f} | {'' if lat is None else f'{lat:.2f}'} |")
    lines += ["", "Systems: " + "; ".join(f"`{k}` = {v}" for k, v in result["systems"].items()), ""]
    write_result(args.out, result, lines)
    return 0


def _student_both(r: object, query: str, texts: list[str]) -> tuple[tuple[object, float], tuple[object, float]]:
    """Scores of a DistilledReranker without and with retrieval, and the ms each path costs
    (the student forward pass is shared; retrieval + mixing is timed on top of it)."""
    alone, mixed, alone_s, mixed_s = r.score_both(query, texts)  # type: ignore[attr-defined]
    return (alone, alone_s * 1000.0), (mixed, mixed_s * 1000.0)


if __name__ == "__main__":
    sys.exit(main())
