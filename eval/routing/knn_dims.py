"""The knn router's embedding space in fewer dimensions: routing CPU against coverage AUC.

One query at a time, the default fused router spends its CPU on memory that the search of the
previous query pushed out of the caches (``eval/results/routing/kernels-ab/README.md``): the
logged-query vectors (``N x dim`` float32, read in full per query) and the static encoder's token
rows. Projecting the static table onto the top principal directions of the encoder's embeddings
of a sample of the index's documents (two short texts per document, as the adapted encoder is
fitted on; no query is read) shrinks both: a query and every logged query are then embedded in
``d`` dimensions, and cosines are taken there.

For each ``--dims`` value (the encoder's own dimension is the reference, measured as it is), on a
built index with a tuned fusion (``selectsearch tune-route``) whose ``knn`` router has a static
encoder, this writes: the share of the sample's embedding energy kept; the coverage AUC of the
fused router ``hybrid@M`` (the index's weights and gate; only ``knn``'s table and knowledge base
projected) on the ``--split`` queries; and, one query at a time with the search of its ``M``
shards at ``--k`` between two queries, the routing CPU per query (thread time of
``router.select``; variants interleaved round-robin per query, least CPU of ``--passes`` kept per
query after a warm-up pass) and the search CPU.

The fusion's gate (if it is not constant) keeps the centre it was fitted with on the encoder's own
familiarity, which a projection shifts (cosines of fewer dimensions are larger): the report says
whether the gate is constant, i.e. whether the variants differ in knn's scores only.

A timing benchmark: run it alone on an idle machine (the report prints the load average).

Example (from the repository root; the index tuned with ``selectsearch tune-route``):
  OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python eval/routing/knn_dims.py indexes/sfwiki-kmeans32 \\
      --data ../shared/data/scifact --dims 384 256 192 128 --out eval/results/routing/knn-dims-sfwiki32
"""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.bench.measure import load_average, machine
from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import command_line, script_parser


def projected_table(table: Any, basis: np.ndarray, folder: Path) -> Path:
    """``table`` (a model2vec ``StaticModel``) with its vectors projected on ``basis`` (``dim x d``),
    saved as a model2vec folder: the same tokenizer and settings, ``d``-dimensional vectors."""
    from model2vec import StaticModel

    vectors = np.ascontiguousarray(np.asarray(table.embedding, dtype=np.float32) @ basis)
    StaticModel(vectors, table.tokenizer, config={**table.config, "hidden_dim": basis.shape[1]},
                normalize=table.normalize, base_model_name=table.base_model_name, language=table.language,
                max_length=table.max_length).save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("index", type=Path, help="built index with a tuned fusion that includes knn (not modified)")
    parser.add_argument("--data", required=True, help="BEIR folder: logs (--logs split) and evaluated queries")
    parser.add_argument("--logs", default="train")
    parser.add_argument("--split", default="test")
    parser.add_argument("--dims", type=int, nargs="+", required=True, help="dimensions to compare (each >= 1)")
    parser.add_argument("--budget", type=int, default=2)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--sample-docs", type=int, default=2500, help="documents whose texts give the directions")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="OUT.json and OUT.md")
    args = parser.parse_args(argv)
    if min(args.dims) < 1:
        parser.error("--dims must be >= 1")

    from selectsearch.data import load_qrels, load_queries
    from selectsearch.encode import TextEncoder
    from selectsearch.errors import SelectSearchError
    from selectsearch.mico.logs import read_log_records
    from selectsearch.ranking import rank_by_scores
    from selectsearch.route.hybrid import HybridRouter
    from selectsearch.route.knn import LoggedQueryRouter, document_texts, log_shard_distributions
    from selectsearch.search import SelectiveSearcher
    from selectsearch.selective_metrics import coverage_curve
    from selectsearch.types import Query

    try:
        searcher = SelectiveSearcher.open(args.index, f"hybrid@{args.budget}")
    except SelectSearchError as exc:
        parser.error(str(exc))
    fused = searcher.router
    knn = next((r for r in getattr(fused, "routers", []) if r.name == "knn"), None)
    table = getattr(getattr(knn, "encoder", None), "table", None)
    if not isinstance(fused, HybridRouter) or not isinstance(knn, LoggedQueryRouter) or table is None:
        parser.error(f"{args.index}: hybrid@{args.budget} is not a tuned fusion with a static-encoder knn router "
                     "(run `selectsearch tune-route INDEX --data DATA --routers centroid,cori,knn`)")
    dim = int(knn.encoder.dim)
    if max(args.dims) > dim:
        parser.error(f"--dims above the encoder's {dim} dimensions")
    index = searcher.index
    queries = [Query(q, t) for q, t in load_queries(args.data, split=args.split).items()]
    qrels = load_qrels(args.data, split=args.split)
    sample = knn.encoder.encode(document_texts(index, args.sample_docs, args.seed))
    _, singular, directions = np.linalg.svd(sample.astype(np.float64), full_matrices=False)
    energy = np.cumsum(singular**2) / float((singular**2).sum())
    texts, dist, _ = log_shard_distributions(read_log_records(args.data, args.logs), index.shard_of_doc,
                                             index.n_shards)
    pair_query, pair_shard = [], []
    for i, q in enumerate(queries):
        for doc, rel in qrels.get(q.query_id, {}).items():
            if rel > 0 and doc in index.shard_of_doc:
                pair_query.append(i)
                pair_shard.append(index.shard_of_doc[doc])

    variants: dict[int, HybridRouter] = {}
    with tempfile.TemporaryDirectory(prefix="knn-dims-") as tmp:
        for d in dict.fromkeys(args.dims):
            if d == dim:
                variants[d] = fused
                continue
            encoder = TextEncoder(str(projected_table(table, directions[:d].T.astype(np.float32), Path(tmp) / f"d{d}")))
            projected = LoggedQueryRouter(encoder, encoder.encode(texts), dist, k=knn.k, temperature=knn.temperature)
            # the other routers copied: a router that remembers its last query (CORI) must score
            # each variant's query itself, not hand the previous variant its scores
            variants[d] = HybridRouter([projected if r is knn else copy.copy(r) for r in fused.routers],
                                       fused.weights, gating=fused.gating)
        auc = {d: coverage_curve(rank_by_scores(r.scores(queries)), np.array(pair_query), np.array(pair_shard),
                                 index.shard_sizes).auc for d, r in variants.items()}
        names = list(variants)
        route_cpu = {d: np.full(len(queries), np.inf) for d in names}
        search_cpu = {d: np.full(len(queries), np.inf) for d in names}
        load_before = load_average()
        for p in range(args.passes + 1):  # the first pass warms up
            for j, q in enumerate(queries):
                for d in names[j % len(names):] + names[: j % len(names)]:
                    c = time.thread_time()
                    selected = variants[d].select([q], args.budget)
                    routed = time.thread_time()
                    searcher.search_selected([q], selected, k=args.k)
                    searched = time.thread_time()
                    if p:
                        route_cpu[d][j] = min(route_cpu[d][j], (routed - c) * 1000.0)
                        search_cpu[d][j] = min(search_cpu[d][j], (searched - routed) * 1000.0)
        load_after = load_average()
    gate_constant = fused.gating is None or fused.gating.constant is not None
    rows = [{"dims": d, "energy": float(energy[d - 1]), "coverage_auc": float(auc[d]),
             "route_cpu_ms": float(route_cpu[d].mean()), "search_cpu_ms": float(search_cpu[d].mean())}
            for d in names]
    result = {"command": command_line(__file__, argv, prefix="OMP_NUM_THREADS=1 PYTHONPATH=. " + sys.executable + " "),
              "machine": machine(), "load_average": {"before": load_before, "after": load_after},
              "index": str(args.index), "queries": len(queries), "pairs": len(pair_query), "k": args.k,
              "budget": args.budget, "passes": args.passes, "encoder": knn.encoder.name, "encoder_dims": dim,
              "sample_docs": args.sample_docs, "gate_constant": gate_constant, "rows": rows}
    write_json(args.out.with_suffix(".json"), result, indent=1, end="\n")
    gate_text = ("constant (or absent): the variants differ in knn only" if gate_constant
                 else "per query, fitted on the unprojected familiarity")
    lines = [f"# The knn space in fewer dimensions: {args.index.name}", "", "```sh", result["command"], "```", "",
             f"{len(queries)} `{args.split}` queries ({len(pair_query)} judged pairs), `hybrid@{args.budget}` "
             f"(the index's tuned fusion; only knn's table and knowledge base projected), k={args.k}; one query at a "
             f"time, the search of its shards between two queries, variants interleaved round-robin, least CPU of "
             f"{args.passes} passes per query. Directions: the encoder's embeddings of {args.sample_docs} sampled "
             f"documents' texts. The fusion's gate is {gate_text}. "
             f"Machine: {result['machine']}; load average before {load_before}, after {load_after}.", "",
             "| dims | energy kept | coverage AUC | routing CPU ms/query | search CPU ms/query | routing / search |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['dims']} | {r['energy']:.3f} | {r['coverage_auc']:.2f} | {r['route_cpu_ms']:.3f} | "
              f"{r['search_cpu_ms']:.3f} | {r['route_cpu_ms'] / r['search_cpu_ms']:.0%} |" for r in rows]
    write_markdown(args.out.with_suffix(".md"), [*lines, ""])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
