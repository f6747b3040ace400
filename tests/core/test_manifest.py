"""The typed manifest reads and writes the same JSON; old manifests load with the values builds used."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from selectsearch.errors import NotAnIndexError
from selectsearch.index.manifest import (
    FORMAT,
    DenseSection,
    LuceneSection,
    Manifest,
    ShardEntry,
    read_manifest,
)
from selectsearch.lucene.params import DEFAULT_ANALYZER_CLASS, DEFAULT_BM25, Bm25

#: the shape of a manifest as builds before the typed Manifest wrote it (keys in their order)
WRITTEN = {
    "format": FORMAT,
    "format_version": 1,
    "created": "2026-01-01T00:00:00Z",
    "command": ["selectsearch", "index", "scifact", "--out", "x"],
    "versions": {"python": "3.11.2"},
    "corpus": {"sources": ["/d/scifact"], "formats": ["beir"], "files": [{"path": "/d/c.jsonl", "format": "beir"}],
               "n_docs": 6, "fingerprint": "ab" * 32, "duplicates_dropped": 0},
    "build": {"n_shards": 2, "partitioner": "kmeans", "seed": 0},
    "partition": {"kind": "kmeans-lexical", "n_shards": 2, "seed": 0, "sizes": [4, 2],
                  "balance": {"max_over_mean": 1.333}, "fit_seconds": 0.01},
    "lucene": {"analyzer": "DefaultEnglishAnalyzer (Porter, Lucene stop words)", "field": "contents",
               "contents": "title + newline + text", "similarity": "BM25", "bm25": {"k1": 0.9, "b": 0.4},
               "positions": True, "docvectors": True},
    "backends": ["lucene"],
    "shards": [{"shard_id": 0, "path": "shards/000", "n_docs": 4, "backends": ["lucene"]},
               {"shard_id": 1, "path": "shards/001", "n_docs": 2, "backends": ["lucene"]}],
    "checksums": {"shards/000/doc_ids.txt": {"sha256": "00", "bytes": 10}},
    "build_seconds": 1.5,
}


def test_round_trip_is_exact_keys_and_order_included() -> None:
    manifest = Manifest.from_json(WRITTEN)
    assert json.dumps(manifest.to_json()) == json.dumps(WRITTEN)
    assert manifest.partition is not None and manifest.partition.kind == "kmeans-lexical"
    assert manifest.partition.extra == {"n_shards": 2, "seed": 0}  # the partitioner's own keys
    assert [s.n_docs for s in manifest.shards] == [4, 2] and manifest.shards[1].path == "shards/001"
    assert manifest.bm25 == DEFAULT_BM25 and manifest.analyzer_class == DEFAULT_ANALYZER_CLASS


def test_old_manifest_loads_with_the_values_builds_used() -> None:
    old = {k: v for k, v in WRITTEN.items() if k not in ("backends", "checksums", "versions")}
    old["lucene"] = {k: v for k, v in WRITTEN["lucene"].items() if k not in ("bm25", "analyzer")}
    old["shards"] = [{k: v for k, v in s.items() if k != "backends"} for s in WRITTEN["shards"]]
    manifest = Manifest.from_json(old)
    assert manifest.bm25 == Bm25(0.9, 0.4) and manifest.analyzer_class == "io.anserini.analysis.DefaultEnglishAnalyzer"
    assert manifest.backends is None and manifest.checksums == {} and manifest.versions is None
    assert manifest.shards[0].backends == []
    assert manifest.to_json() == old  # nothing added on the way back
    no_lucene = Manifest.from_json({k: v for k, v in old.items() if k != "lucene"})
    assert no_lucene.lucene is None and no_lucene.bm25 == DEFAULT_BM25


def test_recorded_bm25_and_unknown_keys_are_kept() -> None:
    data = json.loads(json.dumps(WRITTEN))
    data["lucene"]["bm25"] = {"k1": 1.2, "b": 0.75}
    data["future_section"] = {"x": 1}
    data["created"] = None  # an explicit null is written back as it was
    manifest = Manifest.from_json(data)
    assert manifest.bm25 == Bm25(1.2, 0.75)
    assert manifest.extra["future_section"] == {"x": 1}
    assert json.dumps(manifest.to_json()) == json.dumps(data)


def test_changed_sections_are_written_and_sections_made_in_code_write_every_field() -> None:
    manifest = Manifest.from_json(WRITTEN)
    dense = DenseSection(model="m", dim=8)
    with_dense = replace(manifest, dense=dense, shards=(*manifest.shards[:1],
                                                        replace(manifest.shards[1], faiss={"type": "Flat"})))
    out = with_dense.to_json()
    assert out["dense"] == {"backend": "faiss", "model": "m", "max_length": 256, "dim": 8, "metric": "inner_product",
                            "config": {}}
    assert out["shards"][1]["faiss"] == {"type": "Flat"} and "faiss" not in out["shards"][0]
    assert list(out)[-1] == "dense"  # a new key goes after the ones read
    assert LuceneSection().to_json() == WRITTEN["lucene"]
    assert ShardEntry(shard_id=3, path="shards/003", n_docs=0).to_json() == {
        "shard_id": 3, "path": "shards/003", "n_docs": 0, "backends": []}


def test_sections_do_not_share_state_with_their_json() -> None:
    data = json.loads(json.dumps(WRITTEN))
    manifest = Manifest.from_json(data)
    data["partition"]["sizes"].append(99)
    manifest.to_json()["partition"]["sizes"].append(98)
    assert manifest.partition is not None and manifest.partition.sizes == [4, 2]


def test_write_then_read(tmp_path: Path) -> None:
    Manifest.from_json(WRITTEN).write(tmp_path)
    assert read_manifest(tmp_path) == WRITTEN
    assert Manifest.read(tmp_path) == Manifest.from_json(WRITTEN)
    with pytest.raises(NotAnIndexError):
        Manifest.read(tmp_path / "missing")
