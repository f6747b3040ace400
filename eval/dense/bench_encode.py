"""Encoding throughput of the packaged all-MiniLM-L6-v2 on this machine (documents/s, 1 thread).

A seeded sample of SciFact abstracts and of Wikipedia passages is encoded (max_length 256, batch
64) the way the embedding cache does it — :meth:`TextEncoder.encode` on chunks, texts batched in
order of length — and, for comparison, in input order (each batch padded to its longest text,
which is how the cache encoded before length sorting was added) — and under bfloat16 autocast
(``--encoder-precision bf16``), with the cosine between its rows and the fp32 rows. The three
encodings of a source run back to back, so their ratios are comparable on a shared machine.

Usage:
  OMP_NUM_THREADS=1 .venv/bin/python eval/dense/bench_encode.py --n 256 --out eval/results/dense
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

from selectsearch.bench.measure import Stopwatch, load_average
from selectsearch.bench.report import write_json
from selectsearch.bench.script import REPO, data_root, script_parser


def sample(source: Path, n: int, seed: int, limit: int) -> list[str]:
    from selectsearch.data import open_corpus

    texts = []
    for i, doc in enumerate(open_corpus(source)):
        if i >= limit:
            break
        texts.append(doc.contents)
    return random.Random(seed).sample(texts, n)


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--n", type=int, default=256, help="documents per source")
    parser.add_argument("--out", type=Path, default=REPO / "eval/results/dense")
    args = parser.parse_args(argv)
    data = data_root()
    import torch

    from selectsearch.encode import TextEncoder

    torch.set_num_threads(1)
    encoder = TextEncoder(max_length=256, batch_size=64)
    bf16 = TextEncoder(max_length=256, batch_size=64, precision="bf16")
    encoder.encode(["warm up"])
    bf16.encode(["warm up"])
    rows = []
    for name, source, limit in (("scifact", data / "scifact", 10**9), ("wikipedia", data / "wikipedia", 50_000)):
        texts = sample(source, args.n, 0, limit)
        tokens = [len(encoder.tokenizer(t, truncation=True, max_length=256)["input_ids"]) for t in texts]
        with Stopwatch() as fp32_time:
            fp32_rows = encoder.encode(texts)
        with Stopwatch() as bf16_time:
            bf16_rows = bf16.encode(texts)
        sorted_s, bf16_s = fp32_time.wall_s, bf16_time.wall_s
        cosine = (fp32_rows * bf16_rows).sum(axis=1)  # both L2-normalised
        with Stopwatch() as unsorted_time:
            for start in range(0, len(texts), encoder.batch_size):  # one call per batch: no reordering
                encoder.encode(texts[start:start + encoder.batch_size])
        unsorted_s = unsorted_time.wall_s
        rows.append({"source": name, "docs": len(texts), "mean_tokens": sum(tokens) / len(tokens),
                     "docs_per_s_length_sorted": len(texts) / sorted_s,
                     "docs_per_s_input_order": len(texts) / unsorted_s,
                     "docs_per_s_bf16": len(texts) / bf16_s, "bf16_speedup": sorted_s / bf16_s,
                     "bf16_cosine_min": float(cosine.min()), "bf16_cosine_mean": float(cosine.mean())})
        print(json.dumps(rows[-1]), flush=True)
    load = load_average()
    result = {"command": f"OMP_NUM_THREADS=1 .venv/bin/python eval/dense/bench_encode.py --n {args.n} "
                         "--out eval/results/dense",
              "model": "all-MiniLM-L6-v2 (packaged), max_length 256, batch 64, torch threads 1",
              "load_average_at_end": [round(x, 2) for x in load], "cpu_cores": os.cpu_count(), "rows": rows}
    write_json(args.out / "encode.json", result, end="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
