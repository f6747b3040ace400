"""Fixtures for the reranker and distilled-router tests: a planted-topic BEIR folder with graded
train/test qrels, a 4-shard index of it, a tiny random encoder and a tiny MICO model folder."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("torch")
pytest.importorskip("faiss")

TOPICS = {
    "space": ["rocket", "orbit", "planet", "launch", "satellite", "astronaut", "lunar", "mars"],
    "cooking": ["recipe", "oven", "flour", "sugar", "butter", "bake", "pasta", "garlic"],
    "finance": ["stock", "market", "bond", "interest", "inflation", "dividend", "investor", "bank"],
    "biology": ["cell", "protein", "gene", "enzyme", "mutation", "dna", "tissue", "neuron"],
}
COMMON = ["the", "study", "shows", "new", "report", "about", "many", "people"]
K = 4


def write_collection(folder: Path, seed: int = 0, docs_per_topic: int = 25, queries_per_topic: int = 16) -> Path:
    """BEIR folder: documents with planted topics, two-word queries, graded qrels (2: two query
    words in the doc title, 1: same topic), even queries in ``train``, odd ones in ``test``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    docs, queries, qrels = [], {}, {}
    for topic, words in TOPICS.items():
        titles = {}
        for i in range(docs_per_topic):
            title = " ".join(rng.sample(words, 2))
            body = [rng.choice(words) if rng.random() < 0.7 else rng.choice(COMMON) for _ in range(rng.randint(5, 10))]
            titles[f"{topic}-{i}"] = title
            docs.append({"_id": f"{topic}-{i}", "title": title, "text": " ".join(body)})
        for j in range(queries_per_topic):
            qid = f"q-{topic}-{j}"
            pair = rng.sample(words, 2)
            queries[qid] = " ".join(pair)
            rels = {d: 2 for d, t in titles.items() if set(pair) <= set(t.split())}
            for d in rng.sample(sorted(titles), 3):
                rels.setdefault(d, 1)
            qrels[qid] = rels
    rng.shuffle(docs)
    with (folder / "corpus.jsonl").open("w") as f:
        f.writelines(json.dumps(d) + "\n" for d in docs)
    with (folder / "queries.jsonl").open("w") as f:
        f.writelines(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    (folder / "qrels").mkdir(exist_ok=True)
    for split, parity in (("train", 0), ("test", 1)):
        with (folder / "qrels" / f"{split}.tsv").open("w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for n, (qid, rels) in enumerate(qrels.items()):
                if n % 2 == parity:
                    f.writelines(f"{qid}\t{d}\t{g}\n" for d, g in rels.items())
    return folder


@pytest.fixture(scope="session")
def beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_collection(tmp_path_factory.mktemp("rerank") / "planted")


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory, beir: Path) -> Path:
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("idx") / "planted-r4"
    build_index(open_corpus(beir), out, BuildConfig(n_shards=K, partitioner="random", threads=1))
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-initialised 2-layer BERT saved as a local model folder (packaged tokenizer)."""
    from selectsearch.models.encoder import tiny_encoder

    tokenizer, model = tiny_encoder(hidden_size=32, layers=2, heads=2, seed=0)
    folder = tmp_path_factory.mktemp("tiny-encoder")
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def mico_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A MICO model folder with the tiny encoder and random heads over K clusters."""
    import torch

    from selectsearch.mico.config import MicoConfig
    from selectsearch.mico.heads import ClusterHead, Marginal
    from selectsearch.mico.model import save_model
    from selectsearch.models.encoder import load_encoder

    torch.manual_seed(0)
    tokenizer, encoder = load_encoder(tiny_model_dir)
    config = MicoConfig(n_clusters=K, encoder=str(tiny_model_dir), max_length=32, mode="frozen")
    heads = [ClusterHead(32, K), ClusterHead(32, K)]
    for h in heads:  # sharper than the default init, so routing distributions are not flat
        torch.nn.init.normal_(h.linear.weight, std=3.0)
    folder = tmp_path_factory.mktemp("mico") / "tiny-mico"
    save_model(folder, config=config, dim=32, doc_head=heads[0], query_head=heads[1], marginal=Marginal(K),
               tokenizer=tokenizer, encoder_model=encoder)
    return folder


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Embedding caches go to a temporary folder, never to the user's cache or the working tree."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SELECTSEARCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def router_dir(mico_dir: Path, beir: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A 1-layer distilled router of the tiny MICO model, trained on the train queries."""
    from selectsearch.data import load_queries
    from selectsearch.route.distilled import default_router_config, train_distilled_router

    queries = list(load_queries(beir, split="train").values())
    out = tmp_path_factory.mktemp("router") / "student"
    config = default_router_config(layers=1, epochs=3.0, batch_size=8, lr=1e-3, k_grid=(1, 2, 4))
    student = train_distilled_router(mico_dir, queries, config=config, dev_fraction=0.25, out=out)
    return SimpleNamespace(out=out, student=student, queries=queries)


@pytest.fixture(scope="session")
def models(index_dir: Path, beir: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> SimpleNamespace:
    """A tiny teacher trained end to end, and its ReAugKD student (both saved)."""
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.rerank.candidates import PairConfig, training_pairs
    from selectsearch.rerank.student import StudentConfig, distill_reranker
    from selectsearch.rerank.teacher import CrossEncoderConfig, train_cross_encoder

    root = tmp_path_factory.mktemp("rerank-models")
    queries = load_queries(beir, split="train")
    qrels = load_qrels(beir, split="train")
    pairs_config = PairConfig(depth=20, max_queries=20, bm25_negatives=2, seed=0)
    pairs = training_pairs(index_dir, queries, qrels, pairs_config)
    teacher = train_cross_encoder(pairs, CrossEncoderConfig(encoder=str(tiny_model_dir), max_length=32, steps=60,
                                                            batch_size=16, learning_rate=1e-3))
    teacher_dir = teacher.save(root / "teacher")
    summary = distill_reranker(teacher_dir, index_dir, queries, qrels, pairs_config,
                               StudentConfig(layers=1, unlabelled=2, dev_queries=8, dev_depth=10, epochs=2.0,
                                             batch_size=16, lr=1e-3, max_length=24),
                               out=root / "student")
    return SimpleNamespace(teacher=teacher, teacher_dir=teacher_dir, pairs=pairs, student_dir=root / "student",
                           summary=summary)
