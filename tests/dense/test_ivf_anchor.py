"""The FAISS-IVF anchor: exact with every list probed; with k-means lists it IS centroid routing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selectsearch.cluster import spherical_kmeans
from selectsearch.data import load_queries, open_corpus
from selectsearch.dense.config import DenseConfig
from selectsearch.dense.ivf import IvfAnchor
from selectsearch.encode import EmbeddingCache
from selectsearch.index.build import BuildConfig, build_index
from selectsearch.search import SelectiveSearcher


@pytest.fixture(scope="module")
def dense_kmeans_index(tmp_path_factory: pytest.TempPathFactory, beir: Path, tiny_model: Path) -> Path:
    out = tmp_path_factory.mktemp("ivf") / "dense-k4"
    config = BuildConfig(n_shards=4, partitioner="kmeans", space="dense", threads=1,
                         partitioner_options={"model": str(tiny_model), "max_length": 32},
                         backends=("lucene", "faiss"), dense=DenseConfig(model=str(tiny_model), max_length=32))
    return build_index(open_corpus(beir), out, config)


def test_partition_and_faiss_share_one_embedding_cache(dense_kmeans_index: Path) -> None:
    searcher = SelectiveSearcher.open(dense_kmeans_index, retriever="dense")
    manifest = searcher.index.manifest
    assert manifest.partition.embedding_cache == manifest.dense.embedding_cache


def test_ivf_with_kmeans_lists_equals_centroid_routed_dense(dense_kmeans_index: Path, beir: Path) -> None:
    searcher = SelectiveSearcher.open(dense_kmeans_index, route="all", retriever="dense")
    index = searcher.index
    matrix = np.asarray(EmbeddingCache(Path(index.manifest.dense.embedding_cache)).load())
    ids = [d.doc_id for d in open_corpus(beir)]
    # trained the partitioner's way, the quantizer's centroids ARE the partition's centroids
    centroids = spherical_kmeans(matrix, 4, seed=0, train_size=100_000)
    np.testing.assert_allclose(centroids, index.partition.query_space().centroids, atol=1e-6)
    anchor = IvfAnchor.build(matrix, ids, 4, seed=0)
    queries = load_queries(beir)
    vectors = searcher.dense.encode(list(queries.values()))
    exhaustive = searcher.batch_search(queries, k=15)
    full = anchor.search(vectors, k=15, nprobe=4)
    for qid, hits in zip(queries, full, strict=True):
        assert list(zip(hits.doc_ids, hits.scores, strict=True)) == [(h.doc_id, h.score) for h in exhaustive[qid].hits]
        assert hits.vectors_scored == anchor.n_docs
    for m in (1, 2, 3):
        routed = searcher.with_route(f"centroid@{m}").batch_search(queries, k=15)
        probed = anchor.search(vectors, k=15, nprobe=m)
        for qid, hits in zip(queries, probed, strict=True):
            assert hits.doc_ids == [h.doc_id for h in routed[qid].hits]
            assert hits.vectors_scored == routed[qid].trace.docs_scored
            assert set(hits.shards) <= set(routed[qid].trace.shards)


def test_anchor_save_load_and_cost_grows_with_nprobe(dense_kmeans_index: Path, beir: Path, tmp_path: Path) -> None:
    index = SelectiveSearcher.open(dense_kmeans_index, retriever="dense").index
    matrix = np.asarray(EmbeddingCache(Path(index.manifest.dense.embedding_cache)).load())
    ids = [d.doc_id for d in open_corpus(beir)]
    anchor = IvfAnchor.build(matrix, ids, 4, seed=3)
    anchor.save(tmp_path / "anchor")
    loaded = IvfAnchor.load(tmp_path / "anchor")
    vectors = matrix[:5]
    costs = [np.mean([h.vectors_scored for h in loaded.search(vectors, 10, nprobe=p)]) for p in (1, 2, 3, 4)]
    assert costs == sorted(costs) and costs[-1] == len(ids)
    assert [h.doc_ids for h in loaded.search(vectors, 10, 2)] == [h.doc_ids for h in anchor.search(vectors, 10, 2)]
    # a document is its own nearest neighbour when its list is probed
    assert [h.doc_ids[0] for h in loaded.search(vectors, 1, 4)] == ids[:5]


def test_centroid_routed_dense_encodes_each_query_once(dense_kmeans_index: Path, beir: Path) -> None:
    queries = load_queries(beir)
    routed = SelectiveSearcher.open(dense_kmeans_index, route="centroid@2", retriever="dense")
    calls: list[int] = []
    encode = routed.dense.encoder().encode
    routed.dense.encoder().encode = lambda texts, **kw: calls.append(len(texts)) or encode(texts, **kw)  # type: ignore[method-assign]
    results = routed.batch_search(queries, k=10)
    assert calls == []  # the retriever reused the router's vectors
    traces = [r.trace for r in results.values()]
    assert all(t.extra["query_vector"] == "router" and t.timings_ms["encode"] == 0.0 for t in traces)
    assert all(t.timings_ms["route"] > 0 for t in traces)  # the one encoding is charged to routing

    # the same hits as a retriever that encodes for itself
    fresh = SelectiveSearcher.open(dense_kmeans_index, route="centroid@2", retriever="dense")
    fresh.router.encoded_queries = lambda: None  # type: ignore[method-assign]
    again = fresh.batch_search(queries, k=10)
    for qid, result in results.items():
        assert [h.doc_id for h in result.hits] == [h.doc_id for h in again[qid].hits]
        np.testing.assert_allclose([h.score for h in result.hits], [h.score for h in again[qid].hits], atol=1e-5)
        assert again[qid].trace.extra["query_vector"] == "encoder"
