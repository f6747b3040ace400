"""SciFact + the first W Wikipedia passages, with embeddings taken from a (partial) larger cache.

Encoding all 205,183 SciFact + Wikipedia documents with all-MiniLM-L6-v2 runs at 3-6 documents/s
per core on the shared 2-core machine (``eval/results/dense/encode.json``): 10+ hours. The full
SciFact + Wikipedia build encodes in corpus order (SciFact first, then Wikipedia passages in file
order) into ``embeddings.f32.partial``; its completed rows are exactly the embeddings of SciFact
plus the first W passages. This script writes those W passages to a JSONL file and the matching
rows into a proper embedding cache for the smaller corpus (same model, max_length and key
scheme), so indexes of the subset are built without encoding anything again. A few rows are
re-encoded to check they match.

Usage:
  .venv/bin/python eval/dense/make_subset.py --partial ~/.cache/selectsearch/embeddings/all-MiniLM-L6-v2-256-a882abde6ef4159a/embeddings.f32.partial \\
      --out-dir indexes/data
"""  # noqa: E501

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np

from selectsearch.bench.script import REPO, data_root, script_parser

CHUNK = 2048  # rows the cache writer stores at once


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--partial", type=Path, required=True, help="embeddings.f32(.partial) of scifact+wikipedia")
    parser.add_argument("--out-dir", type=Path, default=REPO / "indexes/data")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rows", type=int, default=0, help="use this many rows (default: every complete chunk)")
    args = parser.parse_args(argv)
    data = data_root()
    from selectsearch.data import open_corpus
    from selectsearch.data.ids import corpus_fingerprint
    from selectsearch.encode import TextEncoder, corpus_cache

    big = np.memmap(args.partial, dtype=np.float32, mode="r").reshape(-1, args.dim)
    written = np.abs(big[:, :4]).sum(axis=1) > 0
    complete = int(np.argmin(written)) if not written.all() else len(big)
    rows = args.rows or (complete // CHUNK) * CHUNK
    if rows > complete:
        sys.exit(f"only {complete} rows are complete")
    n_scifact = sum(1 for _ in open_corpus(data / "scifact"))
    n_wiki = rows - n_scifact
    args.out_dir.mkdir(parents=True, exist_ok=True)
    wiki_file = args.out_dir / f"wikipedia-first{n_wiki}.jsonl.gz"
    with gzip.open(wiki_file, "wt", encoding="utf-8") as f:
        for i, doc in enumerate(open_corpus(data / "wikipedia")):
            if i >= n_wiki:
                break
            f.write(json.dumps({"_id": doc.doc_id, "title": doc.title, "text": doc.text}) + "\n")
    sources = [data / "scifact", wiki_file]
    docs = open_corpus(sources)
    fingerprint = corpus_fingerprint(d.doc_id for d in docs)
    cache = corpus_cache("all-MiniLM-L6-v2", 256, fingerprint)
    cache.folder.mkdir(parents=True, exist_ok=True)
    out = np.memmap(cache.folder / "embeddings.f32.partial", dtype=np.float32, mode="w+", shape=(rows, args.dim))
    out[:] = big[:rows]
    out.flush()
    del out
    os.replace(cache.folder / "embeddings.f32.partial", cache.folder / "embeddings.f32")
    # check: re-encode a few documents from both parts
    texts = [d.contents for d in docs]
    probe = [0, n_scifact - 1, n_scifact, rows - 1]
    fresh = TextEncoder(max_length=256, threads=1).encode([texts[i] for i in probe])
    cosines = (fresh * np.asarray(big[probe])).sum(axis=1)
    if not np.all(cosines > 0.9999):
        sys.exit(f"re-encoded rows differ from the cache: cosines {cosines}")
    (cache.folder / "meta.json").write_text(json.dumps({
        "model": "all-MiniLM-L6-v2", "fingerprint": fingerprint, "n": rows, "dim": args.dim, "max_length": 256,
        "source": f"rows 0..{rows - 1} of {args.partial}", "check_cosines": [round(float(c), 6) for c in cosines]}))
    print(json.dumps({"sources": [str(s) for s in sources], "n_docs": rows, "wikipedia": n_wiki,
                      "fingerprint": fingerprint, "cache": str(cache.folder),
                      "check_cosines": [round(float(c), 6) for c in cosines]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
