"""``knn@m``: logged queries vote with the shards of their clicked documents."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selectsearch.errors import RouteSpecError
from selectsearch.index.sharded import ShardedIndex
from selectsearch.route import make_router, parse_route
from selectsearch.route.knn import LoggedQueryRouter, familiarity, knn_scores, log_shard_distributions, nearest_logged
from selectsearch.types import Query

from .conftest import TOPICS


def test_knn_scores_by_hand() -> None:
    kb = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    dist = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    query = np.array([[2.0, 0.0]])  # normalised inside: cosines 1.0, 0.6, 0.0
    # k = 2 keeps rows 0 and 1; softmax over (1.0, 0.6) / 0.5
    w0 = np.exp(2.0) / (np.exp(2.0) + np.exp(1.2))
    expected = w0 * dist[0] + (1 - w0) * dist[1]
    np.testing.assert_allclose(knn_scores(query, kb, dist, k=2, temperature=0.5)[0], expected)
    # k larger than the KB uses every row; rows of the result are distributions
    out = knn_scores(query, kb, dist, k=10, temperature=0.5)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # a tiny temperature is the single nearest neighbour
    np.testing.assert_allclose(knn_scores(query, kb, dist, k=3, temperature=1e-4)[0], dist[0], atol=1e-6)


def _reference_neighbours(queries: np.ndarray, kb: np.ndarray, dist: np.ndarray, k: int, temperature: float,
                          n_familiar: int) -> tuple[np.ndarray, np.ndarray]:
    """The definition, written plainly in float64: cosines, the k largest, softmax, mix."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    sims = q.astype(np.float64) @ kb.T.astype(np.float64)
    scores, fam = [], []
    for row in sims:
        order = np.argsort(-row, kind="stable")
        top = order[: min(k, len(row))]
        w = np.exp((row[top] - row[top].max()) / temperature)
        scores.append((w / w.sum()) @ dist[top])
        fam.append(row[order[: min(n_familiar, len(row))]].mean())
    return np.array(scores), np.array(fam)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(2, 12), st.integers(1, 20), st.integers(1, 50), st.integers(1, 7),
       st.integers(0, 2**31))
def test_knn_scores_and_familiarity_follow_the_definition(n_kb: int, dim: int, n_queries: int, k: int,
                                                          n_familiar: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    kb = rng.standard_normal((n_kb, dim)).astype(np.float32)
    kb /= np.linalg.norm(kb, axis=1, keepdims=True)
    dist = rng.dirichlet(np.ones(5), n_kb)
    queries = rng.standard_normal((n_queries, dim)).astype(np.float32)  # continuous: no tied neighbours
    ref_scores, ref_fam = _reference_neighbours(queries, kb, dist, k, 0.2, n_familiar)
    np.testing.assert_allclose(knn_scores(queries, kb, dist, k=k, temperature=0.2), ref_scores, atol=1e-5)
    _, sims = nearest_logged(queries, kb, max(k, n_familiar))
    np.testing.assert_allclose(familiarity(sims, n_familiar), ref_fam, atol=1e-5)


def test_log_distributions_weight_clicks_and_skip_unknown_documents() -> None:
    records = [("q1", "a", 3.0), ("q1", "b", 1.0), ("q2", "b", 1.0), ("q2", "zzz", 5.0), ("q3", "zzz", 1.0)]
    texts, dist, skipped = log_shard_distributions(records, {"a": 0, "b": 2}, 3)
    assert texts == ["q1", "q2"]  # q3 only clicked a document the index lacks
    np.testing.assert_allclose(dist, [[0.75, 0.0, 0.25], [0.0, 0.0, 1.0]])
    assert skipped == 2


class KeywordEncoder:
    """Bag-of-topic-words vectors: enough to test the router without a transformer."""

    name, max_length, precision = "keywords", 16, "fp32"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([[sum(w in t.split() for w in words) + 1e-3 for words in TOPICS.values()] for t in texts])


def test_router_sends_a_query_where_its_neighbours_clicked() -> None:
    texts = [" ".join(words[:2]) for words in TOPICS.values()]  # one logged query per topic
    dist = np.eye(4)[[2, 0, 3, 1]]  # topic t's clicks all in shard perm[t]
    router = LoggedQueryRouter(KeywordEncoder(), KeywordEncoder().encode(texts), dist, k=2, temperature=0.05)
    queries = [Query(t, " ".join(words[2:5])) for t, words in TOPICS.items()]
    assert router.rank(queries)[:, 0].tolist() == [2, 0, 3, 1]
    assert router.encoded_queries() is not None and router.encoded_queries().texts == tuple(q.text for q in queries)
    with pytest.raises(RouteSpecError, match="k >= 1"):
        LoggedQueryRouter(KeywordEncoder(), np.eye(4), dist, k=0)
    with pytest.raises(RouteSpecError, match="logged queries"):
        LoggedQueryRouter(KeywordEncoder(), np.zeros((0, 4)), np.zeros((0, 4)))


def test_knn_router_from_a_click_log_on_a_real_index(tiny_index: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path / "cache"))
    index = ShardedIndex.open(tiny_index)
    log = tmp_path / "clicks.tsv"
    lines = []
    for topic, words in TOPICS.items():
        docs = [d for d in index.shard_of_doc if d.startswith(topic)][:5]
        lines += [f"{words[i]} {words[i + 1]}\t{d}\t2" for i in range(3) for d in docs]
    log.write_text("\n".join(lines) + "\n")
    router = make_router(parse_route("knn@1"), index, logs=str(log), k=5)
    # without knn.encoder the queries are embedded by a static table, not the transformer: the one adapted to the
    # index, or (this index is too small to adapt to) minilm-static itself
    assert getattr(router.encoder, "static", False) and Path(router.encoder.name).name == "minilm-static"
    queries = [Query(topic, f"{words[0]} {words[3]}") for topic, words in TOPICS.items()]
    ranking = router.rank(queries)
    assert all(sorted(row) == list(range(index.n_shards)) for row in ranking.tolist())
    for q, row in zip(queries, ranking.tolist(), strict=True):
        clicked = {index.shard_of_doc[d] for d in index.shard_of_doc if d.startswith(q.query_id)}
        assert row[0] in clicked
    # the KB embeddings were cached: a second router reads them instead of encoding again
    assert any((tmp_path / "cache").rglob("meta.json"))
    again = make_router(parse_route("knn@1"), index, logs=str(log), k=5)
    np.testing.assert_array_equal(again.rank(queries), ranking)
    # it fuses in hybrid@m
    fused = make_router(parse_route("hybrid@1"), index, routers="knn,cori", weights="0.5,0.5",
                        **{"hybrid.knn.logs": str(log), "hybrid.knn.k": "5"})
    assert fused.rank(queries).shape == ranking.shape


def test_knn_bad_options(tiny_index: Path, tmp_path: Path) -> None:
    index = ShardedIndex.open(tiny_index)
    with pytest.raises(RouteSpecError, match="unknown options"):
        make_router("knn@1", index, depth=3)
    with pytest.raises(RouteSpecError, match="cannot read its logs"):
        make_router("knn@1", index, logs=str(tmp_path / "missing.tsv"))
    log = tmp_path / "other.tsv"
    log.write_text("rocket orbit\tnot-a-doc\t1\n")
    with pytest.raises(RouteSpecError, match="none of the 1 logged documents"):
        make_router("knn@1", index, logs=str(log))
    with pytest.raises(RouteSpecError, match="must be numbers"):
        make_router("knn@1", index, logs=str(log), k="many")


class CountingEncoder(KeywordEncoder):
    calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        CountingEncoder.calls += 1
        return super().encode(texts)


def test_hybrid_hands_query_vectors_to_knn() -> None:
    """A fused knn reuses an earlier router's vectors of the same encoder instead of encoding again."""
    from selectsearch.route.hybrid import HybridRouter
    from selectsearch.types import EncodedQueries

    class Embedder(LoggedQueryRouter):  # any router that embeds with the same encoder
        name = "embedder"

    texts = [" ".join(words[:2]) for words in TOPICS.values()]
    dist = np.eye(4)
    enc = CountingEncoder()
    first = Embedder(enc, KeywordEncoder().encode(texts), dist, k=1)
    knn = LoggedQueryRouter(enc, KeywordEncoder().encode(texts), dist, k=1)
    queries = [Query(t, " ".join(words[2:5])) for t, words in TOPICS.items()]
    alone = knn.scores(queries)
    CountingEncoder.calls = 0
    HybridRouter([first, knn], [0.5, 0.5]).rank(queries)
    assert CountingEncoder.calls == 1
    np.testing.assert_array_equal(knn.scores(queries), alone)  # nothing offered: it encodes itself
    assert CountingEncoder.calls == 2
    # vectors of another encoder (or other texts) are not taken
    knn.offer_encoded(EncodedQueries("other-model", 16, "fp32", tuple(q.text for q in queries), np.zeros((4, 4))))
    np.testing.assert_array_equal(knn.scores(queries), alone)
    assert CountingEncoder.calls == 3
