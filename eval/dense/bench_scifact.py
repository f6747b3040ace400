"""SciFact: BM25, dense (all-MiniLM-L6-v2) and hybrid retrieval, all via ``--route all``.

Fusion parameters are tuned on the TRAIN queries (809, judged in qrels/train.tsv) and the chosen
ones are reported on TEST (300): RRF's ``k`` and the convex weight ``alpha`` with min-max and
z-score normalisation. Tuning fuses BM25 and dense top-1000 lists computed once (the same
:func:`selectsearch.fusion.fuse` the searcher uses); the test numbers come from the searcher
itself (``SelectiveSearcher(..., retriever="hybrid")``), i.e. what the CLI reports with
``selectsearch eval INDEX --data ../shared/data/scifact --route all --retriever hybrid ...``.

Usage (builds the index when missing; the embedding cache of SciFact is reused):
  OMP_NUM_THREADS=1 .venv/bin/python eval/dense/bench_scifact.py --out eval/results/dense
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import REPO, data_root, judged_queries, script_parser

DATA = data_root()
INDEX_CMD = ["index", str(DATA / "scifact"), "--out", "indexes/scifact-dense16", "--shards", "16",
             "--partitioner", "kmeans", "--space", "dense", "--backend", "lucene,faiss", "--threads", "1"]
MEASURES = ["nDCG@10", "R@100", "R@1000"]


def ensure_index(path: Path) -> None:
    from selectsearch.cli import main

    if not (path / "manifest.json").exists() and main(["-q", *INDEX_CMD]) != 0:
        sys.exit("index build failed")


def lists(searcher, queries: dict[str, str], retriever: str, depth: int) -> dict[str, list[tuple[str, float]]]:
    out = searcher.with_retriever(retriever).batch_search(queries, k=depth)
    return {qid: [(h.doc_id, h.score) for h in r.hits] for qid, r in out.items()}


def score(run: dict[str, list[tuple[str, float]]], evaluator, parsed) -> dict[str, float]:
    agg = evaluator.calc_aggregate({q: dict(hits) for q, hits in run.items()})
    return {str(m): float(agg.get(m, 0.0)) for m in parsed}


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "eval/results/dense")
    parser.add_argument("--index", type=Path, default=REPO / "indexes/scifact-dense16")
    args = parser.parse_args(argv)
    os.chdir(REPO)
    import ir_measures

    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate, parse_measures
    from selectsearch.fusion import FusionConfig, fuse
    from selectsearch.search import SelectiveSearcher

    started = time.time()
    ensure_index(args.index)
    searcher = SelectiveSearcher.open(args.index, route="all", retriever="dense")
    parsed = parse_measures(MEASURES)

    # -- tune on TRAIN -------------------------------------------------------------------------
    train_qrels = load_qrels(DATA / "scifact", split="train")
    train_q = judged_queries(load_queries(DATA / "scifact", split="train"), train_qrels)
    evaluator = ir_measures.evaluator(parsed, train_qrels)
    bm25 = lists(searcher, train_q, "bm25", 1000)
    dense = lists(searcher, train_q, "dense", 1000)
    tuning = {"bm25": score(bm25, evaluator, parsed), "dense": score(dense, evaluator, parsed), "grid": []}
    grid = [FusionConfig("rrf", rrf_k=k) for k in (1, 5, 10, 20, 40, 60, 100, 200)]
    grid += [FusionConfig("convex", alpha=a, norm=n) for n in ("minmax", "zscore")
             for a in np.round(np.arange(0.05, 1.0, 0.05), 2).tolist()]
    for cfg in grid:
        fused = {q: fuse([bm25[q], dense[q]], cfg)[:1000] for q in train_q}
        tuning["grid"].append({"fusion": cfg.describe(), "train": score(fused, evaluator, parsed)})
    best_rrf = max((g for g in tuning["grid"] if g["fusion"]["method"] == "rrf"), key=lambda g: g["train"]["nDCG@10"])
    best_convex = max((g for g in tuning["grid"] if g["fusion"]["method"] == "convex"),
                      key=lambda g: g["train"]["nDCG@10"])

    # -- report on TEST --------------------------------------------------------------------------
    test_qrels = load_qrels(DATA / "scifact", split="test")
    test_q = judged_queries(load_queries(DATA / "scifact", split="test"), test_qrels)
    systems = [("bm25", "bm25", None), ("dense", "dense", None),
               ("hybrid rrf k=60 (default)", "hybrid", FusionConfig("rrf")),
               (f"hybrid rrf k={best_rrf['fusion']['rrf_k']:g} (tuned)", "hybrid",
                FusionConfig("rrf", rrf_k=best_rrf["fusion"]["rrf_k"])),
               ("hybrid convex minmax alpha=0.5 (default)", "hybrid", FusionConfig("convex")),
               (f"hybrid convex {best_convex['fusion']['norm']} alpha={best_convex['fusion']['alpha']:g} (tuned)",
                "hybrid", FusionConfig("convex", alpha=best_convex["fusion"]["alpha"],
                                       norm=best_convex["fusion"]["norm"]))]
    rows = []
    for label, retriever, fusion in systems:
        s = searcher.with_retriever(retriever, fusion)
        [row] = evaluate(s, test_q, test_qrels, ["all"], MEASURES, k=1000)
        row["system"] = label
        rows.append(row)
        print(f"{label:55s} " + " ".join(f"{m}={row['metrics'][m]:.4f}" for m in MEASURES), flush=True)
    result = {
        "command": "OMP_NUM_THREADS=1 .venv/bin/python eval/dense/bench_scifact.py --out eval/results/dense",
        "index_command": "selectsearch " + " ".join(INDEX_CMD),
        "cli_equivalents": [
            "selectsearch eval indexes/scifact-dense16 --data ../shared/data/scifact --split test --route all "
            "--retriever dense",
            "selectsearch eval indexes/scifact-dense16 --data ../shared/data/scifact --split test --route all "
            f"--retriever hybrid --fusion convex --norm {best_convex['fusion']['norm']} "
            f"--alpha {best_convex['fusion']['alpha']:g}",
        ],
        "queries": {"train": len(train_q), "test": len(test_q)},
        "tuning": tuning,
        "chosen": {"rrf": best_rrf["fusion"], "convex": best_convex["fusion"]},
        "test": rows,
        "seconds": round(time.time() - started, 1),
    }
    write_json(args.out / "scifact.json", result, end="\n")
    lines = ["| system (route all) | nDCG@10 | R@100 | R@1000 | encode ms/q | search ms/q |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        c = row["cost"]
        lines.append(f"| {row['system']} | " + " | ".join(f"{row['metrics'][m]:.4f}" for m in MEASURES)
                     + f" | {c.get('encode_ms', 0.0):.2f} | {c.get('search_ms', 0.0):.2f} |")
    tune = ["| fusion (train) | nDCG@10 | R@100 |", "|---|---|---|"]
    for g in [{"fusion": {"method": "bm25"}, "train": tuning["bm25"]},
              {"fusion": {"method": "dense"}, "train": tuning["dense"]}, *tuning["grid"]]:
        f = g["fusion"]
        name = (f"rrf k={f['rrf_k']:g}" if f["method"] == "rrf" else
                f"convex {f['norm']} alpha={f['alpha']:g}" if f["method"] == "convex" else f["method"])
        tune.append(f"| {name} | {g['train']['nDCG@10']:.4f} | {g['train']['R@100']:.4f} |")
    write_markdown(
        args.out / "scifact.md",
        "# SciFact: dense and hybrid retrieval (`--route all`)\n\n"
        f"Command: `{result['command']}`  \nIndex: `{result['index_command']}`\n\n"
        f"Test split ({len(test_q)} queries); fusion tuned on the train split ({len(train_q)} queries).\n\n"
        + "\n".join(lines) + "\n\n## Tuning on train\n\n" + "\n".join(tune) + "\n", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
