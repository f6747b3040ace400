"""Build real Lucene shard indexes of a tiny planted-topic corpus and check the properties
selective search relies on: every document in exactly one shard, `all` equals exhaustive
search, scores independent of which shards are searched, deterministic builds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selectsearch.data import open_corpus
from selectsearch.index.build import BuildConfig, build_index
from selectsearch.index.manifest import read_manifest
from selectsearch.index.sharded import ShardedIndex
from selectsearch.search import SelectiveSearcher

from .conftest import TOPICS, make_docs

QUERIES = {"q1": "rocket orbit", "q2": "flour butter bake", "q3": "stock market bank", "q4": "gene protein study",
           "q5": "the new report about people"}


def _run(searcher: SelectiveSearcher, k: int = 200) -> dict[str, list[tuple[str, float]]]:
    return {q: [(h.doc_id, h.score) for h in r.hits] for q, r in searcher.batch_search(QUERIES, k=k).items()}


def test_every_document_in_exactly_one_shard(tiny_index: Path, tiny_beir: Path) -> None:
    index = ShardedIndex.open(tiny_index)
    seen: list[str] = []
    for s in range(index.n_shards):
        seen.extend(index.shard_doc_ids(s))
    corpus_ids = [d.doc_id for d in open_corpus(tiny_beir)]
    assert sorted(seen) == sorted(corpus_ids) and len(set(seen)) == len(seen)
    assert index.manifest.partition.sizes == [len(index.shard_doc_ids(s)) for s in range(index.n_shards)]
    # the document store returns each document's text
    doc = index.doc(corpus_ids[0])
    assert doc["id"] == corpus_ids[0] and doc["contents"]


def test_all_equals_single_index_search(tiny_index: Path, tiny_beir: Path, tmp_path: Path) -> None:
    single = build_index(open_corpus(tiny_beir), tmp_path / "k1", BuildConfig(n_shards=1, partitioner="random",
                                                                             threads=1))
    sharded_run = _run(SelectiveSearcher.open(tiny_index, route="all"))
    single_run = _run(SelectiveSearcher.open(single, route="all"))
    assert sharded_run == single_run
    assert all(len(hits) > 0 for hits in sharded_run.values())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subset=st.sets(st.integers(0, 3), min_size=1))
def test_score_independent_of_shards_searched(tiny_index: Path, subset: set[int]) -> None:
    base = SelectiveSearcher.open(tiny_index, route="all")
    everything = _run(base)
    index = base.index
    lucene = base.lucene
    for qid, text in QUERIES.items():
        docids, scores = lucene.search(text, 500, sorted(subset))
        ids = index.global_doc_ids[docids]
        assert set(index.global_shard_ids[docids].tolist()) <= subset
        full = dict(everything[qid])
        for doc_id, score in zip(ids.tolist(), scores.tolist(), strict=True):
            assert full[doc_id] == pytest.approx(score, abs=0)
        # and nothing of the subset that matches is missing
        expected = {d for d, _ in everything[qid] if index.shard_of_doc[d] in subset}
        assert set(ids.tolist()) == expected


def test_routing_is_nested_and_recall_never_falls(tiny_index: Path, tiny_beir: Path) -> None:
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.evaluation import evaluate

    base = SelectiveSearcher.open(tiny_index, route="all")
    queries = load_queries(tiny_beir, split="test")
    qrels = load_qrels(tiny_beir, split="test")
    for route in ("centroid", "random", "oracle"):
        rows = evaluate(base, queries, qrels, [f"{route}@1:4"], ["R@1000"], k=1000)
        recalls = [r["metrics"]["R@1000"] for r in rows]
        assert recalls == sorted(recalls), (route, recalls)
        assert [r["cost"]["shards_searched"] for r in rows] == [1, 2, 3, 4]
        router = base.with_route(f"{route}@1", qrels=qrels).router
        from selectsearch.types import Query

        qs = [Query(q, t) for q, t in queries.items()]
        for m in range(1, 4):
            for a, b in zip(router.select(qs, m), router.select(qs, m + 1), strict=True):
                assert set(a) <= set(b)
    all_row = evaluate(base, queries, qrels, ["all"], ["R@1000"])[0]
    assert all_row["metrics"]["R@1000"] == rows[-1]["metrics"]["R@1000"]


def test_centroid_routes_topical_queries_to_their_topic(tiny_index: Path, tiny_beir: Path) -> None:
    searcher = SelectiveSearcher.open(tiny_index, route="centroid@1")
    for topic, words in TOPICS.items():
        hits = searcher.search(" ".join(words[:4]), k=5)
        assert hits and all(h.doc_id.startswith(topic) for h in hits)


def test_trace_reports_shards_and_cost(tiny_index: Path) -> None:
    searcher = SelectiveSearcher.open(tiny_index, route="centroid@2")
    result = searcher.batch_search({"a": "rocket"}, k=3)["a"]
    trace = result.trace
    assert len(trace.shards) == 2 and trace.route == "centroid@2"
    assert trace.docs_scored == int(searcher.index.shard_sizes[trace.shards].sum())
    assert {"route", "search", "merge"} <= set(trace.timings_ms)
    assert all(h.shard_id in trace.shards for h in result.hits)
    json.dumps(trace.to_json())


def test_manifest_round_trips(tiny_index: Path) -> None:
    manifest = read_manifest(tiny_index)
    again = json.loads(json.dumps(manifest))
    assert again == manifest
    assert manifest["corpus"]["n_docs"] == sum(s["n_docs"] for s in manifest["shards"])
    assert manifest["format_version"] == 1 and manifest["partition"]["kind"] == "kmeans-lexical"


def test_same_seed_builds_identical_index(tiny_beir: Path, tmp_path: Path) -> None:
    config = BuildConfig(n_shards=3, partitioner="kmeans", seed=7, threads=2, partitioner_options={"sample_size": 500})
    a = build_index(open_corpus(tiny_beir), tmp_path / "a", config)
    b = build_index(open_corpus(tiny_beir), tmp_path / "b", config)
    ia, ib = ShardedIndex.open(a), ShardedIndex.open(b)
    for s in range(3):
        assert ia.shard_doc_ids(s) == ib.shard_doc_ids(s)
        for name in ("docs/docs.jsonl",):
            assert (ia.shard_path(s) / name).read_bytes() == (ib.shard_path(s) / name).read_bytes()
    assert np.array_equal(np.load(a / "partition" / "centroids.npy"), np.load(b / "partition" / "centroids.npy"))
    strip = ("created", "build_seconds", "command")
    ma = {k: v for k, v in ia.manifest.to_json().items() if k not in strip}
    mb = {k: v for k, v in ib.manifest.to_json().items() if k not in strip}
    ma["partition"].pop("fit_seconds")
    mb["partition"].pop("fit_seconds")
    assert ma == mb
    assert _run(SelectiveSearcher.open(a, route="centroid@2")) == _run(SelectiveSearcher.open(b, route="centroid@2"))


def test_random_partition_and_dedupe(tmp_path: Path) -> None:
    from .conftest import write_beir

    docs = make_docs(5)
    docs.append({**docs[0], "text": "a later copy"})
    folder = write_beir(tmp_path / "dup", docs)
    from selectsearch.data import DuplicateDocIdError

    with pytest.raises(DuplicateDocIdError, match=r"corpus.jsonl:21: duplicate doc id .*first at .*corpus.jsonl:1"):
        build_index(open_corpus(folder), tmp_path / "x", BuildConfig(n_shards=2, partitioner="random", threads=1))
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()
    out = build_index(open_corpus(folder), tmp_path / "last", BuildConfig(n_shards=2, partitioner="random",
                                                                          threads=1, dedupe="last"))
    index = ShardedIndex.open(out)
    assert index.n_docs == 20 and index.doc(docs[0]["_id"])["contents"].endswith("a later copy")
    sizes = index.manifest.partition.sizes
    assert abs(sizes[0] - sizes[1]) <= 1


def test_annotators_add_their_output_to_traces(tiny_index: Path) -> None:
    class Topic:
        """A stand-in query classifier: labels a query by the topic its words come from."""

        def annotate(self, queries: list[str], traces: list) -> None:  # type: ignore[type-arg]
            for q, trace in zip(queries, traces, strict=True):
                trace.extra["topic"] = next((t for t, w in TOPICS.items() if set(q.split()) & set(w)), "none")
                trace.timings_ms["topic"] = 0.0

    searcher = SelectiveSearcher.open(tiny_index, route="centroid@1")
    searcher.annotators = (Topic(),)
    out = searcher.batch_search({"a": "rocket orbit", "b": "bank loan"}, k=3)
    assert out["a"].trace.extra["topic"] == "space" and out["b"].trace.extra["topic"] == "finance"
    assert "topic" in out["a"].trace.to_json()["extra"]
    assert searcher.with_route("all").annotators == searcher.annotators
