"""Benchmark definitions (TOML) run end to end: build or reuse indexes, evaluate, report.

A definition names the data, the judged split, the measures, and one ``[[index]]`` table per
partition to compare, each with its routes::

    name = "scifact"
    corpus = ["scifact"]            # sources, relative to the data root (SELECTSEARCH_DATA)
    queries = "scifact"             # BEIR folder with queries.jsonl and qrels/<split>.tsv
    split = "test"
    measures = ["nDCG@10", "R@100", "R@1000"]
    k = 1000

    [[index]]
    name = "scifact-kmeans16"       # built under the indexes root if missing, reused otherwise
    partitioner = "kmeans"
    shards = 16
    routes = ["all", "random@1:16", "centroid@1:16", "redde@1:16", "oracle@1:16"]

Results go to ``<out>/<index name>.json`` (rows plus the command), a Markdown report with the
tables, the budget-to-target answers and the plot of each index.

Every key is checked before anything runs: an unknown key at any level (a typo such as
``mesures`` or ``partioner``) is refused with the valid keys, as are a ``k`` below 1 or below a
measure's cutoff, a route spec that does not parse, and router options no route takes. Query cost
benchmarks (``kind = "cost"``, :mod:`selectsearch.costbench`) also take the keys of
:data:`COST_KEYS` and ``role`` in an ``[[index]]``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from selectsearch.errors import DataNotFoundError, SelectSearchError

__all__ = ["load_definition", "run_benchmark"]


#: keys of a benchmark definition
TOP_KEYS = ("name", "kind", "corpus", "queries", "split", "measures", "k", "index")
#: keys of a query cost benchmark (``kind = "cost"``) besides :data:`TOP_KEYS`
COST_KEYS = ("warmup", "passes", "target", "concurrency", "latency_routes", "notes", "rerank", "max_queries")
#: keys of an ``[[index]]`` table (``role`` only in a cost benchmark)
INDEX_KEYS = ("name", "shards", "routes", "partitioner", "space", "seed", "options", "router_options")


def _unknown(where: str, table: dict[str, Any], known: tuple[str, ...]) -> None:
    extra = sorted(set(table) - set(known))
    if extra:
        raise SelectSearchError(f"{where}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(extra)}; "
                                f"valid keys: {', '.join(known)}")


def _partitioner_options(where: str, idx: dict[str, Any]) -> None:
    from selectsearch.partition.registry import PARTITIONERS, resolve_partitioner

    try:
        name = resolve_partitioner(idx.get("partitioner", "kmeans"), idx.get("space", "lexical"))
    except SelectSearchError as exc:
        raise SelectSearchError(f"{where}: {exc}") from exc
    options = idx.get("options", {})
    if not isinstance(options, dict):
        raise SelectSearchError(f"{where}: options must be a table ([index.options])")
    if options:
        known = PARTITIONERS[name].param_names(PARTITIONERS.context)
        _unknown(f"{where} [index.options] of partitioner {idx.get('partitioner', 'kmeans')!r}", options, known)


def load_definition(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a benchmark TOML file (see the module docs for what is checked).

    Raises:
        DataNotFoundError: no such file.
        SelectSearchError: invalid TOML, a missing or unknown key, or a bad value; the message
            names the file, the table and the valid keys.
    """
    from selectsearch.evaluation import check_cutoffs, parse_measures
    from selectsearch.route import parse_route, split_router_options

    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"benchmark definition {path} not found (see eval/benchmarks/*.toml)")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SelectSearchError(f"{path}: invalid TOML ({exc})") from exc
    cost = spec.get("kind") == "cost"
    if "kind" in spec and not cost:
        raise SelectSearchError(f"{path}: kind {spec['kind']!r} is not known; use kind = \"cost\" or leave it out")
    _unknown(str(path), spec, TOP_KEYS + COST_KEYS if cost else TOP_KEYS)
    for key in ("name", "corpus", "queries", "index"):
        if key not in spec:
            raise SelectSearchError(f"{path}: missing key {key!r}")
    k = spec.get("k", 100 if cost else 1000)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SelectSearchError(f"{path}: k (hits retrieved per query) must be an integer of at least 1, got {k!r}")
    if not cost:
        try:
            check_cutoffs(parse_measures(spec.get("measures", ["nDCG@10", "R@100", "R@1000"])), k)
        except SelectSearchError as exc:
            raise SelectSearchError(f"{path}: {exc}") from exc
    for i, idx in enumerate(spec["index"]):
        where = f"{path}: [[index]] number {i + 1}"
        _unknown(where, idx, (*INDEX_KEYS, "role") if cost else INDEX_KEYS)
        for key in ("name", "shards", "routes"):
            if key not in idx:
                raise SelectSearchError(f"{path}: [[index]] number {i + 1} lacks {key!r}")
        shards = idx["shards"]
        if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
            raise SelectSearchError(f"{where}: shards must be an integer of at least 1, got {shards!r}")
        try:
            routes = [parse_route(r) for r in idx["routes"]]
            split_router_options({r.name for r in routes}, dict(idx.get("router_options", {})))
        except SelectSearchError as exc:
            raise SelectSearchError(f"{where} ({idx['name']}): {exc}") from exc
        _partitioner_options(where, idx)
    return spec


def _resolve(data_root: Path, item: str) -> str:
    if item.startswith("irds:") or Path(item).is_absolute():
        return item
    return str(data_root / item)


def _ensure_index(idx: dict[str, Any], path: Path, sources: list[str], *, threads: int, progress: bool
                  ) -> float | None:
    """Build the ``[[index]]`` table ``idx`` at ``path`` unless it exists; the build seconds or ``None``."""
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    if (path / "manifest.json").exists():
        return None
    t = time.time()
    options = dict(idx.get("options", {}))
    build_index(open_corpus(sources), path,
                BuildConfig(n_shards=int(idx["shards"]), partitioner=idx.get("partitioner", "kmeans"),
                            space=idx.get("space", "lexical"), seed=int(idx.get("seed", 0)),
                            threads=threads, partitioner_options=options), progress=progress)
    return time.time() - t


def run_benchmark(definition: str | os.PathLike[str], *, data_root: Path, indexes_root: Path, out: Path,
                  threads: int = 2, only: list[str] | None = None, report_only: bool = False,
                  progress: bool = False) -> list[Path]:
    """Run every ``[[index]]`` of a definition; return the written result files.

    With ``report_only`` nothing is run: the Markdown report is rebuilt from the JSON results.
    """
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate
    from selectsearch.reports.curves import markdown_table, plot_curves, targets_table
    from selectsearch.search import SelectiveSearcher

    spec = load_definition(definition)
    command = " ".join(["selectsearch", *sys.argv[1:]]) if sys.argv and "selectsearch" in sys.argv[0] \
        else f"selectsearch bench {definition}"
    sources = [_resolve(data_root, c) for c in spec["corpus"]]
    queries_src = _resolve(data_root, spec["queries"])
    split = spec.get("split", "test")
    measures = spec.get("measures", ["nDCG@10", "R@100", "R@1000"])
    k = int(spec.get("k", 1000))
    queries = load_queries(queries_src, split=split)
    qrels = load_qrels(queries_src, split=split)
    out.mkdir(parents=True, exist_ok=True)
    if spec.get("kind") == "cost":  # query cost benchmark: see selectsearch.costbench
        from selectsearch.costbench import run_cost_benchmark

        paths = {}
        for idx in spec["index"]:
            paths[idx["name"]] = indexes_root / idx["name"]
            if not report_only:
                _ensure_index(idx, paths[idx["name"]], sources, threads=threads, progress=progress)
        return run_cost_benchmark(spec, definition=str(definition), indexes=paths, out=out, queries=queries,
                                  qrels=qrels, command=command, progress=progress, report_only=report_only)
    written = []
    for idx in spec["index"]:
        if report_only or (only and idx["name"] not in only):
            continue
        path = indexes_root / idx["name"]
        build_s = _ensure_index(idx, path, sources, threads=threads, progress=progress)
        t = time.time()
        searcher = SelectiveSearcher.open(path)
        rows = evaluate(searcher, queries, qrels, idx["routes"], measures, k=k,
                        router_options=idx.get("router_options"), progress=progress)
        eval_s = time.time() - t
        result = {"benchmark": spec["name"], "index": idx["name"], "command": command, "definition": str(definition),
                  "date": time.strftime("%Y-%m-%d %H:%M:%S"), "build_seconds": build_s, "eval_seconds": eval_s,
                  "partition": searcher.index.manifest.partition_json, "rows": rows}
        file = out / f"{idx['name']}.json"
        file.write_text(json.dumps(result, indent=2))
        plot = plot_curves(rows, out / f"{idx['name']}.png", title=f"{spec['name']}: {idx['name']}")
        written += [file, plot]
    # the report covers every index of the definition that has results (runs with --only accumulate)
    report = [f"# Benchmark: {spec['name']}", "",
              f"Data: {', '.join(spec['corpus'])}; queries and qrels: {spec['queries']} ({split}, "
              f"{len(queries)} queries); measures {', '.join(measures)}; k={k}. Definition: `{definition}`.", ""]
    for idx in spec["index"]:
        file = out / f"{idx['name']}.json"
        if not file.exists():
            continue
        result = json.loads(file.read_text())
        rows = result["rows"]
        balance = result["partition"]["balance"]
        built = result.get("build_seconds")
        report += [f"## {idx['name']} ({idx.get('partitioner', 'kmeans')}, {idx['shards']} shards)", "",
                   f"Command: `{result['command']}` ({result['date']})", "",
                   f"Partition balance: max/mean {balance['max_over_mean']:.2f}, normalised entropy "
                   f"{balance['entropy_normalised']:.3f}. Evaluation took {result['eval_seconds']:.0f} s"
                   + (f", build {built:.0f} s." if built else " (index reused)."), "",
                   f"![curves]({idx['name']}.png)", "",
                   "Fraction of the collection scored at which each router first reaches 95% / 99% of "
                   "exhaustive quality (m = shards per query):", "", targets_table(rows), "",
                   markdown_table(rows, [*measures, "coverage", "coverage_auc", "overlap@10", "overlap@100"]), ""]
    md = out / "README.md"
    md.write_text("\n".join(report))
    written.append(md)
    return written
