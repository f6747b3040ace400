"""Tiny collections for the bad-input tests of the search/eval/tune/plot side (issue 17).

Import the fixtures into a test module (``from .cli_input_fixtures import beir8, index8``); the
data are generated in code under pytest's temporary folders, never in the working tree.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

TOPICS = {
    "space": ["rocket", "orbit", "planet", "launch", "satellite", "astronaut", "lunar", "mars", "telescope", "galaxy"],
    "cooking": ["recipe", "oven", "flour", "sugar", "butter", "bake", "pasta", "garlic", "onion", "saute"],
    "finance": ["stock", "market", "bond", "interest", "inflation", "dividend", "investor", "bank", "loan", "equity"],
    "biology": ["cell", "protein", "gene", "enzyme", "mutation", "dna", "tissue", "neuron", "receptor", "membrane"],
}
COMMON = ["the", "study", "shows", "new", "report", "about", "many", "people", "work", "year", "time"]
QUERIES = {f"q-{t}": " ".join(w[:3]) for t, w in TOPICS.items()}


def make_docs(n_per_topic: int = 30, seed: int = 0) -> list[dict[str, str]]:
    """Documents with planted topics: ids ``<topic>-<n>``."""
    rng = random.Random(seed)
    docs = []
    for topic, words in TOPICS.items():
        for i in range(n_per_topic):
            body = [rng.choice(words) if rng.random() < 0.7 else rng.choice(COMMON) for _ in range(rng.randint(8, 30))]
            docs.append({"_id": f"{topic}-{i}", "title": f"{topic} note {i}", "text": " ".join(body)})
    rng.shuffle(docs)
    return docs


def write_beir(folder: Path, docs: list[dict[str, str]]) -> Path:
    """A BEIR folder: corpus, the four topical queries, test qrels = every document of the topic."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    with (folder / "queries.jsonl").open("w") as f:
        for qid, text in QUERIES.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    for split in ("test", "train"):
        with (folder / "qrels" / f"{split}.tsv").open("w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for t in TOPICS:
                for d in docs:
                    if d["_id"].startswith(t):
                        f.write(f"q-{t}\t{d['_id']}\t1\n")
    return folder


@pytest.fixture(scope="session")
def beir8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-document BEIR folder with four judged queries (test and train splits)."""
    return write_beir(tmp_path_factory.mktemp("cli-input") / "beir", make_docs())


@pytest.fixture(scope="session")
def index8(tmp_path_factory: pytest.TempPathFactory, beir8: Path) -> Path:
    """A lexical k-means index of :func:`beir8` with 8 shards (read-only: copy it to change it)."""
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("cli-input-idx") / "tiny-k8"
    build_index(open_corpus(beir8), out, BuildConfig(n_shards=8, partitioner="kmeans", threads=1,
                                                     partitioner_options={"sample_size": 1000}))
    return out


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Embedding caches (knn's logged queries) go to a temporary folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SELECTSEARCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def last_err(capsys: pytest.CaptureFixture[str]) -> str:
    """The last line written to stderr (the CLI's one-line error)."""
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""
