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

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("SELECTSEARCH_DATA", ROOT.parent / "shared" / "data"))


def sample(source: Path, n: int, seed: int, limit: int) -> list[str]:
    from selectsearch.data import open_corpus

    texts = []
    for i, doc in enumerate(open_corpus(source)):
        if i >= limit:
            break
        texts.append(doc.contents)
    return random.Random(seed).sample(texts, n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="documents per source")
    parser.add_argument("--out", type=Path, default=ROOT / "eval/results/dense")
    args = parser.parse_args()
    import torch

    from selectsearch.encode import TextEncoder

    torch.set_num_threads(1)
    encoder = TextEncoder(max_length=256, batch_size=64)
    bf16 = TextEncoder(max_length=256, batch_size=64, precision="bf16")
    encoder.encode(["warm up"])
    bf16.encode(["warm up"])
    rows = []
    for name, source, limit in (("scifact", DATA / "scifact", 10**9), ("wikipedia", DATA / "wikipedia", 50_000)):
        texts = sample(source, args.n, 0, limit)
        tokens = [len(encoder.tokenizer(t, truncation=True, max_length=256)["input_ids"]) for t in texts]
        t0 = time.perf_counter()
        fp32_rows = encoder.encode(texts)
        sorted_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        bf16_rows = bf16.encode(texts)
        bf16_s = time.perf_counter() - t0
        cosine = (fp32_rows * bf16_rows).sum(axis=1)  # both L2-normalised
        t0 = time.perf_counter()
        for start in range(0, len(texts), encoder.batch_size):  # one call per batch: no reordering
            encoder.encode(texts[start:start + encoder.batch_size])
        unsorted_s = time.perf_counter() - t0
        rows.append({"source": name, "docs": len(texts), "mean_tokens": sum(tokens) / len(tokens),
                     "docs_per_s_length_sorted": len(texts) / sorted_s,
                     "docs_per_s_input_order": len(texts) / unsorted_s,
                     "docs_per_s_bf16": len(texts) / bf16_s, "bf16_speedup": sorted_s / bf16_s,
                     "bf16_cosine_min": float(cosine.min()), "bf16_cosine_mean": float(cosine.mean())})
        print(json.dumps(rows[-1]), flush=True)
    load = os.getloadavg()
    result = {"command": f"OMP_NUM_THREADS=1 .venv/bin/python eval/dense/bench_encode.py --n {args.n} "
                         "--out eval/results/dense",
              "model": "all-MiniLM-L6-v2 (packaged), max_length 256, batch 64, torch threads 1",
              "load_average_at_end": [round(x, 2) for x in load], "cpu_cores": os.cpu_count(), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "encode.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
