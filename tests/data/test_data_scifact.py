"""Fast integration tests on the real SciFact folder (skipped when the shared data is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from selectsearch.data import load_qrels, load_queries, open_corpus, splits


def test_scifact_corpus(scifact_dir: Path) -> None:
    corpus = open_corpus(scifact_dir)
    ids = [doc.doc_id for doc in corpus.iter_checked()]
    assert len(ids) == len(set(ids)) == 5183
    first = next(iter(corpus))
    assert first.doc_id == "4983" and first.title.startswith("Microstructural development")
    assert corpus.describe()["formats"] == ["beir"]


@pytest.mark.parametrize(
    ("split", "n_queries", "n_qrels"), [("test", 300, 339), ("train", 809, 919)]
)
def test_scifact_queries_and_qrels(
    scifact_dir: Path, split: str, n_queries: int, n_qrels: int
) -> None:
    assert splits(scifact_dir) == ["test", "train"]
    queries = load_queries(scifact_dir, split=split)
    qrels = load_qrels(scifact_dir, split=split)
    assert len(queries) == n_queries
    assert sum(len(d) for d in qrels.values()) == n_qrels
    assert set(qrels) == set(queries)
    assert all(text for text in queries.values())


def test_scifact_qrels_point_into_corpus(scifact_dir: Path) -> None:
    ids = {doc.doc_id for doc in open_corpus(scifact_dir)}
    qrels = load_qrels(scifact_dir, split="test")
    assert all(doc_id in ids for docs in qrels.values() for doc_id in docs)


def test_scifact_plus_wikipedia_sources(scifact_dir: Path, wikipedia_dir: Path) -> None:
    corpus = open_corpus([scifact_dir, wikipedia_dir])
    described = corpus.describe()
    assert described["formats"] == ["beir", "folder"]
    assert [Path(f["path"]).name for f in described["files"]] == [
        "corpus.jsonl",
        "passages-00.jsonl.gz",
        "passages-01.jsonl.gz",
        "passages-02.jsonl.gz",
        "passages-03.jsonl.gz",
    ]
    # stream just past the SciFact documents into the first passage file
    for i, (doc, where, line) in enumerate(corpus.iter_with_positions()):
        if i == 5183:
            assert doc.doc_id.startswith("wiki") and where.endswith("passages-00.jsonl.gz")
            assert line == 1
            break
