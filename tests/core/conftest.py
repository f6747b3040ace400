"""Fixtures for the core (index/search/route) tests: tiny corpora generated in code."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from selectsearch.data import resolve_data_dir

TOPICS = {
    "space": ["rocket", "orbit", "planet", "launch", "satellite", "astronaut", "lunar", "mars", "telescope", "galaxy"],
    "cooking": ["recipe", "oven", "flour", "sugar", "butter", "bake", "pasta", "garlic", "onion", "saute"],
    "finance": ["stock", "market", "bond", "interest", "inflation", "dividend", "investor", "bank", "loan", "equity"],
    "biology": ["cell", "protein", "gene", "enzyme", "mutation", "dna", "tissue", "neuron", "receptor", "membrane"],
}
COMMON = ["the", "study", "shows", "new", "report", "about", "many", "people", "work", "year", "time"]


def make_docs(n_per_topic: int = 30, seed: int = 0) -> list[dict[str, str]]:
    """Documents with planted topics: ids ``<topic>-<n>``, words mostly from their topic."""
    rng = random.Random(seed)
    docs = []
    for topic, words in TOPICS.items():
        for i in range(n_per_topic):
            body = [rng.choice(words) if rng.random() < 0.7 else rng.choice(COMMON) for _ in range(rng.randint(8, 30))]
            docs.append({"_id": f"{topic}-{i}", "title": f"{topic} note {i}", "text": " ".join(body)})
    rng.shuffle(docs)
    return docs


def write_beir(folder: Path, docs: list[dict[str, str]], queries: dict[str, str] | None = None,
               qrels: dict[str, dict[str, int]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    queries = queries or {f"q-{t}": " ".join(w[:3]) for t, w in TOPICS.items()}
    with (folder / "queries.jsonl").open("w") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    if qrels is None:
        qrels = {f"q-{t}": {d["_id"]: 1 for d in docs if d["_id"].startswith(t)} for t in TOPICS}
    (folder / "qrels").mkdir(exist_ok=True)
    with (folder / "qrels" / "test.tsv").open("w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, rels in qrels.items():
            for doc_id, rel in rels.items():
                f.write(f"{qid}\t{doc_id}\t{rel}\n")
    return folder


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_beir(tmp_path_factory.mktemp("tiny") / "beir", make_docs())


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory: pytest.TempPathFactory, tiny_beir: Path) -> Path:
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("idx") / "tiny-k4"
    build_index(open_corpus(tiny_beir), out, BuildConfig(n_shards=4, partitioner="kmeans", threads=1,
                                                          partitioner_options={"sample_size": 1000}))
    return out


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    path = resolve_data_dir() / "scifact"
    if not (path / "corpus.jsonl").exists():
        pytest.skip(f"SciFact not found at {path}")
    return path
