"""Topic-held-out splits of the logs and the shifted test settings (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selectsearch.data import load_qrels
from selectsearch.errors import SelectSearchError
from selectsearch.mico.logs import held_out_topics, split_by_topic
from selectsearch.route.shift import new_topics_setting, topic_split, unlogged_docs_setting, write_setting

from .conftest import TOPICS, make_docs, write_beir

N_TOPICS = 8


def planted(n_per_topic: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit query vectors in ``N_TOPICS`` well-separated directions (+ noise), and each one's topic."""
    rng = np.random.default_rng(seed)
    topic = np.repeat(np.arange(N_TOPICS), n_per_topic)
    vectors = np.eye(16)[topic] + 0.05 * rng.standard_normal((len(topic), 16))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), topic


def pairs_of(n_queries: int, per_query: int = 3) -> np.ndarray:
    return np.repeat(np.arange(n_queries), per_query)


def test_topic_split_is_disjoint_by_query_and_by_topic_and_seeded() -> None:
    vectors, truth = planted()
    pq = pairs_of(len(truth))
    texts = [f"q{i}" for i in range(len(truth))]
    split = topic_split(pq, texts, fraction=0.25, seed=3, n_topics=N_TOPICS, vectors=vectors)
    assert len(split.train) + len(split.val) == len(pq)
    assert not set(split.train.tolist()) & set(split.val.tolist())
    train_q, val_q = set(pq[split.train].tolist()), set(pq[split.val].tolist())
    assert val_q and not train_q & val_q
    # no cluster in both parts, and the clusters are the planted topics
    assert not set(split.query_topic[list(train_q)].tolist()) & set(split.query_topic[list(val_q)].tolist())
    assert not set(truth[list(train_q)].tolist()) & set(truth[list(val_q)].tolist())
    assert split.n_held_topics == 2 and split.summary()["held_fraction"] == pytest.approx(0.25)
    again = topic_split(pq, texts, fraction=0.25, seed=3, n_topics=N_TOPICS, vectors=vectors)
    np.testing.assert_array_equal(again.val, split.val)
    held = {tuple(topic_split(pq, texts, fraction=0.25, seed=s, n_topics=N_TOPICS, vectors=vectors).held_topics)
            for s in range(6)}
    assert len(held) > 1  # the seed draws the held-out topics


def test_topic_split_by_clicked_shards() -> None:
    # texts/vectors carry no signal; the shards of the clicked documents do
    n = 40
    pq = pairs_of(n, 2)
    shard_of_query = np.arange(n) % 4
    split = topic_split(pq, [f"q{i}" for i in range(n)], fraction=0.25, seed=0, n_topics=4, by="shards",
                        pair_shard=shard_of_query[pq], n_shards=4)
    val_q = set(pq[split.val].tolist())
    train_q = set(pq[split.train].tolist())
    assert val_q and not set(shard_of_query[list(val_q)].tolist()) & set(shard_of_query[list(train_q)].tolist())
    with pytest.raises(SelectSearchError, match="shards"):
        topic_split(pq, [f"q{i}" for i in range(n)], by="shards")
    with pytest.raises(SelectSearchError, match="by one of"):
        topic_split(pq, [f"q{i}" for i in range(n)], by="words", vectors=np.eye(n))


def test_held_out_topics_keeps_one_and_skips_empty_topics() -> None:
    sizes = np.array([0, 50, 5, 5, 0, 40])
    for seed in range(10):
        held = held_out_topics(sizes, 0.1, seed)
        assert 1 <= len(held) < 4 and all(sizes[held] > 0)
    assert held_out_topics(np.array([90, 10]), 0.99, 0).tolist() in ([0], [1])  # never every topic
    with pytest.raises(SelectSearchError, match="two"):
        held_out_topics(np.array([0, 7, 0]), 0.2, 0)
    train, val = split_by_topic(np.array([0, 0, 1, 2]), np.array([0, 1, 1]), 0.5, 0)
    assert sorted([*train.tolist(), *val.tolist()]) == [0, 1, 2, 3]
    assert set(train.tolist()) in ({0, 1}, {2, 3})


@pytest.fixture()
def shifted_beir(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray], dict[str, str]]:
    """A BEIR folder with 8 query topics: 10 logged + 4 test queries each; query vectors by text."""
    docs = make_docs(n_per_topic=20)
    ids_by_topic = {t: sorted(d["_id"] for d in docs if d["_id"].startswith(t)) for t in TOPICS}
    names = [f"{t}{half}" for t in TOPICS for half in (0, 1)]  # 8 topics: two per planted document topic
    queries, train, test, vectors, topic_of = {}, {}, {}, {}, {}
    rng = np.random.default_rng(0)
    for n, name in enumerate(names):
        words = TOPICS[name[:-1]][int(name[-1]) * 5:int(name[-1]) * 5 + 5]
        docs_of = ids_by_topic[name[:-1]][int(name[-1]) * 10:int(name[-1]) * 10 + 10]
        for i in range(14):
            qid, text = f"{name}-q{i}", f"{words[i % 5]} {words[(i + 1) % 5]} {i}"
            queries[qid] = text
            topic_of[text] = name
            vec = np.eye(16)[n] + 0.05 * rng.standard_normal(16)
            vectors[text] = vec / np.linalg.norm(vec)
            rels = {docs_of[(i + j) % 10]: 1 for j in range(2)}
            (train if i < 10 else test)[qid] = rels
    folder = write_beir(tmp_path / "beir", docs, queries, test)
    with (folder / "qrels" / "train.tsv").open("w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"{q}\t{d}\t{g}\n" for q, rels in train.items() for d, g in rels.items())
    return folder, vectors, topic_of


def test_new_topics_setting_holds_out_whole_clusters(shifted_beir: tuple[Path, dict[str, np.ndarray],
                                                                         dict[str, str]], tmp_path: Path) -> None:
    folder, vectors, topic_of = shifted_beir
    setting = new_topics_setting(folder, fraction=0.25, seed=1, n_topics=8, vectors=vectors)
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in (folder / "queries.jsonl").open()}
    logged_topics = {topic_of[queries[q]] for q in setting.logs}
    test_topics = {topic_of[queries[q]] for q in setting.test}
    assert setting.test and setting.logs and not logged_topics & test_topics
    assert len(test_topics) == 2 and len(logged_topics) == 6  # 25% of 8 planted topics held out
    assert setting.info["n_test_queries"] == 8 and setting.info["n_log_queries"] == 60
    out = write_setting(setting, folder, tmp_path / "derived")
    assert load_qrels(out, split="train") == setting.logs and load_qrels(out, split="test") == setting.test
    assert (out / "corpus.jsonl").read_text() == (folder / "corpus.jsonl").read_text()
    assert json.loads((out / "shift.json").read_text())["setting"] == "new-topics"
    again = new_topics_setting(folder, fraction=0.25, seed=1, n_topics=8, vectors=vectors)
    assert again.test == setting.test  # seeded


def test_unlogged_docs_setting_drops_every_logged_pair_of_a_relevant_doc(
        shifted_beir: tuple[Path, dict[str, np.ndarray], dict[str, str]], tmp_path: Path) -> None:
    folder, _, _ = shifted_beir
    setting = unlogged_docs_setting(folder)
    relevant = {d for rels in setting.test.values() for d, g in rels.items() if g > 0}
    assert relevant and setting.logs
    assert not {d for rels in setting.logs.values() for d in rels} & relevant
    assert setting.test == load_qrels(folder, split="test")
    assert setting.info["n_removed_log_pairs"] > 0
    out = write_setting(setting, folder, tmp_path / "derived")
    assert write_setting(setting, folder, out) == out  # its own folder is rewritten
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(SelectSearchError, match="not empty"):
        write_setting(setting, folder, tmp_path / "other")
