"""Build benchmark: the same index built on this machine and on a local Ray cluster, in one run.

SciFact + 200k Wikipedia (205k documents) into 32 lexical k-means shards, first by the
single-machine build (``--threads`` shards indexed at a time in local worker processes), then by
the distributed build (``RayExecutor``: assignment and per-shard indexing as Ray tasks, shards
gathered into the index folder) on a ``ray.cluster_utils.Cluster`` of ``--nodes`` nodes with
``--cpus-per-node`` CPUs each, all on this machine and on loopback. Reports wall time and docs/s
of both, the distributed build's phases, every shard's indexing time and peak worker memory,
checks that both indexes give the same ``--route all`` run, and projects from the measured
per-document costs the build time and memory per node for ``--project-docs`` documents on N
nodes. Writes ``build.json`` and ``build.md`` to ``--out``.

``--space dense`` benchmarks the dense build instead (k-means on encoder embeddings of every
document): the corpus is encoded by the single-machine build in this process and by Ray tasks in
the distributed one (each build into its own empty embedding cache under ``--work``, so both
really encode), and the two indexes must put every document in the same shard. Writes
``build-dense.json`` and ``build-dense.md`` (no projection: its model is the lexical build's).

A timing benchmark: run it alone on an idle machine. Ray sends its traffic to the machine's
non-loopback address, so run it inside a loopback-only network namespace (as root):

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python eval/serve/bench_build.py \\
        --out eval/results/serve --work /tmp/bench-build'
    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python eval/serve/bench_build.py \\
        --sources ../shared/data/scifact --shards 16 --space dense --out eval/results/serve --work /tmp/bb-dense'
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import command_line, data_root, script_parser

GIB = 1024**3


class TimedExecutor:
    """A :class:`~selectsearch.index.distributed.RayExecutor` that records when each pass starts and ends."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.marks: dict[str, float] = {}

    def embed(self, encoder: Any, chunks: Iterable[list[str]]) -> Iterator[np.ndarray]:
        self.marks["encode_start"] = time.time()
        yield from self.inner.embed(encoder, chunks)
        self.marks["encode_end"] = time.time()

    def assign(self, fitted: Any, batches: Iterable[tuple[list[Any], np.ndarray]]) -> Iterator[np.ndarray]:
        self.marks["assign_start"] = time.time()
        yield from self.inner.assign(fitted, batches)
        self.marks["assign_end"] = time.time()

    def index(self, root: Path, jobs: list[int], *, memory_mb: int, lucene: bool) -> Iterator[dict[str, Any]]:
        self.marks["index_start"] = time.time()
        yield from self.inner.index(root, jobs, memory_mb=memory_mb, lucene=lucene)
        self.marks["index_end"] = time.time()


def _bytes(folder: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def _run(index: Path, data: Path, out: Path) -> bytes:
    from selectsearch.cli import main

    assert main(["-q", "search", str(index), "--queries", str(data), "--split", "test", "--route", "all", "--k", "100",
                 "--output", str(out)]) == 0
    return out.read_bytes()


def _shards(index: Path) -> list[str]:
    """Each shard's doc ids, in order: what the partition decided."""
    return [(d / "doc_ids.txt").read_text(encoding="utf-8") for d in sorted((index / "shards").iterdir())]


def _encode_seconds(cache_root: Path) -> float | None:
    """The encoding time recorded in the (one) embedding cache entry under ``cache_root``."""
    from selectsearch.encode import EmbeddingCache

    entries = [p for p in cache_root.iterdir() if (p / "meta.json").is_file()] if cache_root.is_dir() else []
    return float(EmbeddingCache(entries[0]).meta()["encode_seconds"]) if len(entries) == 1 else None


def _peak_rss_mb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def project(measured: dict[str, Any], *, docs: int, nodes: list[int], cores: int,
            shard_docs: int) -> list[dict[str, Any]]:
    """Build time and memory per node for ``docs`` documents on each of ``nodes`` nodes of ``cores``
    CPUs, from the measured per-document costs (see ``build.md`` for the model)."""
    n = measured["documents"]
    driver_per_doc = measured["driver_seconds_per_doc"]
    shard_seconds = measured["shard_fixed_seconds"] + measured["shard_seconds_per_doc"] * shard_docs
    overhead = measured["index_overhead"]
    shards = max(1, math.ceil(docs / shard_docs))
    shard_bytes = (measured["index_bytes"] + measured["store_bytes"]) / n * shard_docs
    rows = []
    for k in nodes:
        slots = k * cores
        waves = math.ceil(shards / slots)  # shards run `slots` at a time
        index_wall = waves * shard_seconds * overhead
        driver = measured["fit_seconds"] + driver_per_doc * docs
        rows.append({
            "nodes": k, "cores_per_node": cores, "documents": docs, "shards": shards, "shard_docs": shard_docs,
            "driver_hours": round(driver / 3600, 2), "index_hours": round(index_wall / 3600, 2),
            "total_hours": round((driver + index_wall) / 3600, 2),
            "task_memory_gib": round(measured["task_peak_rss_mb"] / 1024, 2),
            "node_memory_gib": round(cores * measured["task_peak_rss_mb"] / 1024, 1),
            "node_scratch_gib": round(cores * shard_bytes / GIB, 1),
            "index_gib": round((measured["index_bytes"] + measured["store_bytes"]) / n * docs / GIB, 0),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--sources", nargs="+", default=None,
                        help="corpus sources (default: DATA/scifact DATA/wikipedia)")
    parser.add_argument("--queries", default=None, help="BEIR folder of the identity check's queries (default scifact)")
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--space", choices=("lexical", "dense"), default="lexical",
                        help="k-means on TF-IDF vectors of a sample (default) or on embeddings of every document, "
                             "encoded by Ray tasks in the distributed build")
    parser.add_argument("--nodes", type=int, default=2, help="Ray nodes of the local cluster (default 2)")
    parser.add_argument("--cpus-per-node", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                        help="shards indexed at a time by the single-machine build (default: the CPUs)")
    parser.add_argument("--work", required=True,
                        help="scratch folder for the two indexes: new or empty (what the run writes there is removed "
                             "at the end)")
    parser.add_argument("--out", required=True,
                        help="where build.json and build.md (build-dense.* with --space dense) go")
    parser.add_argument("--project-docs", type=int, default=100_000_000)
    parser.add_argument("--project-nodes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--project-cores", type=int, default=16, help="CPUs per node in the projection")
    parser.add_argument("--project-shard-docs", type=int, default=400_000,
                        help="documents per shard in the projection (default 400k: 250 shards of 100M)")
    args = parser.parse_args(argv)

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray.cluster_utils import Cluster

    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index
    from selectsearch.index.distributed import RayExecutor
    from selectsearch.index.manifest import Manifest

    root = data_root()
    sources = args.sources or [str(root / "scifact"), str(root / "wikipedia")]
    queries = Path(args.queries or root / "scifact")
    work = Path(args.work)
    if work.exists() and (not work.is_dir() or any(work.iterdir())):
        # never delete what the user had there: the scratch folder must be new or empty
        print(f"--work {work} exists and is not an empty folder: give a new or empty one", file=sys.stderr)
        return 2
    work.mkdir(parents=True, exist_ok=True)
    dense = args.space == "dense"

    def config(name: str) -> BuildConfig:  # dense: each build encodes into its own, new cache
        options = {"cache_dir": str(work / f"cache-{name}")} if dense else {}
        return BuildConfig(n_shards=args.shards, threads=args.threads, space=args.space, partitioner_options=options)

    # 1. single machine
    t = time.time()
    single = build_index(open_corpus(sources), work / "single", config("single"))
    single_wall = time.time() - t
    single_manifest = Manifest.read(single)
    n_docs = single_manifest.corpus.n_docs
    driver_rss_single = _peak_rss_mb(resource.RUSAGE_SELF)
    print(f"single machine: {n_docs} documents in {single_wall:.1f} s", file=sys.stderr)

    # 2. local Ray cluster
    t = time.time()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus_per_node,
                                                            "include_dashboard": False})
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=args.cpus_per_node)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    cluster_start = time.time() - t
    shards: list[dict[str, Any]] = []
    try:
        executor = TimedExecutor(RayExecutor(on_shard=lambda r: shards.append({**r, "done": time.time()})))
        t = time.time()
        dist = build_index(open_corpus(sources), work / "ray", config("ray"), executor=executor)  # type: ignore[arg-type]
        dist_wall = time.time() - t
        started = t
    finally:
        ray.shutdown()
        cluster.shutdown()
    dist_manifest = Manifest.read(dist)
    print(f"Ray, {args.nodes} nodes: {n_docs} documents in {dist_wall:.1f} s", file=sys.stderr)

    identical = _run(single, queries, work / "single.run") == _run(dist, queries, work / "ray.run")
    same_shards = _shards(single) == _shards(dist)
    marks = executor.marks
    index_phase = marks["index_end"] - marks["index_start"]
    cpu_seconds = sum(s["seconds"] for s in shards)
    slots = args.nodes * args.cpus_per_node
    fit_seconds = float(dist_manifest.partition.fit_seconds or 0.0) if dist_manifest.partition else 0.0
    # a shard's indexing time = fixed + per-document cost: the fixed part (a worker's first task
    # starts its JVM) must not be spread over the documents of a 100M collection
    sizes = np.array([s["n_docs"] for s in shards], dtype=float)
    seconds = np.array([s["seconds"] for s in shards], dtype=float)
    slope, intercept = (np.polyfit(sizes, seconds, 1) if len(shards) > 1 and np.ptp(sizes) > 0
                        else (seconds.sum() / sizes.sum(), 0.0))
    if slope <= 0:
        slope, intercept = seconds.sum() / sizes.sum(), 0.0
    pre_index = marks["index_start"] - started  # scan + fit + assign/write, on the driver
    measured = {
        "documents": n_docs,
        "fit_seconds": round(fit_seconds, 2),
        "driver_seconds_per_doc": (pre_index - fit_seconds) / n_docs,
        "index_cpu_seconds_per_doc": cpu_seconds / n_docs,
        "shard_seconds_per_doc": float(slope),
        "shard_fixed_seconds": max(0.0, float(intercept)),
        # wall of the index phase against perfect packing of the measured shard times on the slots
        "index_overhead": round(index_phase / max(cpu_seconds / slots, max(s["seconds"] for s in shards)), 3),
        "task_peak_rss_mb": max(s["max_rss_mb"] for s in shards),
        "index_bytes": _bytes(dist / "shards", "lucene/*"),
        "store_bytes": _bytes(dist / "shards", "docs/*"),
    }
    result = {
        "command": command_line(__file__, argv, prefix="unshare -n sh -c 'ip link set lo up && exec .venv/bin/python ")
        + "'",
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "sources": sources, "shards": args.shards, "space": args.space, "documents": n_docs,
        "single": {"threads": args.threads, "wall_seconds": round(single_wall, 2),
                   "docs_per_second": round(n_docs / single_wall, 1),
                   "fit_seconds": single_manifest.partition.fit_seconds if single_manifest.partition else None,
                   "encode_seconds": _encode_seconds(work / "cache-single") if dense else None,
                   "driver_peak_rss_mb": driver_rss_single},
        "ray": {"nodes": args.nodes, "cpus_per_node": args.cpus_per_node,
                "cluster_start_seconds": round(cluster_start, 1),
                "wall_seconds": round(dist_wall, 2), "docs_per_second": round(n_docs / dist_wall, 1),
                "phases_seconds": {"scan_fit_assign_write": round(pre_index, 2),
                                   **({"encode_corpus": round(marks["encode_end"] - marks["encode_start"], 2)}
                                      if "encode_end" in marks else {}),
                                   "assign_write": round(marks["assign_end"] - marks["assign_start"], 2),
                                   "index_and_gather": round(index_phase, 2),
                                   "manifest_publish": round(started + dist_wall - marks["index_end"], 2)},
                "driver_peak_rss_mb": _peak_rss_mb(resource.RUSAGE_SELF),
                "shards_per_node": {n: sum(1 for s in shards if s["node"] == n)
                                    for n in sorted({s["node"] for s in shards})}},
        "identical_route_all_run": identical,
        "same_documents_in_each_shard": same_shards,
        "shard_costs": sorted(({k: s[k] for k in ("shard_id", "n_docs", "seconds", "max_rss_mb")} for s in shards),
                              key=lambda s: s["shard_id"]),
        "measured": measured,
        "projection": [] if dense else project(measured, docs=args.project_docs, nodes=args.project_nodes,
                                               cores=args.project_cores, shard_docs=args.project_shard_docs),
    }
    out = Path(args.out)
    stem = "build-dense" if dense else "build"
    write_json(out / f"{stem}.json", result, end="\n")
    write_markdown(out / f"{stem}.md", _markdown(result, args))
    for name in ("single", "ray", "single.run", "ray.run", "cache-single", "cache-ray"):  # what this run made
        target = work / name
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    return 0 if identical and same_shards else 1


def _markdown(r: dict[str, Any], args: Any) -> list[str]:
    s, d, m = r["single"], r["ray"], r["measured"]
    lines = [
        "# Distributed build: single machine against a local Ray cluster",
        "",
        f"Command (as root, alone on an idle machine): `{r['command']}`",
        "",
        f"{r['documents']:,} documents ({' + '.join(Path(x).name for x in r['sources'])}) into {r['shards']} "
        f"{r['space']} k-means shards" + (" (every document embedded by the packaged all-MiniLM-L6-v2: in this "
                                         "process by the single-machine build, by Ray tasks in the distributed one)"
                                         if r["space"] == "dense" else "")
        + f"; machine: {r['machine']['cpus']} CPUs. The Ray cluster is `ray.cluster_utils.Cluster` on this "
        f"same machine ({d['nodes']} nodes x {d['cpus_per_node']} CPU, loopback), so it measures the distributed "
        "build's overhead, not a speed-up: both builds share the same cores.",
        "",
        "| build | wall s | docs/s | notes |",
        "|---|---:|---:|---|",
        f"| single machine, {s['threads']} shards at a time | {s['wall_seconds']} | {s['docs_per_second']} | "
        f"fit {s['fit_seconds']} s" + (f" (encoding {s['encode_seconds']} s)" if s.get("encode_seconds") else "")
        + f"; driver peak {s['driver_peak_rss_mb']} MB |",
        f"| Ray, {d['nodes']} nodes x {d['cpus_per_node']} CPU (gathered) | {d['wall_seconds']} | "
        f"{d['docs_per_second']} | "
        f"cluster start {d['cluster_start_seconds']} s (not in the wall time); shards per node "
        f"{sorted(d['shards_per_node'].values())}; driver peak {d['driver_peak_rss_mb']} MB (both builds' peak) |",
        "",
        f"Same documents in each shard: **{r['same_documents_in_each_shard']}**.",
        "",
        f"Same `--route all` run from both indexes (SciFact test queries, k=100): **{r['identical_route_all_run']}**.",
        "",
        "Phases of the distributed build (s): " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                                          for k, v in d["phases_seconds"].items()) + ".",
        "",
        f"Per-shard costs (Ray tasks): {len(r['shard_costs'])} shards; indexing a shard took "
        f"{m['shard_fixed_seconds']:.2f} s + {m['shard_seconds_per_doc'] * 1000:.3f} ms per document (least squares "
        f"over the shards; {m['index_cpu_seconds_per_doc'] * 1000:.3f} ms per document in all, JVM starts "
        f"included); peak worker memory {m['task_peak_rss_mb']} MB (its JVM, max heap "
        f"{os.environ.get('SELECTSEARCH_WORKER_HEAP', '1g')}, included); "
        f"index phase {m['index_overhead']}x perfect packing of the measured shard times; Lucene "
        f"{m['index_bytes'] / r['documents']:.0f} B and document store {m['store_bytes'] / r['documents']:.0f} B "
        "per document.",
    ]
    if not r["projection"]:
        return lines
    lines += [
        "",
        f"## On paper: {args.project_docs:,} documents on N nodes of {args.project_cores} CPUs",
        "",
        "Model, from the measured costs above: the driver reads the corpus, fits the partitioner on its "
        "sample (fixed cost) and writes every document to its shard's store at the measured driver rate "
        f"({m['driver_seconds_per_doc'] * 1e6:.1f} us per document, assignment done by Ray tasks); then shards of "
        f"{args.project_shard_docs:,} documents are indexed {args.project_cores} per node at a time, each taking the "
        "measured fixed + per-document time, times the measured packing overhead (waves of N x CPUs shards); "
        "Lucene's merges make the per-document cost grow slowly with shard size, which this linear model leaves "
        "out. Memory per node is one "
        "worker's measured peak per CPU (the JVM heap bounds it, not the shard size); scratch disk per node holds "
        "one shard (store + Lucene) per CPU. The driver is serial: past a few nodes it bounds the build, and "
        "with gathered shards its disk and network carry the whole index (use --ray-shared on a shared file "
        "system, or partition the corpus into several builds).",
        "",
        "| nodes | shards | driver h | indexing h | total h | memory/node GiB | scratch/node GiB | index GiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in r["projection"]:
        lines.append(f"| {p['nodes']} | {p['shards']} | {p['driver_hours']} | {p['index_hours']} | "
                     f"{p['total_hours']} | {p['node_memory_gib']} | {p['node_scratch_gib']} | {p['index_gib']:.0f} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
