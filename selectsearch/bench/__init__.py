"""Benchmarks as a package: definitions, measurement, harness, cost model, reports.

``eval/`` holds benchmark definitions (TOML) and thin entry scripts; everything they share
lives here, one module per job:

* :mod:`~selectsearch.bench.definition` — the one definition schema (``kind``: quality, cost,
  fewshot), checked before anything runs;
* :mod:`~selectsearch.bench.measure` — timers, percentiles, CPU time, memory, load average;
* :mod:`~selectsearch.bench.harness` — searchers run and timed in fresh processes (interleaved
  configurations, concurrent clients);
* :mod:`~selectsearch.bench.costmodel` — per-query cost summaries, postings, the fitted model;
* :mod:`~selectsearch.bench.report` — the report writer (JSON, Markdown, plots; curves, quality
  and cost reports);
* :mod:`~selectsearch.bench.quality`, :mod:`~selectsearch.bench.cost` — the runners of the
  kinds ``selectsearch bench`` runs; :mod:`~selectsearch.bench.run` dispatches by kind;
* :mod:`~selectsearch.bench.script` — what the entry scripts under ``eval/`` share (argument
  parsing, the recorded command line, seeded subsets).

Importing this package loads nothing heavy (no numpy, JVM or torch until a benchmark runs).

Example:
    >>> from selectsearch.bench import load_definition, run_benchmark  # doctest: +SKIP
    >>> spec = load_definition("eval/benchmarks/scifact.toml")  # doctest: +SKIP
    >>> run_benchmark("eval/benchmarks/scifact.toml", data_root=Path("../shared/data"),  # doctest: +SKIP
    ...               indexes_root=Path("indexes"), out=Path("eval/results/scifact"))
"""

from __future__ import annotations

from selectsearch.bench.definition import KINDS, load_definition
from selectsearch.bench.run import run_benchmark

__all__ = ["KINDS", "load_definition", "run_benchmark"]
