"""Proxy benchmark on the first N documents of a collection (no Lucene): MICO frozen vs dense k-means.

Why: on the shared 2-core machine the embedding of the full Home Depot corpus could not finish in
the time available (see eval/results/mico/README.md), so this compares the two methods on the
sub-collection of the first N documents in corpus order, whose embeddings were cached. Both sides
use the same embeddings, the same K, the same (query, relevant doc) pairs and the same cost
definition (``selectsearch.selective_metrics.coverage_curve`` with the sub-collection's shard sizes):

* logs = train qrels pairs whose document is in the sub-collection; the validation split for
  model selection comes out of them; the test split is read only for the final numbers;
* dense k-means/centroid = spherical FAISS k-means (seed 0) on the sub-collection's embeddings,
  nearest-centroid assignment and routing (what ``--partitioner kmeans --space dense`` +
  ``centroid@m`` do);
* MICO frozen = :func:`selectsearch.mico.trainer.train_mico` on the cached embeddings, heads
  initialised at those centroids.

Usage:
  .venv/bin/python eval/mico/subset_bench.py ../shared/data/homedepot --n-docs 16384 --shards 16 \
      --embeddings EMB.f32[.partial] --json eval/results/mico/hd-subset16k.json [--set beta=1 ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from selectsearch.bench.measure import Stopwatch
from selectsearch.bench.report import write_json
from selectsearch.bench.script import script_parser


def main(argv: list[str] | None = None) -> int:
    import torch

    from selectsearch.cluster import spherical_kmeans
    from selectsearch.data import load_qrels, load_queries, open_corpus
    from selectsearch.encode import TextEncoder
    from selectsearch.mico.config import MicoConfig
    from selectsearch.mico.features import embed_queries
    from selectsearch.mico.logs import load_log_pairs
    from selectsearch.mico.trainer import train_mico
    from selectsearch.mico.validation import argmax_in_chunks, routing_curve
    from selectsearch.selective_metrics import partition_balance
    from selectsearch.train.arguments import OLD_NAMES

    parser = script_parser(__doc__)
    parser.add_argument("data")
    parser.add_argument("--n-docs", type=int, required=True)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--embeddings", required=True, help="float32 (n_docs_total, 384) cache file (rows in order)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--set", action="append", default=[], help="MicoConfig FIELD=VALUE")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    n = args.n_docs
    pairs = load_log_pairs([args.data], "train")
    total = pairs.n_docs
    matrix = np.memmap(args.embeddings, dtype=np.float32, mode="r", shape=(total, args.dim))
    vectors = np.array(matrix[:n])
    if not (np.linalg.norm(vectors, axis=1) > 0.99).all():
        raise SystemExit(f"rows 0..{n} of {args.embeddings} are not all computed")
    keep = pairs.doc_positions[pairs.pair_doc] < n
    inside = np.flatnonzero(pairs.doc_positions < n)  # logged docs of the sub-collection
    new_index = np.full(len(pairs.doc_positions), -1, dtype=np.int64)
    new_index[inside] = np.arange(len(inside))
    pairs.pair_query, pairs.clicks = pairs.pair_query[keep], pairs.clicks[keep]
    pairs.pair_doc = new_index[pairs.pair_doc[keep]]
    pairs.doc_texts = [pairs.doc_texts[i] for i in inside.tolist()]
    pairs.doc_positions = pairs.doc_positions[inside]
    pairs.n_docs = n
    base = MicoConfig(n_clusters=args.shards, epochs=args.epochs)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        key = OLD_NAMES.get(key, key)  # head_lr=... (the name the README's commands use) is head_learning_rate
        overrides[key] = type(getattr(base, key))(value)
    config = MicoConfig(**{**base.to_dict(), **overrides})

    # test pairs inside the sub-collection
    doc_ids = [d.doc_id for _, d in zip(range(n), open_corpus(args.data), strict=False)]
    position = {d: i for i, d in enumerate(doc_ids)}
    queries = load_queries(args.data, split="test")
    qrels = load_qrels(args.data, split="test")
    test_ids = [q for q in queries if any(r > 0 and d in position for d, r in qrels.get(q, {}).items())]
    row = {q: i for i, q in enumerate(test_ids)}
    pair_q = np.array([row[q] for q in test_ids for d, r in qrels[q].items() if r > 0 and d in position])
    pair_d = np.array([position[d] for q in test_ids for d, r in qrels[q].items() if r > 0 and d in position])
    encoder = TextEncoder(None, max_length=config.max_length)
    texts = [queries[q] for q in test_ids]
    import hashlib

    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    test_vectors = embed_queries(texts, key, encoder)

    def evaluate(doc_w: np.ndarray, doc_b: np.ndarray, q_scores: np.ndarray) -> dict[str, object]:
        shards = argmax_in_chunks(vectors, doc_w, doc_b)
        sizes = np.bincount(shards, minlength=args.shards)
        curve = routing_curve(q_scores, pair_q, shards[pair_d], sizes)
        return {"auc": curve.auc, "coverage": {m: float(curve.coverage[m - 1]) for m in (1, 2, 4, 8)},
                "cost_fraction": {m: float(curve.cost_fraction[m - 1]) for m in (1, 2, 4, 8)},
                "balance": partition_balance(sizes)}

    with Stopwatch() as kmeans_time:
        centroids = spherical_kmeans(vectors, args.shards, seed=config.seed)
    kmeans_seconds = kmeans_time.wall_s
    kmeans = evaluate(centroids, np.zeros(args.shards, np.float32), test_vectors @ centroids.T)
    with Stopwatch() as mico_time:
        result = train_mico(pairs, config, corpus_vectors=vectors)
    mico_seconds = mico_time.wall_s
    w_d = result.doc_head.linear.weight.detach().numpy()
    b_d = result.doc_head.linear.bias.detach().numpy()
    w_q = result.query_head.linear.weight.detach().numpy()
    b_q = result.query_head.linear.bias.detach().numpy()
    mico = evaluate(w_d, b_d, test_vectors @ w_q.T + b_q)
    out = {"data": args.data, "n_docs": n, "of_total": total, "shards": args.shards,
           "n_train_pairs_in_subset": int(keep.sum()), "n_test_queries": len(test_ids), "n_test_pairs": len(pair_q),
           "config": config.to_dict(),
           "kmeans_centroid": {**kmeans, "seconds": kmeans_seconds},
           "mico_frozen": {**mico, "seconds": mico_seconds, "initial_val_auc": result.initial_auc,
                           "best_val_auc": result.best_auc, "best_step": result.state.best_step,
                           "steps": result.state.step, "history": result.state.history}}
    write_json(args.json, out, indent=1)
    for name in ("kmeans_centroid", "mico_frozen"):
        r = out[name]
        print(name, round(r["auc"], 2), {m: round(v, 3) for m, v in r["coverage"].items()},
              round(r["balance"]["max_over_mean"], 2), round(r["seconds"], 1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
