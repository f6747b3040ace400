"""Fixtures for the benchmark tests: a tiny data root generated in code and tiny indexes on it.

The data root (what ``SELECTSEARCH_DATA`` points the entry scripts at) holds a planted-topic
BEIR folder with ``train`` and ``test`` qrels under the names the scripts read (``beir``,
``scifact``, ``wikipedia``), a tiny sentence-classification task (``mr``) and a tiny GLUE SST-2. Every script runs
as a subprocess, as the commands in ``eval/results/*/README.md`` run it, with this data root, a
private embedding cache and one thread.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOPICS = {
    "space": ["rocket", "orbit", "planet", "launch", "satellite", "astronaut", "lunar", "mars"],
    "cooking": ["recipe", "oven", "flour", "sugar", "butter", "bake", "pasta", "garlic"],
    "finance": ["stock", "market", "bond", "interest", "inflation", "dividend", "investor", "bank"],
    "biology": ["cell", "protein", "gene", "enzyme", "mutation", "dna", "tissue", "neuron"],
}
COMMON = ["the", "study", "shows", "new", "report", "about", "many", "people"]


def write_collection(folder: Path, *, docs_per_topic: int = 12, queries_per_topic: int = 8, seed: int = 0) -> Path:
    """A BEIR folder: planted-topic documents, queries split by parity into ``train`` and ``test`` qrels."""
    rng = random.Random(seed)
    docs, queries, qrels = [], {}, {}
    for topic, words in TOPICS.items():
        for i in range(docs_per_topic):
            body = [rng.choice(words) if rng.random() < 0.75 else rng.choice(COMMON) for _ in range(rng.randint(6, 14))]
            docs.append({"_id": f"{topic}-{i}", "title": f"{topic} {i}", "text": " ".join(body)})
        for i in range(queries_per_topic):
            qid = f"q-{topic}-{i}"
            queries[qid] = " ".join(rng.sample(words, 2))
            qrels[qid] = {f"{topic}-{j}": 1 for j in rng.sample(range(docs_per_topic), 3)}
    rng.shuffle(docs)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    (folder / "qrels").mkdir(exist_ok=True)
    for split, parity in (("train", 0), ("test", 1)):
        lines = ["query-id\tcorpus-id\tscore"]
        lines += [f"{q}\t{d}\t{r}" for n, (q, rels) in enumerate(qrels.items()) if n % 2 == parity
                  for d, r in rels.items()]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def write_sentences(path: Path, n: int = 40, seed: int = 0) -> Path:
    """A sentence-classification file (``LABEL text`` per line), the format of the ``mr`` task."""
    rng = random.Random(seed)
    good, bad = ["great", "lovely", "fine", "superb"], ["awful", "dull", "poor", "weak"]
    lines = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(good if label else bad) for _ in range(3)] + rng.sample(COMMON, 2)
        lines.append(f"{label} {' '.join(words)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sst2(folder: Path, seed: int = 0) -> Path:
    """GLUE SST-2 in its TSV layout (``sentence<TAB>label``), a tiny train and dev split."""
    rng = random.Random(seed)
    good, bad = ["great", "lovely", "fine", "superb"], ["awful", "dull", "poor", "weak"]
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 120), ("dev", 70)):
        rows = [f"{' '.join(rng.choice(good if i % 2 else bad) for _ in range(4))}\t{i % 2}" for i in range(n)]
        (folder / f"{split}.tsv").write_text("\n".join(["sentence\tlabel", *rows]) + "\n")
    return folder


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench-data")
    beir = write_collection(root / "beir")
    shutil.copytree(beir, root / "scifact")
    write_collection(root / "wikipedia", seed=1)
    write_sentences(root / "classification" / "sentences" / "rt-polarity.all")
    write_sst2(root / "classification" / "glue" / "SST-2")
    return root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-cache")


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (packaged tokenizer) saved as a model folder."""
    from selectsearch.models.encoder import tiny_encoder

    tokenizer, model = tiny_encoder(hidden_size=32, layers=1, heads=2, seed=0)
    folder = tmp_path_factory.mktemp("bench-encoder")
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def bench_index(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """Lexical k-means, 4 shards, Lucene only."""
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("bench-idx") / "tiny-k4"
    config = BuildConfig(n_shards=4, partitioner="kmeans", threads=1, partitioner_options={"sample_size": 500})
    return build_index(open_corpus(data_root / "beir"), out, config)


@pytest.fixture(scope="session")
def bench_dense_index(tmp_path_factory: pytest.TempPathFactory, data_root: Path, tiny_encoder_dir: Path,
                      cache_dir: Path) -> Path:
    """Lexical k-means, 4 shards, Lucene + FAISS with the tiny encoder."""
    from selectsearch.data import open_corpus
    from selectsearch.dense.config import DenseConfig
    from selectsearch.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("bench-idx") / "tiny-dense-k4"
    config = BuildConfig(n_shards=4, partitioner="kmeans", threads=1, partitioner_options={"sample_size": 500},
                         backends=("lucene", "faiss"), dense=DenseConfig(model=str(tiny_encoder_dir), max_length=32))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SELECTSEARCH_CACHE", str(cache_dir))
        return build_index(open_corpus(data_root / "beir"), out, config)


@pytest.fixture(scope="session")
def script_env(data_root: Path, cache_dir: Path) -> dict[str, str]:
    """The environment of an entry script: this tree's package first, the tiny data root, one thread."""
    path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, "SELECTSEARCH_DATA": str(data_root), "SELECTSEARCH_CACHE": str(cache_dir),
            "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "RAY_USAGE_STATS_ENABLED": "0"}


def run_script(script: str, args: Sequence[str | Path], *, env: dict[str, str], cwd: Path,
               timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``eval/<script>`` as ``python eval/<script> ARGS`` and fail with its stderr unless it exits 0."""
    proc = subprocess.run([sys.executable, str(REPO / "eval" / script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="session")
def mico_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Path:
    """A MICO model folder with the tiny encoder and random (sharpened) heads over 4 clusters."""
    import torch

    from selectsearch.mico.config import MicoConfig
    from selectsearch.mico.heads import ClusterHead, Marginal
    from selectsearch.mico.model import save_model
    from selectsearch.models.encoder import load_encoder

    torch.manual_seed(0)
    tokenizer, encoder = load_encoder(tiny_encoder_dir)
    config = MicoConfig(n_clusters=4, encoder=str(tiny_encoder_dir), max_length=32, mode="frozen")
    heads = [ClusterHead(32, 4), ClusterHead(32, 4)]
    for head in heads:
        torch.nn.init.normal_(head.linear.weight, std=3.0)
    folder = tmp_path_factory.mktemp("bench-mico") / "tiny-mico"
    save_model(folder, config=config, dim=32, doc_head=heads[0], query_head=heads[1], marginal=Marginal(4),
               tokenizer=tokenizer, encoder_model=encoder)
    return folder


@pytest.fixture(scope="session")
def bench_mico_index(tmp_path_factory: pytest.TempPathFactory, data_root: Path, tiny_encoder_dir: Path,
                     mico_dir: Path, cache_dir: Path) -> Path:
    """The MICO partition of the same documents, 4 shards, Lucene + FAISS with the tiny encoder."""
    from selectsearch.data import open_corpus
    from selectsearch.dense.config import DenseConfig
    from selectsearch.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("bench-idx") / "tiny-mico-k4"
    config = BuildConfig(n_shards=4, partitioner="mico", threads=1, partitioner_options={"model": str(mico_dir)},
                         backends=("lucene", "faiss"), dense=DenseConfig(model=str(tiny_encoder_dir), max_length=32))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SELECTSEARCH_CACHE", str(cache_dir))
        return build_index(open_corpus(data_root / "beir"), out, config)


@pytest.fixture(scope="session")
def distilled_dir(tmp_path_factory: pytest.TempPathFactory, data_root: Path, mico_dir: Path) -> Path:
    """A 1-layer distilled router of the tiny MICO model (one short epoch)."""
    from selectsearch.data import load_queries
    from selectsearch.route.distilled import default_router_config, train_distilled_router

    queries = list(load_queries(data_root / "beir", split="train").values())
    out = tmp_path_factory.mktemp("bench-router") / "student"
    config = default_router_config(layers=1, epochs=1.0, batch_size=8, lr=1e-3, k_grid=(1, 2))
    train_distilled_router(mico_dir, queries, config=config, dev_fraction=0.25, out=out)
    return out
