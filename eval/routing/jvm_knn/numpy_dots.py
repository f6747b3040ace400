"""numpy's side of ``KnnDots.java``: ``kb @ q`` for one query, warm and with 16 MB touched between queries.

Example (eval/results/routing/jvm-knn.md): OMP_NUM_THREADS=1 .venv/bin/python eval/routing/jvm_knn/numpy_dots.py 807 384
"""

from __future__ import annotations

import sys
import time

import numpy as np

from selectsearch.bench.script import script_parser


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("n", type=int, help="logged queries (knowledge-base rows)")
    parser.add_argument("d", type=int, help="dimensions")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(1)
    kb = (rng.random((args.n, args.d), dtype=np.float32) - 0.5).astype(np.float32)
    q = (rng.random(args.d, dtype=np.float32) - 0.5).astype(np.float32)
    other = np.zeros(4 << 20, np.int32)  # 16 MB
    for round_ in range(6):
        t0 = time.perf_counter_ns()
        for _ in range(2000):
            kb @ q
        t1 = time.perf_counter_ns()
        for _ in range(200):
            other[::16] += 1
            kb @ q
        t2 = time.perf_counter_ns()
        for _ in range(200):
            other[::16] += 1
        t3 = time.perf_counter_ns()
        touch = (t3 - t2) / 200e3
        print(f"round {round_}: kb @ q warm {(t1 - t0) / 2000e3:.1f} us, cold {(t2 - t1) / 200e3 - touch:.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
