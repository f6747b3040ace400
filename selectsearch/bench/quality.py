"""Quality benchmark (``kind = "quality"``, the default): evaluate every route of every index.

For each ``[[index]]`` of the definition: build the index under the indexes root unless it is
there, evaluate all its routes with :func:`selectsearch.evaluation.evaluate` (quality,
coverage, overlap with exhaustive, cost) and write ``<out>/<index name>.json`` (rows plus the
command) and the plot of its curves; then the Markdown report over every index that has results
(:mod:`selectsearch.bench.report.quality`).

Example:
    >>> from selectsearch.bench import run_benchmark  # doctest: +SKIP
    >>> run_benchmark("eval/benchmarks/scifact.toml", data_root=Path("../shared/data"),  # doctest: +SKIP
    ...               indexes_root=Path("indexes"), out=Path("eval/results/scifact"))
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ensure_index", "run_quality_benchmark"]


def ensure_index(idx: Mapping[str, Any], path: Path, sources: list[str], *, threads: int, progress: bool
                 ) -> float | None:
    """Build the ``[[index]]`` table ``idx`` at ``path`` unless it exists; the build seconds or ``None``.

    ``lucene_ranges = true`` in the table: the shards also merged into one Lucene index
    (:mod:`selectsearch.index.ranges`), added to an existing index that lacks it.
    """
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index
    from selectsearch.index.manifest import Manifest
    from selectsearch.index.ranges import add_lucene_ranges

    t = time.time()
    built = (path / "manifest.json").exists()
    if not built:
        options = dict(idx.get("options", {}))
        build_index(open_corpus(sources), path,
                    BuildConfig(n_shards=int(idx["shards"]), partitioner=idx.get("partitioner", "kmeans"),
                                space=idx.get("space", "lexical"), seed=int(idx.get("seed", 0)),
                                threads=threads, partitioner_options=options), progress=progress)
    if idx.get("lucene_ranges") and Manifest.read(path).lucene_ranges is None:
        add_lucene_ranges(path)
    elif built:
        return None
    return time.time() - t


def run_quality_benchmark(spec: Mapping[str, Any], *, definition: str, indexes_root: Path, out: Path,
                          sources: list[str], queries: dict[str, str], qrels: dict[str, dict[str, int]],
                          command: str, threads: int = 2, only: list[str] | None = None, report_only: bool = False,
                          progress: bool = False) -> list[Path]:
    """Evaluate every ``[[index]]`` of a quality definition (all of them, or ``only`` these); the written files.

    With ``report_only`` nothing is run: the Markdown report is rebuilt from the JSON results.
    """
    from selectsearch.bench.report import write_json
    from selectsearch.bench.report.curves import plot_curves
    from selectsearch.bench.report.quality import write_quality_report
    from selectsearch.evaluation import evaluate
    from selectsearch.search import SelectiveSearcher

    measures = spec.get("measures", ["nDCG@10", "R@100", "R@1000"])
    k = int(spec.get("k", 1000))
    written = []
    for idx in spec["index"]:
        if report_only or (only and idx["name"] not in only):
            continue
        path = indexes_root / idx["name"]
        build_s = ensure_index(idx, path, sources, threads=threads, progress=progress)
        t = time.time()
        searcher = SelectiveSearcher.open(path)
        rows = evaluate(searcher, queries, qrels, idx["routes"], measures, k=k,
                        router_options=idx.get("router_options"), progress=progress)
        eval_s = time.time() - t
        result = {"benchmark": spec["name"], "index": idx["name"], "command": command, "definition": definition,
                  "date": time.strftime("%Y-%m-%d %H:%M:%S"), "build_seconds": build_s, "eval_seconds": eval_s,
                  "partition": searcher.index.manifest.partition_json, "rows": rows}
        file = write_json(out / f"{idx['name']}.json", result)
        plot = plot_curves(rows, out / f"{idx['name']}.png", title=f"{spec['name']}: {idx['name']}")
        written += [file, plot]
    written.append(write_quality_report(spec, definition=definition, out=out, n_queries=len(queries)))
    return written
