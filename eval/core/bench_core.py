"""Speed benchmark of the core issue, measured side by side in one run (ratios).

Measures:
  * ``import selectsearch`` wall time (fresh interpreter, median of 7) — target < 0.3 s;
  * cold ``selectsearch search INDEX --query ... --route all`` wall time (median of 3) — < 3 s;
  * ``--route all`` batch search over ONE shard vs pyserini's ``LuceneSearcher.batch_search`` on
    the same single index, k=100 and k=1000, same threads, alternating runs — ratio >= 1.0;
  * indexing documents/s with the random partitioner vs pyserini's ``LuceneIndexer`` alone on
    the same corpus (SciFact + 200k Wikipedia passages), same threads — ratio >= 0.8;
  * peak resident memory (whole process tree) of a 32-shard lexical k-means build — < 4 GiB.

Usage (from the repository root):
  .venv/bin/python eval/core/bench_core.py --data ../shared/data --out eval/results/core
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selectsearch.bench.measure import TreeRss, machine, median, wall_s
from selectsearch.bench.script import REPO, command_line, script_parser

PY = sys.executable
CLI = str(Path(PY).with_name("selectsearch"))


def wall(cmd: list[str]) -> float:
    """Wall seconds of a command run to completion (its output discarded)."""
    return wall_s(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def bench_import() -> dict[str, float]:
    base = [wall([PY, "-c", "pass"]) for _ in range(7)]
    imp = [wall([PY, "-c", "import selectsearch"]) for _ in range(7)]
    return {"python_startup_s": median(base), "import_selectsearch_s": median(imp)}


def bench_cold_search(index: Path) -> dict[str, float]:
    times = [wall([CLI, "search", str(index), "--query", "vitamin D deficiency and fractures", "--route", "all",
                   "--k", "10"]) for _ in range(3)]
    return {"cold_search_all_s": median(times), "cold_search_all_runs_s": times}  # type: ignore[dict-item]


SEARCH_RACE = r"""
import json, sys, time
from selectsearch.bench.measure import median
from selectsearch.lucene.jvm import start_jvm
start_jvm()
from pyserini.search.lucene import LuceneSearcher
from selectsearch.search import SelectiveSearcher
index, pyserini_index, queries_path = sys.argv[1:4]
threads, rounds = int(sys.argv[4]), int(sys.argv[5])
queries = json.load(open(queries_path))
qids = list(queries); texts = [queries[q] for q in qids]
ours = SelectiveSearcher.open(index, route="all", threads=threads)
theirs = LuceneSearcher(pyserini_index); theirs.set_bm25(0.9, 0.4)
def run_ours(k):
    res = ours.batch_search(queries, k=k)
    return {q: [(h.doc_id, h.score) for h in r.hits] for q, r in res.items()}
def run_theirs(k):
    res = theirs.batch_search(texts, qids, k=k, threads=threads)
    return {q: [(h.docid, h.score) for h in hs] for q, hs in res.items()}
out = {}
for k in (100, 1000):
    run_ours(k); run_theirs(k)  # warm-up (JIT, page cache)
    t_o, t_t = [], []
    for _ in range(rounds):
        t = time.perf_counter(); run_ours(k); t_o.append(time.perf_counter() - t)
        t = time.perf_counter(); run_theirs(k); t_t.append(time.perf_counter() - t)
    n = len(texts)
    out[f"k{k}"] = {"queries": n, "ours_qps": n / median(t_o), "pyserini_qps": n / median(t_t),
                    "ratio": median(t_t) / median(t_o), "ours_s": t_o, "pyserini_s": t_t}
print(json.dumps(out))
"""


def write_flat_jsonl(sources: list[Path], folder: Path) -> int:
    from selectsearch.data import open_corpus

    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    with (folder / "docs.jsonl").open("w") as f:
        for doc in open_corpus(sources):
            f.write(json.dumps({"id": doc.doc_id, "contents": doc.contents}) + "\n")
            n += 1
    return n


PYSERINI_INDEXER = r"""
import json, sys, time
from selectsearch.lucene.jvm import start_jvm
start_jvm()
from pyserini.index.lucene import LuceneIndexer
from selectsearch.data import open_corpus
out, threads, same_options = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "same"
sources = sys.argv[4:]
t = time.perf_counter()
args = ["-input", "", "-collection", "JsonCollection", "-threads", str(threads), "-index", out]
if same_options:  # the index selectsearch builds: positions and document vectors stored
    args += ["-storePositions", "-storeDocvectors"]
indexer = LuceneIndexer(out, args=args, threads=threads)
batch, n = [], 0
for doc in open_corpus(sources):
    batch.append({"id": doc.doc_id, "contents": doc.contents})
    if len(batch) == 1000:
        indexer.add_batch_dict(batch); n += len(batch); batch = []
if batch:
    indexer.add_batch_dict(batch); n += len(batch)
indexer.close()
print(json.dumps({"docs": n, "seconds": time.perf_counter() - t}))
"""


def run_build(cmd: list[str]) -> tuple[float, int]:
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeRss(proc.pid) as rss:
        _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err[-2000:]}")
    return time.perf_counter() - t, rss.peak


def search_part(work: Path, scifact: Path, threads: int, rounds: int) -> dict[str, object]:
    """Cold start and the batch-search race against pyserini (same single index)."""
    results: dict[str, object] = {}
    k1 = work / "scifact-k1"
    subprocess.run([CLI, "-q", "index", str(scifact), "--out", str(k1), "--shards", "1", "--partitioner", "random"],
                   check=True, capture_output=True)
    k16 = work / "scifact-k16"
    subprocess.run([CLI, "-q", "index", str(scifact), "--out", str(k16), "--shards", "16"], check=True,
                   capture_output=True)
    results["cold_search"] = bench_cold_search(k16)
    print(results["cold_search"], flush=True)
    # a single index of the same documents built by Anserini directly, searched by pyserini
    flat = work / "flat"
    write_flat_jsonl([scifact], flat)
    pyserini_index = work / "pyserini-scifact"
    subprocess.run([PY, "-c", "from selectsearch.lucene.jvm import start_jvm, jclass; start_jvm();"
                    "import sys; jclass('io.anserini.index.IndexCollection').main(sys.argv[1:])",
                    "-collection", "JsonCollection", "-input", str(flat), "-index", str(pyserini_index),
                    "-generator", "DefaultLuceneDocumentGenerator", "-threads", "1", "-storePositions",
                    "-storeDocvectors", "-storeRaw", "-optimize"], check=True, capture_output=True)
    from selectsearch.data import load_queries

    queries = load_queries(scifact, split="test")  # the 300 test queries
    (work / "q.json").write_text(json.dumps(queries))
    race = {}
    for n_threads in sorted({1, threads}):
        print(f"search race threads={n_threads} ...", flush=True)
        proc = subprocess.run([PY, "-c", SEARCH_RACE, str(k1), str(pyserini_index), str(work / "q.json"),
                               str(n_threads), str(rounds)], check=True, capture_output=True, text=True)
        race[f"threads{n_threads}"] = json.loads(proc.stdout.strip().splitlines()[-1])
        print({k: round(v["ratio"], 2) for k, v in race[f"threads{n_threads}"].items()}, flush=True)
    results["search_vs_pyserini"] = race
    return results


def indexing_part(work: Path, sources: list[str], threads: int) -> dict[str, object]:
    """Documents/s against pyserini's LuceneIndexer (alternating runs) and peak memory."""
    idx: dict[str, list[float]] = {}
    for rnd in range(2):  # alternate: ours, pyserini (same options), pyserini (defaults), ...
        ours_dir, theirs_dir = work / f"ours-rand32-{rnd}", work / f"pyserini-{rnd}"
        print(f"indexing round {rnd} ...", flush=True)
        secs, peak = run_build([CLI, "-q", "index", *sources, "--out", str(ours_dir), "--shards", "32",
                                "--partitioner", "random", "--threads", str(threads)])
        idx.setdefault("ours_random32_s", []).append(secs)
        idx.setdefault("ours_random32_peak_rss_bytes", []).append(peak)
        shutil.rmtree(ours_dir)
        for variant, key in (("same", "pyserini_luceneindexer_s"), ("default", "pyserini_default_options_s")):
            secs, peak = run_build([PY, "-c", PYSERINI_INDEXER, str(theirs_dir), str(threads), variant, *sources])
            idx.setdefault(key, []).append(secs)
            idx.setdefault(key.replace("_s", "_peak_rss_bytes"), []).append(peak)
            shutil.rmtree(theirs_dir)
        print(idx, flush=True)
    n_docs = 205_183
    ours_s = median(idx["ours_random32_s"])
    theirs_s = median(idx["pyserini_luceneindexer_s"])
    default_s = median(idx["pyserini_default_options_s"])
    result: dict[str, object] = {**idx, "docs": n_docs, "ours_docs_per_s": n_docs / ours_s,
                                 "pyserini_docs_per_s": n_docs / theirs_s, "ratio": theirs_s / ours_s,
                                 "pyserini_default_docs_per_s": n_docs / default_s,
                                 "ratio_vs_default_options": default_s / ours_s}
    print("kmeans 32 build ...", flush=True)
    km_dir = work / "ours-kmeans32"
    secs, peak = run_build([CLI, "-q", "index", *sources, "--out", str(km_dir), "--shards", "32",
                            "--partitioner", "kmeans", "--threads", str(threads)])
    result.update({"ours_kmeans32_s": secs, "ours_kmeans32_peak_rss_bytes": peak})
    return result


def small_build_part(work: Path, source: Path, threads: int, rounds: int, shards: int) -> dict[str, object]:
    """A small collection's build (``shards`` lexical k-means shards) against pyserini's LuceneIndexer
    alone on the same documents (same index options), alternating runs; then the first `eval`'s
    extra seconds (it builds the sample index and term statistics the routers need) against a
    second, identical `eval` of the same index."""
    runs: dict[str, list[float]] = {}
    index = work / "small-ours"
    for rnd in range(rounds):
        print(f"small build round {rnd} ...", flush=True)
        shutil.rmtree(index, ignore_errors=True)
        secs, _ = run_build([CLI, "-q", "index", str(source), "--out", str(index), "--shards", str(shards),
                             "--partitioner", "kmeans", "--threads", str(threads)])
        runs.setdefault("ours_kmeans_s", []).append(secs)
        theirs = work / "small-pyserini"
        secs, _ = run_build([PY, "-c", PYSERINI_INDEXER, str(theirs), str(threads), "same", str(source)])
        runs.setdefault("pyserini_luceneindexer_s", []).append(secs)
        shutil.rmtree(theirs)
    evals = [wall([CLI, "-q", "eval", str(index), "--data", str(source), "--route", "cori@2"]) for _ in range(2)]
    ours, theirs_s = median(runs["ours_kmeans_s"]), median(runs["pyserini_luceneindexer_s"])
    return {**runs, "source": str(source), "shards": shards, "ratio": ours / theirs_s, "first_eval_s": evals[0],
            "second_eval_s": evals[1], "first_eval_overhead_s": evals[0] - evals[1]}


def main(argv: list[str] | None = None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(REPO / "eval" / "results" / "core"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-indexing", action="store_true", help="keep the last indexing measurements")
    ap.add_argument("--skip-search", action="store_true", help="keep the last search measurements")
    ap.add_argument("--small-build", metavar="BEIR", default=None,
                    help="also time the build of this small collection (16 k-means shards) against pyserini's "
                         "indexer, and the first eval's overhead (e.g. ../shared/data/homedepot)")
    ap.add_argument("--small-build-shards", type=int, default=16, metavar="K")
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous_file = out / "core-speed.json"
    previous = json.loads(previous_file.read_text()) if previous_file.exists() else {}
    work = Path(tempfile.mkdtemp(prefix="bench-core-"))
    results: dict[str, object] = {
        "command": command_line(__file__, argv, prefix=Path(PY).name + " ", quote=False), "machine": machine(),
        "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        print("import ...", flush=True)
        results["import"] = bench_import()
        print(results["import"], flush=True)
        if args.skip_search:
            results.update({k: previous[k] for k in ("cold_search", "search_vs_pyserini") if k in previous})
        else:
            results.update(search_part(work, data / "scifact", args.threads, args.rounds))
        if args.skip_indexing:
            results.update({k: previous[k] for k in ("indexing",) if k in previous})
        else:
            results["indexing"] = indexing_part(work, [str(data / "scifact"), str(data / "wikipedia")], args.threads)
        if args.small_build:
            results["small_build"] = small_build_part(work, Path(args.small_build), args.threads, args.rounds,
                                                      args.small_build_shards)
        elif "small_build" in previous:
            results["small_build"] = previous["small_build"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    previous_file.write_text(json.dumps(results, indent=2))
    (out / "core-speed.md").write_text(render(results))
    print((out / "core-speed.md").read_text())
    return 0


def render(r: dict) -> str:  # type: ignore[type-arg]
    lines = ["# Core speed benchmark", "", f"Command: `{r['command']}`  ", f"Machine: {r['machine']}, {r['cpus']} CPUs,"
             f" {r['date']}", "", "| measure | value | target | met |", "|---|---|---|---|"]
    imp = r["import"]["import_selectsearch_s"]
    lines.append(f"| `import selectsearch` (fresh interpreter, median of 7) | {imp:.3f} s | < 0.3 s | {imp < 0.3} |")
    if "cold_search" in r:  # absent when a part was skipped without earlier measurements to keep
        cold = r["cold_search"]["cold_search_all_s"]
        lines.append(f"| cold `selectsearch search ... --route all` (SciFact, 16 shards) | {cold:.2f} s | < 3 s"
                     f" | {cold < 3} |")
    for tkey, race in r.get("search_vs_pyserini", {}).items():
        for kkey, v in race.items():
            label = f"{kkey.replace('k', 'k=')}, {tkey.replace('threads', '')} thread(s)"
            lines.append(f"| batch search `all`, 1 shard, {label}:"
                         f" ours {v['ours_qps']:.0f} q/s vs pyserini {v['pyserini_qps']:.0f} q/s | {v['ratio']:.2f}x"
                         f" | >= 1.0x | {v['ratio'] >= 1.0} |")
    if "indexing" in r:
        i = r["indexing"]
        lines.append(f"| indexing SciFact+200k wiki, random 32 shards: ours {i['ours_docs_per_s']:.0f} docs/s vs"
                     f" pyserini LuceneIndexer {i['pyserini_docs_per_s']:.0f} docs/s (same index options: positions +"
                     f" document vectors) | {i['ratio']:.2f}x | >= 0.8x | {i['ratio'] >= 0.8} |")
        lines.append(f"| same, vs LuceneIndexer with its default options (no positions, no document vectors):"
                     f" {i['pyserini_default_docs_per_s']:.0f} docs/s | {i['ratio_vs_default_options']:.2f}x |"
                     f" >= 0.8x | {i['ratio_vs_default_options'] >= 0.8} |")
        peak = i["ours_kmeans32_peak_rss_bytes"] / 2**30
        lines.append(f"| peak RSS (process tree), 32-shard lexical k-means build ({i['ours_kmeans32_s']:.0f} s) |"
                     f" {peak:.2f} GiB | < 4 GiB | {peak < 4} |")
    if "small_build" in r:
        b = r["small_build"]
        name = Path(b["source"]).name
        ours, theirs = median(b["ours_kmeans_s"]), median(b["pyserini_luceneindexer_s"])
        lines.append(f"| indexing {name}, k-means {b['shards']} shards: ours {ours:.1f} s vs pyserini "
                     f"LuceneIndexer {theirs:.1f} s (same options; medians of {len(b['ours_kmeans_s'])} "
                     f"alternating runs) | {b['ratio']:.2f}x | <= 1.5x | {b['ratio'] <= 1.5} |")
        lines.append(f"| first `eval --route cori@2` of that index: {b['first_eval_s']:.1f} s vs "
                     f"{b['second_eval_s']:.1f} s for the second (sample index + term statistics built once) "
                     f"| +{b['first_eval_overhead_s']:.1f} s | reported | - |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
