"""Fixtures for the MICO tests: a planted-topic collection with logs and a tiny random encoder."""

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


def make_collection(seed: int = 0, docs_per_topic: int = 40, queries_per_topic: int = 40) -> dict[str, object]:
    """Documents, queries and click pairs with planted topics (query and clicked doc share a topic)."""
    rng = random.Random(seed)
    docs, queries, qrels = [], {}, {}
    for topic, words in TOPICS.items():
        for i in range(docs_per_topic):
            body = [rng.choice(words) if rng.random() < 0.8 else rng.choice(COMMON) for _ in range(rng.randint(6, 14))]
            docs.append({"_id": f"{topic}-{i}", "title": "", "text": " ".join(body)})
        for i in range(queries_per_topic):
            qid = f"q-{topic}-{i}"
            queries[qid] = " ".join(rng.sample(words, 2))
            qrels[qid] = {f"{topic}-{j}": 1 for j in rng.sample(range(docs_per_topic), 2)}
    rng.shuffle(docs)
    return {"docs": docs, "queries": queries, "qrels": qrels}


def write_beir(folder: Path, collection: dict[str, object]) -> Path:
    """A BEIR folder with ``train`` and ``test`` qrels (queries split by parity)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for d in collection["docs"]:  # type: ignore[attr-defined]
            f.write(json.dumps(d) + "\n")
    with (folder / "queries.jsonl").open("w") as f:
        for qid, text in collection["queries"].items():  # type: ignore[attr-defined]
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    qrels: dict[str, dict[str, int]] = collection["qrels"]  # type: ignore[assignment]
    for split, parity in (("train", 0), ("test", 1)):
        with (folder / "qrels" / f"{split}.tsv").open("w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for n, (qid, rels) in enumerate(qrels.items()):
                if n % 2 == parity or (split == "train" and n % 4 == 1):
                    for doc_id, rel in rels.items():
                        f.write(f"{qid}\t{doc_id}\t{rel}\n")
    return folder


@pytest.fixture(scope="session")
def beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_beir(tmp_path_factory.mktemp("mico") / "planted", make_collection())


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-initialised BERT saved as a local model folder (packaged tokenizer)."""
    from selectsearch.models.encoder import tiny_encoder

    tokenizer, model = tiny_encoder(hidden_size=32, layers=1, heads=2, seed=0)
    folder = tmp_path_factory.mktemp("tiny-encoder")
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Embedding caches go to a temporary folder, never to the user's cache or the working tree."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SELECTSEARCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield
