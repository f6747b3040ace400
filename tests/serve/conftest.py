"""Fixtures for the serving tests: a tiny sharded index generated in code, and a local Ray
cluster (a head and two worker nodes) on loopback.

Ray uses the machine's non-loopback address for its own traffic, so the cluster tests run only
inside a network namespace that has nothing but loopback (``make test`` does this with
``unshare -n``); elsewhere they are skipped with the command to run them. Set
``SELECTSEARCH_RAY_TESTS=1`` to run them anyway.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

TOPICS = {
    "space": ["rocket", "orbit", "planet", "launch", "satellite", "astronaut", "lunar", "mars", "telescope"],
    "cooking": ["recipe", "oven", "flour", "sugar", "butter", "bake", "pasta", "garlic", "onion"],
    "finance": ["stock", "market", "bond", "interest", "inflation", "dividend", "investor", "bank", "loan"],
    "biology": ["cell", "protein", "gene", "enzyme", "mutation", "dna", "tissue", "neuron", "receptor"],
    "music": ["guitar", "piano", "melody", "chord", "rhythm", "concert", "album", "singer", "violin"],
    "sport": ["football", "goal", "match", "league", "coach", "player", "score", "tennis", "stadium"],
}
COMMON = ["the", "study", "shows", "new", "report", "about", "many", "people", "work", "year"]

#: queries with words of one topic, of two topics, common words only, and repeated words (score ties)
QUERIES = {
    "q1": "rocket orbit", "q2": "flour butter bake", "q3": "stock market bank", "q4": "gene protein study",
    "q5": "the new report about people", "q6": "guitar football", "q7": "planet", "q8": "melody melody chord",
    "q9": "coach player score goal", "q10": "dna receptor mars",
}


def _docs(n_per_topic: int = 25, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    docs = []
    for topic, words in TOPICS.items():
        for i in range(n_per_topic):
            body = [rng.choice(words) if rng.random() < 0.7 else rng.choice(COMMON) for _ in range(rng.randint(6, 24))]
            docs.append({"_id": f"{topic}-{i}", "title": f"{topic} {i}", "text": " ".join(body)})
    # exact duplicates in different topics' id ranges: equal scores, so ties must break by doc id
    docs += [{"_id": f"dup-{i}", "title": "", "text": "planet planet orbit"} for i in range(4)]
    rng.shuffle(docs)
    return docs


@pytest.fixture(scope="session")
def serve_beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serve") / "beir"
    folder.mkdir()
    docs = _docs()
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    (folder / "qrels").mkdir()
    lines = ["query-id\tcorpus-id\tscore"]
    for qid, text in QUERIES.items():
        topics = {t for t, words in TOPICS.items() if any(w in text.split() for w in words)}
        lines += [f"{qid}\t{d['_id']}\t1" for d in docs if d["_id"].split("-")[0] in topics]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session")
def serve_index(tmp_path_factory: pytest.TempPathFactory, serve_beir: Path) -> Path:
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("serve-idx") / "tiny-k6"
    build_index(open_corpus(serve_beir), out, BuildConfig(n_shards=6, partitioner="kmeans", threads=1,
                                                          partitioner_options={"sample_size": 1000}))
    return out


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium for the search page's browser tests: installed when missing (root,
    apt-get, outside a loopback-only namespace), else the test is skipped saying why."""
    from ._browser import ensure_chromium

    path, reason = ensure_chromium()
    if path is None:
        pytest.skip(reason)
    return path
