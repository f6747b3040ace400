"""Dense k-means partitioning with the packaged all-MiniLM-L6-v2 and the embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from selectsearch.data import open_corpus
from selectsearch.index.build import BuildConfig, build_index
from selectsearch.search import SelectiveSearcher

from .conftest import TOPICS


def test_dense_kmeans_build_route_and_cache_reuse(tiny_beir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    config = BuildConfig(n_shards=4, partitioner="kmeans", space="dense", threads=1,
                         partitioner_options={"cache_dir": str(cache), "max_length": 64})
    out = build_index(open_corpus(tiny_beir), tmp_path / "dense", config)
    [entry] = list(cache.iterdir())
    matrix = entry / "embeddings.f32"
    stamp = matrix.stat().st_mtime_ns
    embeddings = np.memmap(matrix, dtype=np.float32, mode="r").reshape(120, -1)
    assert embeddings.shape == (120, 384)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)
    # a second build of the same corpus reuses the cached embeddings
    build_index(open_corpus(tiny_beir), tmp_path / "dense2", config)
    assert matrix.stat().st_mtime_ns == stamp
    searcher = SelectiveSearcher.open(out, route="centroid@1")
    assert searcher.index.manifest.partition.kind == "kmeans-dense"
    correct = 0
    for topic, words in TOPICS.items():
        hits = searcher.search(" ".join(words[:4]), k=5)
        correct += bool(hits) and sum(h.doc_id.startswith(topic) for h in hits) >= 4
    assert correct >= 3
