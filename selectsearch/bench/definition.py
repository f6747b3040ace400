"""The benchmark definition: one TOML schema, told apart by ``kind``, checked before anything runs.

Every benchmark under ``eval/`` is described by a TOML file with the same rules: a ``kind``
says which keys it takes; an unknown key at any level (a typo such as ``mesures`` or
``partioner``) is refused naming the valid keys; values are checked (``k`` at least 1 and at
least every measure's cutoff, route specs that parse, router options some route takes,
partitioner options the partitioner has).

Kinds (:data:`KINDS`):

* ``quality`` (the default when ``kind`` is left out) — evaluate routes on built indexes
  (``selectsearch bench``, :mod:`selectsearch.bench.quality`)::

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

* ``cost`` — what a query costs stage by stage (:mod:`selectsearch.bench.cost`): the keys of
  ``quality`` plus :data:`COST_KEYS`, and ``role`` in an ``[[index]]``.
* ``fewshot`` — few-shot text classification runs (``eval/dynamar/``): :data:`FEWSHOT_KEYS`.
  These files carry no ``kind``; their entry scripts load them with ``kind="fewshot"``.

Example:
    >>> from selectsearch.bench.definition import load_definition  # doctest: +SKIP
    >>> load_definition("eval/benchmarks/scifact.toml")["index"][0]["name"]  # doctest: +SKIP
    'scifact-kmeans16'
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from selectsearch.errors import DataNotFoundError, SelectSearchError

__all__ = ["COST_KEYS", "FEWSHOT_KEYS", "INDEX_KEYS", "KINDS", "TOP_KEYS", "definition_kind", "load_definition"]

#: keys of a benchmark definition (``quality`` and ``cost``)
TOP_KEYS = ("name", "kind", "corpus", "queries", "split", "measures", "k", "index")
#: keys of a query cost benchmark (``kind = "cost"``) besides :data:`TOP_KEYS`
COST_KEYS = ("warmup", "passes", "target", "concurrency", "latency_routes", "notes", "rerank", "max_queries")
#: keys of an ``[[index]]`` table (``role`` only in a cost benchmark)
INDEX_KEYS = ("name", "shards", "routes", "partitioner", "space", "seed", "options", "router_options",
              "lucene_ranges")
#: keys of a few-shot classification benchmark (``eval/dynamar/*.toml``)
FEWSHOT_KEYS = ("kind", "encoder", "tasks", "seeds", "methods", "pool_size", "pool_sizes", "k", "k_regression",
                "steps", "batch_size", "learning_rate", "head_learning_rate", "pooling", "max_length",
                "max_length_pair", "max_test", "test_seed")
#: the kinds a definition can have
KINDS = ("quality", "cost", "fewshot")
_REQUIRED = {"quality": ("name", "corpus", "queries", "index"), "cost": ("name", "corpus", "queries", "index"),
             "fewshot": ("tasks", "seeds", "methods", "k", "steps", "batch_size", "learning_rate",
                         "head_learning_rate", "max_length", "max_length_pair", "max_test")}


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


def definition_kind(spec: dict[str, Any]) -> str:
    """The ``kind`` of a loaded definition (``quality`` when it names none)."""
    return str(spec.get("kind", "quality"))


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise DataNotFoundError(f"benchmark definition {path} not found (see eval/benchmarks/*.toml)")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SelectSearchError(f"{path}: invalid TOML ({exc})") from exc


def load_definition(path: str | os.PathLike[str], *, kind: str | None = None) -> dict[str, Any]:
    """Read and check a benchmark TOML file (see the module docs for what is checked).

    The dict is returned as written (no defaults filled in). ``kind`` is what the caller runs:
    a file naming no ``kind`` is taken to be of that kind (``quality`` when ``None``), a file
    naming another kind is refused.

    Raises:
        DataNotFoundError: no such file.
        SelectSearchError: invalid TOML, a missing or unknown key, or a bad value; the message
            names the file, the table and the valid keys.
    """
    path = Path(path)
    spec = _read(path)
    written = spec.get("kind")
    if written is not None and written not in KINDS:
        raise SelectSearchError(f"{path}: kind {written!r} is not known; use kind = \"cost\" or leave it out "
                                f"(kinds: {', '.join(KINDS)})")
    actual = written or kind or "quality"
    if kind is not None and actual != kind:
        raise SelectSearchError(f"{path}: this is a {actual!r} benchmark definition; this command runs {kind!r} ones")
    if actual == "fewshot":
        _unknown(str(path), spec, FEWSHOT_KEYS)
        for key in _REQUIRED["fewshot"]:
            if key not in spec:
                raise SelectSearchError(f"{path}: missing key {key!r}")
        return spec
    _check_search_benchmark(path, spec, cost=actual == "cost")
    return spec


def _check_search_benchmark(path: Path, spec: dict[str, Any], *, cost: bool) -> None:
    from selectsearch.evaluation import check_cutoffs, parse_measures
    from selectsearch.route import parse_route, split_router_options

    _unknown(str(path), spec, TOP_KEYS + COST_KEYS if cost else TOP_KEYS)
    for key in _REQUIRED["cost" if cost else "quality"]:
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
