"""Per-shard FAISS: exactness against one flat index, row alignment, routing, atomic add, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from selectsearch.data import load_qrels, load_queries, open_corpus
from selectsearch.dense.config import DenseConfig
from selectsearch.errors import IndexExistsError, ModelError, SelectSearchError, ShardedIndexError
from selectsearch.index.build import BuildConfig, build_index
from selectsearch.index.sharded import ShardedIndex
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Query


def corpus_matrix(index_path: Path, source: Path) -> tuple[np.ndarray, list[str]]:
    """The cached embeddings (corpus order) and the corpus ids of an index with FAISS."""
    from selectsearch.encode import EmbeddingCache

    index = ShardedIndex.open(index_path)
    cache = EmbeddingCache(Path(index.manifest.dense.embedding_cache))
    return np.asarray(cache.load()), [d.doc_id for d in open_corpus(source)]


def flat_reference(matrix: np.ndarray, ids: list[str], vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
    """One IndexFlatIP over the whole collection; ties by (-score, doc_id)."""
    import faiss

    flat = faiss.IndexFlatIP(matrix.shape[1])
    flat.add(np.ascontiguousarray(matrix))
    scores, rows = flat.search(vectors, len(ids))
    out = []
    for d, r in zip(scores, rows, strict=True):
        pairs = sorted(((ids[j], float(s)) for s, j in zip(d, r, strict=True)), key=lambda t: (-t[1], t[0]))
        out.append(pairs[:k])
    return out


def test_dense_all_equals_one_flat_index_exactly(dense_index: Path, beir: Path) -> None:
    searcher = SelectiveSearcher.open(dense_index, route="all", retriever="dense")
    queries = load_queries(beir)
    matrix, ids = corpus_matrix(dense_index, beir)
    vectors = searcher.dense.encode(list(queries.values()))
    for k in (10, len(ids)):
        expected = flat_reference(matrix, ids, vectors, k)
        out = searcher.batch_search(queries, k=k)
        for (qid, _), ref in zip(queries.items(), expected, strict=True):
            got = [(h.doc_id, h.score) for h in out[qid].hits]
            assert got == ref  # same ids, same float32 scores, same order
    trace = out["q-space"].trace
    assert trace.extra["retriever"] == "dense"
    assert trace.extra["vectors_scored"] == len(ids) == trace.docs_scored
    assert {"encode", "search", "route"} <= set(trace.timings_ms)


def test_rows_aligned_with_doc_ids_after_rebuild(dense_index: Path, beir: Path, tiny_model: Path,
                                                 tmp_path: Path) -> None:
    import faiss

    out = tmp_path / "rebuilt"
    shutil.copytree(dense_index, out)
    # rebuild over it: another partitioner and shard count, so every shard's doc order changes
    config = BuildConfig(n_shards=3, partitioner="random", seed=7, threads=1, overwrite=True,
                         backends=("lucene", "faiss"), dense=DenseConfig(model=str(tiny_model), max_length=32))
    build_index(open_corpus(beir), out, config)
    matrix, ids = corpus_matrix(out, beir)
    row_of = {d: i for i, d in enumerate(ids)}
    index = ShardedIndex.open(out)
    assert index.n_shards == 3
    for s in range(index.n_shards):
        shard_ids = index.shard_doc_ids(s)
        flat = faiss.read_index(str(index.shard_path(s) / "faiss" / "index.faiss"))
        stored = flat.reconstruct_n(0, flat.ntotal)
        np.testing.assert_array_equal(stored, matrix[[row_of[d] for d in shard_ids]])
        assert index.shards[s].faiss == {"type": "Flat", "ntotal": len(shard_ids)}
    assert sorted(d for s in range(3) for d in index.shard_doc_ids(s)) == sorted(ids)


def test_manifest_records_backend_model_dimension_and_type(dense_index: Path, tiny_model: Path) -> None:
    index = ShardedIndex.open(dense_index)
    dense = index.manifest.dense.to_json()
    assert dense["backend"] == "faiss" and dense["model"] == str(tiny_model) and dense["dim"] == 32
    assert dense["metric"] == "inner_product" and dense["config"]["factory"] == "Flat"
    assert index.backends == ("lucene", "faiss")
    assert all(s.backends == ["lucene", "faiss"] for s in index.shards if s.n_docs)
    assert index.describe()["dense"]["dim"] == 32


def test_routed_dense_cost_and_monotone_top_score(dense_index: Path, beir: Path) -> None:
    searcher = SelectiveSearcher.open(dense_index, route="all", retriever="dense")
    queries = [Query(q, t) for q, t in load_queries(beir).items()]
    sizes = searcher.index.shard_sizes
    previous = [-np.inf] * len(queries)
    for m in range(1, searcher.index.n_shards + 1):
        routed = searcher.with_route(f"centroid@{m}")
        out = routed.batch_search(queries, k=5)
        for i, q in enumerate(queries):
            trace = out[q.query_id].trace
            assert len(trace.shards) == m
            assert trace.extra["vectors_scored"] == int(sizes[trace.shards].sum()) == trace.docs_scored
            assert all(h.shard_id in trace.shards for h in out[q.query_id].hits)
            top = out[q.query_id].hits[0].score
            assert top >= previous[i]  # searching more shards never loses the best document
            previous[i] = top


def test_dimension_mismatch_is_refused_naming_both(dense_index: Path, tiny_model_16: Path) -> None:
    searcher = SelectiveSearcher.open(dense_index, route="all", retriever="dense",
                                      dense_options={"encoder": str(tiny_model_16)})
    with pytest.raises(ModelError, match=r"16-dimensional.*32-dimensional"):
        searcher.search("rocket orbit", k=3)
    with pytest.raises(ModelError, match=r"16-dimensional.*32-dimensional"):
        SelectiveSearcher.open(dense_index, retriever="dense").dense.search_vectors(np.zeros((1, 16)), [[0]], 3)


def test_tampered_doc_ids_are_detected(dense_index: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(dense_index, out)
    ids_file = out / "shards" / "000" / "doc_ids.txt"
    lines = ids_file.read_text().split("\n")[:-1]
    ids_file.write_text("\n".join(reversed(lines)) + "\n")
    # caught when the index is opened (doc ids no longer match the document store's offsets), or
    # else by the FAISS backend's doc_ids checksum at the first dense search
    with pytest.raises(ShardedIndexError, match=r"no longer match|does not match doc_ids\.txt"):
        SelectiveSearcher.open(out, retriever="dense").search("rocket orbit", k=3)


def test_add_backend_to_lucene_index_is_atomic_and_keeps_bm25(beir: Path, tiny_model: Path, tmp_path: Path) -> None:
    from selectsearch.dense.build import add_faiss_backend

    out = build_index(open_corpus(beir), tmp_path / "lex", BuildConfig(n_shards=3, partitioner="random", threads=1))
    bm25_before = SelectiveSearcher.open(out).search("rocket orbit planet", k=10)
    with pytest.raises(SelectSearchError, match="--add-backend faiss"):
        SelectiveSearcher.open(out, retriever="dense")
    config = DenseConfig(model=str(tiny_model), max_length=32)
    # a different corpus is refused before anything is written
    other = tmp_path / "other"
    other.mkdir()
    (other / "corpus.jsonl").write_text(json.dumps({"_id": "x", "text": "y"}) + "\n")
    with pytest.raises(ShardedIndexError, match="not the corpus"):
        add_faiss_backend(out, open_corpus(other), config)
    assert "dense" not in ShardedIndex.open(out).manifest.to_json()
    add_faiss_backend(out, open_corpus(beir), config)
    index = ShardedIndex.open(out)
    assert index.manifest.dense.dim == 32 and index.has_backend("faiss")
    assert not list(out.glob("shards/*/faiss.partial"))
    assert SelectiveSearcher.open(out).search("rocket orbit planet", k=10) == bm25_before
    dense_hits = SelectiveSearcher.open(out, retriever="dense").search("rocket orbit planet", k=10)
    assert len(dense_hits) == 10
    with pytest.raises(IndexExistsError):
        add_faiss_backend(out, open_corpus(beir), config)
    # replacing: another index type; the new files and manifest agree
    add_faiss_backend(out, open_corpus(beir), DenseConfig(model=str(tiny_model), max_length=32, factory="HNSW8"),
                      overwrite=True)
    index = ShardedIndex.open(out)
    assert {s.faiss["type"] for s in index.shards} == {"HNSW8"}
    assert len(SelectiveSearcher.open(out, retriever="dense").search("rocket orbit planet", k=10)) == 10


def test_faiss_only_index(beir: Path, tiny_model: Path, tmp_path: Path) -> None:
    config = BuildConfig(n_shards=2, partitioner="random", threads=1, backends=("faiss",),
                         dense=DenseConfig(model=str(tiny_model), max_length=32))
    out = build_index(open_corpus(beir), tmp_path / "faiss-only", config)
    index = ShardedIndex.open(out)
    assert index.backends == ("faiss",) and not (index.shard_path(0) / "lucene").exists()
    searcher = SelectiveSearcher.open(out, route="all")
    assert searcher.retriever == "dense"
    matrix, ids = corpus_matrix(out, beir)
    expected = flat_reference(matrix, ids, searcher.dense.encode(["rocket orbit"]), 10)[0]
    assert [(h.doc_id, h.score) for h in searcher.search("rocket orbit", k=10)] == expected
    assert index.doc(expected[0][0])["id"] == expected[0][0]
    with pytest.raises(SelectSearchError, match="needs Lucene"):
        SelectiveSearcher.open(out, retriever="bm25")


def test_ivf_shards_with_all_lists_probed_are_exact(beir: Path, tiny_model: Path, tmp_path: Path) -> None:
    config = BuildConfig(n_shards=2, partitioner="random", threads=1, backends=("lucene", "faiss"),
                         dense=DenseConfig(model=str(tiny_model), max_length=32, large_factory="IVF4,Flat",
                                           large_threshold=1, nprobe=2))
    out = build_index(open_corpus(beir), tmp_path / "ivf", config)
    index = ShardedIndex.open(out)
    assert {s.faiss["type"] for s in index.shards} == {"IVF4,Flat"}
    matrix, ids = corpus_matrix(out, beir)
    exact = SelectiveSearcher.open(out, retriever="dense", dense_options={"nprobe": 4})
    vectors = exact.dense.encode(["rocket orbit", "stock market"])
    reference = flat_reference(matrix, ids, vectors, 20)
    found = exact.dense.search_vectors(vectors, [[0, 1], [0, 1]], 20)
    assert [list(zip(f.doc_ids, f.scores, strict=True)) for f in found] == reference
    assert all(f.vectors_scored == len(ids) for f in found)
    partial = SelectiveSearcher.open(out, retriever="dense").dense.search_vectors(vectors, [[0, 1], [0, 1]], 20)
    assert all(0 < f.vectors_scored < len(ids) for f in partial)  # nprobe 2 of 4 lists


def test_dense_eval_rows_report_vectors_scored(dense_index: Path, beir: Path) -> None:
    from selectsearch.evaluation import evaluate

    searcher = SelectiveSearcher.open(dense_index, retriever="dense")
    rows = evaluate(searcher, load_queries(beir), load_qrels(beir, split="test"), ["all", "centroid@1:2"],
                    ["nDCG@10"], k=20)
    assert [r["route"] for r in rows] == ["all", "centroid@1", "centroid@2"]
    assert all(r["retriever"] == "dense" for r in rows)
    assert rows[0]["cost"]["fraction_vectors_scored"] == pytest.approx(1.0)
    assert rows[1]["cost"]["vectors_scored"] <= rows[2]["cost"]["vectors_scored"]
    assert rows[0]["metrics"]["overlap@10"] == pytest.approx(1.0)


def test_query_vector_memo_is_bounded_and_reports_encoding_time(dense_index: Path) -> None:
    dense = SelectiveSearcher.open(dense_index, retriever="dense").dense
    dense.query_cache_size = 0  # nothing kept: every call encodes
    vectors, ms = dense.encode_timed(["rocket orbit", "stock market", "rocket orbit"])
    assert vectors.shape == (3, 32) and len(ms) == 3 and (ms > 0).all()
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert not dense._query_cache
    dense.query_cache_size = 10
    first = dense.encode_timed(["cell protein"])
    again = dense.encode_timed(["cell protein"])
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1][0] == again[1][0]  # a memoised vector reports its original encoding time
