"""Fixtures for the dense tests: a planted-topic BEIR folder, tiny random encoders, a private cache."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

TOPICS = {
    "space": ["rocket", "orbit", "planet", "launch", "satellite", "astronaut", "lunar", "mars", "telescope", "galaxy"],
    "cooking": ["recipe", "oven", "flour", "sugar", "butter", "bake", "pasta", "garlic", "onion", "kitchen"],
    "finance": ["stock", "market", "bond", "interest", "inflation", "dividend", "investor", "bank", "loan", "equity"],
    "biology": ["cell", "protein", "gene", "enzyme", "mutation", "dna", "tissue", "neuron", "receptor", "membrane"],
}
COMMON = ["the", "study", "shows", "new", "report", "about", "many", "people", "work", "year"]


def make_beir(folder: Path, n_per_topic: int = 20, seed: int = 0) -> Path:
    """Documents ``<topic>-<i>`` (shuffled), one query per topic judged on its topic's documents."""
    rng = random.Random(seed)
    docs = []
    for topic, words in TOPICS.items():
        for i in range(n_per_topic):
            body = [rng.choice(words) if rng.random() < 0.7 else rng.choice(COMMON) for _ in range(rng.randint(6, 20))]
            docs.append({"_id": f"{topic}-{i}", "title": f"{topic} note {i}", "text": " ".join(body)})
    rng.shuffle(docs)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    with (folder / "queries.jsonl").open("w") as f:
        for topic, words in TOPICS.items():
            f.write(json.dumps({"_id": f"q-{topic}", "text": " ".join(words[:3])}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    with (folder / "qrels" / "test.tsv").open("w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for topic in TOPICS:
            for d in docs:
                if d["_id"].startswith(topic):
                    f.write(f"q-{topic}\t{d['_id']}\t1\n")
    return folder


def save_tiny_encoder(folder: Path, hidden_size: int = 32, seed: int = 0) -> Path:
    """A tiny random BERT saved as a plain transformers folder (packaged tokenizer)."""
    from selectsearch.models.encoder import tiny_encoder

    tokenizer, model = tiny_encoder(hidden_size=hidden_size, layers=1, heads=2, seed=seed)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_beir(tmp_path_factory.mktemp("dense") / "planted")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder-32"))


@pytest.fixture(scope="session")
def tiny_model_16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder-16"), hidden_size=16, seed=1)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Embedding caches go to a temporary folder, never to the user's cache or the working tree."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SELECTSEARCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def dense_index(tmp_path_factory: pytest.TempPathFactory, beir: Path, tiny_model: Path) -> Path:
    """Lexical k-means, 4 shards, Lucene + FAISS (Flat) with the tiny 32-d encoder."""
    from selectsearch.data import open_corpus
    from selectsearch.dense.config import DenseConfig
    from selectsearch.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("idx") / "planted-k4"
    config = BuildConfig(n_shards=4, partitioner="kmeans", threads=1, partitioner_options={"sample_size": 1000},
                         backends=("lucene", "faiss"), dense=DenseConfig(model=str(tiny_model), max_length=32))
    return build_index(open_corpus(beir), out, config)
