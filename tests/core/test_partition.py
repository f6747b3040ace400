"""Partitioners: balance, coverage, and the lexical space matching scikit-learn."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from selectsearch.partition.base import CorpusScan, reservoir_sample
from selectsearch.partition.lexical import LexicalKMeansPartitioner, tokenize
from selectsearch.partition.random_ import RandomPartition
from selectsearch.types import Document

from .conftest import make_docs


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 500), st.integers(1, 40), st.integers(0, 10))
def test_random_partition_is_balanced_and_total(n: int, k: int, seed: int) -> None:
    part = RandomPartition(k, seed)
    shards = part.assign([], np.arange(n))
    # batching does not change the assignment
    halves = np.concatenate([part.assign([], np.arange(n // 2)), part.assign([], np.arange(n // 2, n))])
    assert np.array_equal(shards, halves)
    assert shards.shape == (n,) and shards.min() >= 0 and shards.max() < k
    sizes = np.bincount(shards, minlength=k)
    assert sizes.max() - sizes.min() <= 1


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 200), st.integers(0, 50), st.integers(0, 5))
def test_reservoir_sample_is_sorted_subset(n: int, size: int, seed: int) -> None:
    docs = [Document(str(i), "", str(i)) for i in range(n)]
    sample, positions = reservoir_sample(docs, size, seed)
    assert len(sample) == min(n, size)
    assert positions == sorted(set(positions))
    assert [d.doc_id for d in sample] == [str(p) for p in positions]


def _scan(docs: list[Document]) -> CorpusScan:
    return CorpusScan(n_docs=len(docs), fingerprint="x", sample=docs, sample_positions=list(range(len(docs))))


def test_lexical_space_matches_sklearn_transform() -> None:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    docs = [Document(d["_id"], d["title"], d["text"]) for d in make_docs(20)]
    part = LexicalKMeansPartitioner(seed=0).fit(_scan(docs), n_shards=4)
    space = part.space
    stop = frozenset(ENGLISH_STOP_WORDS)
    ref = TfidfVectorizer(tokenizer=lambda t: tokenize(t, stop), lowercase=False, token_pattern=None,
                          vocabulary=space.vocabulary, sublinear_tf=True, dtype=np.float32)
    ref.fit([d.contents for d in docs])
    ref.idf_ = space.idf
    texts = [d.contents for d in docs[:10]] + ["rocket oven", "", "unknownword"]
    np.testing.assert_allclose(space.transform(texts).toarray(), ref.transform(texts).toarray(), atol=1e-6)


def test_lexical_query_scores_equal_the_sparse_product_alone_and_in_batches() -> None:
    """Routing gathers centroid rows text by text (no sparse matrix per query): the scores must be
    the ones ``transform(texts) @ centroids.T`` gives, and the same for a text alone or in a batch."""
    docs = [Document(d["_id"], d["title"], d["text"]) for d in make_docs(30)]
    space = LexicalKMeansPartitioner(seed=0).fit(_scan(docs), n_shards=5).space
    texts = [d.contents for d in docs] + ["rocket oven rocket", "", "unknownword", "the of and"]
    batch = space.query_scores(texts)
    reference = np.asarray(space.transform(texts) @ space.centroids.T, dtype=np.float32)
    assert batch.dtype == np.float32 and batch.shape == (len(texts), 5)
    np.testing.assert_allclose(batch, reference, rtol=1e-6, atol=1e-7)
    alone = np.concatenate([space.query_scores([t]) for t in texts])
    assert np.array_equal(alone, batch)
    assert not batch[len(docs) + 1 :].any()  # no known term: zero scores


def test_lexical_kmeans_recovers_planted_topics() -> None:
    docs = [Document(d["_id"], d["title"], d["text"]) for d in make_docs(30)]
    part = LexicalKMeansPartitioner(seed=0).fit(_scan(docs), n_shards=4)
    shards = part.assign(docs, np.arange(len(docs)))
    # each topic lands (almost) wholly in one shard
    for topic in ("space", "cooking", "finance", "biology"):
        ids = [s for d, s in zip(docs, shards.tolist(), strict=True) if d.doc_id.startswith(topic)]
        assert np.bincount(ids).max() >= 0.9 * len(ids)
    # the centroid space routes a topical query to that topic's shard
    scores = part.query_space().query_scores(["rocket orbit launch"])
    space_shards = [s for d, s in zip(docs, shards.tolist(), strict=True) if d.doc_id.startswith("space")]
    space_shard = np.bincount(space_shards).argmax()
    assert int(scores.argmax()) == int(space_shard)


def test_lexical_partition_save_load_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from selectsearch.partition.base import load_partition

    docs = [Document(d["_id"], d["title"], d["text"]) for d in make_docs(10)]
    part = LexicalKMeansPartitioner(seed=3).fit(_scan(docs), n_shards=3)
    part.save(tmp_path)
    loaded = load_partition(tmp_path)
    np.testing.assert_array_equal(loaded.assign(docs, np.arange(len(docs))), part.assign(docs, np.arange(len(docs))))
