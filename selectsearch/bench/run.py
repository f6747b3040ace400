"""``selectsearch bench DEF.toml``: read a definition, build or reuse its indexes, run it by kind.

The definition is checked first (:func:`selectsearch.bench.definition.load_definition`); its
corpus and queries are read from the data root; then the kind's runner does the work:
``quality`` -> :func:`selectsearch.bench.quality.run_quality_benchmark`, ``cost`` ->
:func:`selectsearch.bench.cost.run_cost_benchmark`. ``fewshot`` definitions train models and run
from their own entry script (``eval/dynamar/bench.py``).

Example:
    >>> from selectsearch.bench import run_benchmark  # doctest: +SKIP
    >>> run_benchmark("eval/benchmarks/scifact.toml", data_root=Path("../shared/data"),  # doctest: +SKIP
    ...               indexes_root=Path("indexes"), out=Path("eval/results/scifact"))
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from selectsearch.bench.definition import definition_kind, load_definition
from selectsearch.errors import SelectSearchError

__all__ = ["run_benchmark"]


def _resolve(data_root: Path, item: str) -> str:
    if item.startswith("irds:") or Path(item).is_absolute():
        return item
    return str(data_root / item)


def run_benchmark(definition: str | os.PathLike[str], *, data_root: Path, indexes_root: Path, out: Path,
                  threads: int = 2, only: list[str] | None = None, report_only: bool = False,
                  progress: bool = False) -> list[Path]:
    """Run every ``[[index]]`` of a definition; return the written result files.

    With ``report_only`` nothing is run: the Markdown report is rebuilt from the JSON results.

    Raises:
        SelectSearchError: an invalid definition (see :func:`load_definition`), or one of a kind
            this command does not run.
    """
    from selectsearch.data import load_qrels, load_queries

    spec = load_definition(definition)
    kind = definition_kind(spec)
    if kind not in ("quality", "cost"):
        raise SelectSearchError(f"{definition}: a {kind!r} definition is run by its own script (see "
                                "eval/dynamar/bench.py), not by `selectsearch bench`")
    command = " ".join(["selectsearch", *sys.argv[1:]]) if sys.argv and "selectsearch" in sys.argv[0] \
        else f"selectsearch bench {definition}"
    sources = [_resolve(data_root, c) for c in spec["corpus"]]
    queries_src = _resolve(data_root, spec["queries"])
    split = spec.get("split", "test")
    queries = load_queries(queries_src, split=split)
    qrels = load_qrels(queries_src, split=split)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "cost":
        from selectsearch.bench.cost import run_cost_benchmark
        from selectsearch.bench.quality import ensure_index

        paths = {}
        for idx in spec["index"]:
            paths[idx["name"]] = indexes_root / idx["name"]
            if not report_only:
                ensure_index(idx, paths[idx["name"]], sources, threads=threads, progress=progress)
        return run_cost_benchmark(spec, definition=str(definition), indexes=paths, out=out, queries=queries,
                                  qrels=qrels, command=command, progress=progress, report_only=report_only)
    from selectsearch.bench.quality import run_quality_benchmark

    return run_quality_benchmark(spec, definition=str(definition), indexes_root=indexes_root, out=out,
                                 sources=sources, queries=queries, qrels=qrels, command=command, threads=threads,
                                 only=only, report_only=report_only, progress=progress)
