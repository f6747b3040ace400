"""Write the ids of the training queries a cross-encoder teacher was trained on (one per line).

The pair sampling is seeded, so the teacher's recorded PairConfig selects the same queries again
(BM25 candidates come from the cache beside the teacher). Used to keep dev queries held out.

Example:
  .venv/bin/python eval/rerank/teacher_queries.py /work/models/hd-rerank-teacher --out teacher-qids.txt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from selectsearch.bench.script import script_parser


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("teacher", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.rerank import PairConfig, training_pairs

    info = json.loads((args.teacher / "config.json").read_text())["extra"]["reranker"]
    queries = load_queries(info["data"], split=info["split"])
    qrels = load_qrels(info["data"], split=info["split"])
    pairs = training_pairs(info["index"], queries, qrels, PairConfig(**info["pairs"]),
                           cache_dir=args.teacher.with_name(args.teacher.name + ".cache"))
    qids = list(dict.fromkeys(p.query_id for p in pairs))
    args.out.write_text("\n".join(qids) + "\n")
    print(f"{len(qids)} teacher training queries -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
