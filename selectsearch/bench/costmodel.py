"""The cost model of the query cost benchmark: per-query cost summaries, postings, fit, extrapolation.

Measurements come from :mod:`selectsearch.bench.harness`; this module turns them into the mean
cost of each configuration (:func:`summarise`), counts the postings each query touches
(:func:`query_postings`), fits search CPU to them (:class:`SearchCpuModel`, :func:`fit_search_cpu`)
and extrapolates to larger collections (:func:`fit_cost_model`), and reads off where selective
search becomes cheaper than exhaustive search (:func:`crossover`).

Example:
    >>> from selectsearch.bench.costmodel import crossover
    >>> model = {"sizes": [10, 100], "n_docs_measured": 5, "rows": [
    ...     {"config": "exhaustive, 2 shards", "cpu_ms_10": 10.0, "cpu_ms_100": 100.0},
    ...     {"config": "cori@1", "cpu_ms_10": 6.0, "cpu_ms_100": 51.0}]}
    >>> crossover(model)
    [('cori@1', 5.0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.bench.measure import percentiles
from selectsearch.errors import SelectSearchError

__all__ = ["SEARCH_TERMS", "SearchCpuModel", "add_postings", "crossover", "describe_size", "fit_cost_model",
           "fit_search_cpu", "mark_targets", "query_postings", "searched_shards", "summarise"]

#: the terms of :class:`SearchCpuModel`, in the order of its coefficients
SEARCH_TERMS = ("fixed", "per_posting", "per_shard", "per_log_docs")


@dataclass(frozen=True)
class SearchCpuModel:
    """Search + merge CPU of one query, in ms::

        fixed + per_posting * P + per_shard * S + per_log_docs * ln(N)

    ``P``: postings of the query's terms in the searched shards (:func:`query_postings`); ``S``:
    shards searched; ``N``: documents in the collection. Why these terms: scoring costs per
    posting; every searched shard costs its term-dictionary lookups and scorer set-up whatever it
    holds (random shards, each holding few of a query's postings, cost more per posting than topical
    ones); and the fixed part of a query (dictionary and collection-statistics lookups, mapping
    ``k`` hits to doc ids) grows with the collection like a lookup in a sorted structure, ``ln N``.
    A plain ``fixed + per_posting * P`` fitted on 205k and 1M documents under-predicted the 5M
    measurement of random shards by 26% (``eval/scale/model_check.py``).

    A term whose column is constant over the fitted queries cannot be told from ``fixed`` and is
    left out (coefficient 0): ``per_log_docs`` when one collection size was measured,
    ``per_shard`` on an unsharded index (and in measurements without shard lists).

    Attributes:
        coef: coefficient of each of :data:`SEARCH_TERMS` (ms; per posting, per shard, per unit
            of ``ln N``).
        fitted: the terms fitted (the others are 0).
        points: (query, configuration) measurements fitted.
        sizes: the collection sizes they came from.
        r2: share of the measurements' variance the fit explains.
    """

    coef: dict[str, float]
    fitted: tuple[str, ...]
    points: int
    sizes: tuple[int, ...]
    r2: float = float("nan")

    def fixed_ms(self, shards: float, n_docs: float) -> float:
        """The CPU of a query that touches no posting: everything but ``per_posting * P``."""
        c = self.coef
        return c["fixed"] + c["per_shard"] * shards + c["per_log_docs"] * float(np.log(n_docs))

    def predict(self, postings: float, shards: float, n_docs: float) -> float:
        """Search + merge CPU (ms) of a query touching ``postings`` in ``shards`` shards of ``n_docs``."""
        return self.fixed_ms(shards, n_docs) + self.coef["per_posting"] * postings

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: coefficients (per posting in ns), fitted terms, points, sizes."""
        return {"fixed_ms": self.coef["fixed"], "per_posting_ns": self.coef["per_posting"] * 1e6,
                "per_shard_ms": self.coef["per_shard"], "per_log_docs_ms": self.coef["per_log_docs"],
                "fitted": list(self.fitted), "points": self.points, "sizes": list(self.sizes)}


def fit_search_cpu(measurements: Iterable[tuple[np.ndarray, np.ndarray, int, np.ndarray]]) -> SearchCpuModel:
    """Least-squares :class:`SearchCpuModel` over per-query measurements.

    Args:
        measurements: ``(postings, shards, n_docs, cpu_ms)`` per configuration: per-query postings,
            shards searched and search + merge CPU (aligned arrays), and the collection size.

    Raises:
        SelectSearchError: no measurement.

    Example:
        >>> p = np.array([100.0, 200.0, 400.0])
        >>> m = fit_search_cpu([(p, np.array([1.0, 2.0, 2.0]), 1000, 0.5 + 0.01 * p + np.array([0.1, 0.2, 0.2]))])
        >>> {k: round(v, 6) for k, v in m.coef.items()}
        {'fixed': 0.5, 'per_posting': 0.01, 'per_shard': 0.1, 'per_log_docs': 0.0}
    """
    cols: dict[str, list[np.ndarray]] = {t: [] for t in SEARCH_TERMS}
    ys: list[np.ndarray] = []
    sizes: set[int] = set()
    for postings, shards, n_docs, cpu in measurements:
        p = np.asarray(postings, dtype=np.float64)
        cols["fixed"].append(np.ones_like(p))
        cols["per_posting"].append(p)
        cols["per_shard"].append(np.broadcast_to(np.asarray(shards, dtype=np.float64), p.shape))
        cols["per_log_docs"].append(np.full_like(p, np.log(n_docs)))
        ys.append(np.asarray(cpu, dtype=np.float64))
        sizes.add(int(n_docs))
    if not ys:
        raise SelectSearchError("the cost model needs per-query measurements")
    full = {t: np.concatenate(v) for t, v in cols.items()}
    fitted = tuple(t for t in SEARCH_TERMS if t in ("fixed", "per_posting") or np.ptp(full[t]) > 0)
    design, y = np.stack([full[t] for t in fitted], axis=1), np.concatenate(ys)
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    coef = dict.fromkeys(SEARCH_TERMS, 0.0)
    coef.update({t: float(v) for t, v in zip(fitted, solution, strict=True)})
    r2 = 1.0 - float(((y - design @ solution) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12))
    return SearchCpuModel(coef, fitted, len(y), tuple(sorted(sizes)), r2)


def searched_shards(result: Mapping[str, Any]) -> np.ndarray:
    """Shards searched by each query of a cost-report configuration (1 per query on an unsharded
    index; the configuration's mean when the report has no per-query shard lists)."""
    n = len(result["postings"])
    if result.get("kind") == "unsharded":
        return np.ones(n)
    if result.get("shards"):
        return np.asarray([len(s) for s in result["shards"]], dtype=np.float64)
    return np.full(n, float(result.get("summary", {}).get("shards", 1.0)))


def summarise(measured: Mapping[str, Any], jvm_share: float, n_docs: int) -> dict[str, Any]:
    """Mean per-query cost of one configuration measured by :func:`selectsearch.bench.harness.measure_interleaved`."""
    rows = measured["rows"]
    n = len(rows)

    def mean(key: str) -> float:
        return float(np.mean([r.get(key, 0.0) for r in rows])) if rows else 0.0

    staged = [s for s in ("search", "merge", "rerank") if any(f"{s}_cpu_ms" in r for r in rows)]
    cpu = {"route": mean("route_cpu_ms"), **{s: mean(f"{s}_cpu_ms") for s in staged}}
    wall = {"route": mean("route_wall_ms"), **{s: mean(f"{s}_wall_ms") for s in staged}}
    thread = mean("cpu_ms")
    return {"queries": n, "cpu_ms": cpu, "thread_cpu_ms": thread, "jvm_other_cpu_ms": thread * jvm_share,
            "total_cpu_ms": thread * (1.0 + jvm_share), "wall_ms": wall,
            "latency_interleaved": percentiles(measured["wall_ms"]),
            "docs_scored": mean("docs_scored"), "fraction_scored": mean("docs_scored") / n_docs if n_docs else 0.0,
            "shards": mean("shards"), "routed_in_engine": bool(rows) and mean("routed_in_engine") == 1.0}


def query_postings(index: Any, queries: Sequence[tuple[str, str]], shard_lists: Sequence[Sequence[int]]
                   ) -> np.ndarray:
    """Postings of each query's (distinct, analysed) terms in its searched shards.

    This is the work a term-at-a-time BM25 evaluation would do (Lucene's dynamic pruning skips
    part of it), taken from the per-shard term statistics of the index (built once if missing).
    """
    from selectsearch.index.termstats import Analyzer, ensure_term_stats

    stats = ensure_term_stats(index)
    analyzer = Analyzer(stats.analyzer_class)
    out = np.zeros(len(queries), dtype=np.float64)
    for i, ((_, text), shards) in enumerate(zip(queries, shard_lists, strict=True)):
        ids = np.unique(stats.term_ids(analyzer(text)))
        if len(ids) and len(shards):
            out[i] = float(stats.df[:, ids][list(shards)].sum())
    return out


def fit_cost_model(results: Sequence[Mapping[str, Any]], n_docs: int, sizes: Sequence[int] = (10_000_000, 100_000_000)
                   ) -> dict[str, Any]:
    """Fit per-query search CPU to the postings it touches and extrapolate to larger collections.

    Model (CPU ms per query; ``P`` = postings of the query's terms in the searched shards, see
    :func:`query_postings`; ``S`` = shards searched; ``N`` = documents in the collection):

    * search + merge thread CPU of one query = ``a + c_p * P + c_s * S``
      (:class:`SearchCpuModel` fitted by :func:`fit_search_cpu` over every (query, configuration)
      pair on the sharded index; one size is measured here, so its ``ln N`` term is not fitted).
      ``a + c_s * S`` is the fixed cost of a query (parsing, term-statistics lookups in every
      searched shard, collecting and mapping ``k`` hits across JNI, Python); ``c_p`` the cost per
      posting.
    * at size ``N`` every configuration's ``P`` grows like ``N`` (same fraction of the collection
      scored, same term distribution), so its CPU is
      ``(route(N) + a + c_s * S + c_p * P * N / N0) * (1 + jvm)``, ``jvm`` being that
      configuration's measured share of CPU in the JVM's own threads (garbage collection, JIT).
    * ``route(N)`` stays constant for routers whose cost depends on the number of shards and the
      vocabulary (centroid, CORI, Taily; the shard count is kept) and grows like ``N`` for those
      that search a sample of the collection (ReDDE, Rank-S: the sample is a fixed share).
    * the unsharded index gets its own fixed cost ``a1`` (measured CPU minus ``c_p * P``).

    ``eval/scale/model_check.py`` fits the same model on several sizes (with its ``ln N`` term)
    and checks it against a larger one.

    Assumptions: same document and query distributions at every size; Lucene's dynamic pruning
    no better at scale (conservative for both sides); shard count as measured; the fraction
    selective search needs for the quality target as measured (studies of larger collections
    found it shrinks, e.g. Kulkarni & Callan 2015).
    """
    sharded = [r for r in results if r.get("kind") == "sharded" and not r.get("rerank") and r.get("postings")]
    if not sharded:
        raise SelectSearchError("the cost model needs measured configurations on a sharded index")
    model = fit_search_cpu((np.asarray(r["postings"]), searched_shards(r), n_docs, np.asarray(r["search_merge_cpu"]))
                           for r in sharded)
    a, c_p, c_s = model.coef["fixed"], model.coef["per_posting"], model.coef["per_shard"]

    def row(r: Mapping[str, Any], label: str, fixed: float) -> dict[str, Any]:
        s = r["summary"]
        jvm = s["jvm_other_cpu_ms"] / max(s["thread_cpu_ms"], 1e-9)
        p = float(np.mean(r["postings"]))
        sample_based = r["router"] in ("redde", "ranks")
        out = {"config": label, "fraction": s["fraction_scored"], "postings": p, "route_cpu_ms": s["cpu_ms"]["route"],
               "fixed_ms": fixed, "jvm_share": jvm, "measured_total_cpu_ms": s["total_cpu_ms"],
               "model_total_cpu_ms": (s["cpu_ms"]["route"] + fixed + c_p * p) * (1.0 + jvm)}
        for n in sizes:
            scale = n / n_docs
            route = s["cpu_ms"]["route"] * (scale if sample_based else 1.0)
            out[f"cpu_ms_{n}"] = (route + fixed + c_p * p * scale) * (1.0 + jvm)
        return out

    def fixed_of(r: Mapping[str, Any]) -> float:
        return model.fixed_ms(float(np.mean(searched_shards(r))), n_docs)

    rows = []
    for r in results:
        if r.get("rerank") or not r.get("postings"):
            continue
        if r["kind"] == "unsharded":
            s = r["summary"]
            fixed = s["cpu_ms"]["search"] + s["cpu_ms"].get("merge", 0.0) - c_p * float(np.mean(r["postings"]))
            rows.append(row(r, "exhaustive, unsharded index", fixed))
        elif r["router"] == "all":
            rows.insert(0, row(r, f"exhaustive, {r['n_shards']} shards", fixed_of(r)))
        elif r.get("target_budget"):
            rows.append(row(r, r["route"], fixed_of(r)))
    return {"a_ms": a, "c_p_ns_per_posting": c_p * 1e6, "c_s_ms_per_shard": c_s, "r2": model.r2, "points": model.points,
            "n_docs_measured": n_docs, "sizes": list(sizes), "rows": rows}


def add_postings(results: list[dict[str, Any]], indexes: Mapping[str, Path], items: Sequence[tuple[str, str]]
                 ) -> None:
    """Per query postings touched (``r["postings"]``) from each sharded index's term statistics;
    the unsharded index holds the same documents as the first sharded one, so its queries touch
    that one's exhaustive search's postings."""
    from selectsearch.index.sharded import ShardedIndex

    sharded = next((r for r in results if r["kind"] == "sharded"), None)
    if sharded is None:
        return
    names = {r["index"] for r in results if r["kind"] == "sharded"}
    opened = {name: ShardedIndex.open(indexes[name]) for name in names}
    first = opened[sharded["index"]]
    everything = query_postings(first, items, [list(range(first.n_shards))] * len(items))
    for r in results:
        if r["kind"] == "unsharded":
            r["postings"] = everything.tolist()
        elif r["index"] in opened:
            r["postings"] = query_postings(opened[r["index"]], items, r["shards"]).tolist()
        r["summary"]["postings"] = float(np.mean(r["postings"])) if r.get("postings") else 0.0


def mark_targets(results: list[dict[str, Any]], target: float) -> None:
    """Flag, per router on each sharded index, the smallest budget reaching ``target`` x exhaustive
    nDCG@10 (the first sharded index's)."""
    exhaustive = next((r for r in results if r["kind"] == "sharded" and r["router"] == "all" and not r["rerank"]),
                      None)
    if exhaustive is None:
        return
    goal = target * exhaustive["metrics"]["nDCG@10"]
    by_router: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        if r["kind"] == "sharded" and r["router"] not in ("all",) and not r["rerank"]:
            by_router.setdefault((r["index"], r["router"]), []).append(r)
    for family in by_router.values():
        family.sort(key=lambda r: r["summary"]["fraction_scored"])
        for r in family:
            if r["metrics"]["nDCG@10"] >= goal:
                r["target_budget"] = True
                break


def describe_size(n: float, n0: int) -> str:
    if not np.isfinite(n):
        return "never (it grows at least as fast)"
    return "already at the measured size" if n <= n0 else f"about {n:,.0f} documents"


def crossover(model: Mapping[str, Any]) -> list[tuple[str, float]]:
    """Collection size at which each selective configuration becomes cheaper than the cheapest
    exhaustive one, from the fitted model (both linear in N)."""
    sizes = model["sizes"]
    n0 = model["n_docs_measured"]

    def line(m: Mapping[str, Any]) -> tuple[float, float]:  # cpu(N) = u + v*N, from two model points
        y1, y2 = m[f"cpu_ms_{sizes[0]}"], m[f"cpu_ms_{sizes[1]}"]
        v = (y2 - y1) / (sizes[1] - sizes[0])
        return y1 - v * sizes[0], v

    exhaustive = [line(m) for m in model["rows"] if m["config"].startswith("exhaustive")]
    out = []
    for m in model["rows"]:
        if m["config"].startswith("exhaustive") or not exhaustive:
            continue
        u, v = line(m)
        best = None
        for eu, ev in exhaustive:  # N where u + vN = eu + ev N
            n = (u - eu) / (ev - v) if ev > v else float("inf")
            best = max(best or 0.0, max(n, float(n0)))
        out.append((m["config"], best if best is not None else float("inf")))
    return out
