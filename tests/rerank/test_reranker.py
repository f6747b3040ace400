"""Cross-encoder teacher and ReAugKD student rerankers: pairs, training, round trips, search, CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from selectsearch.cli import main
from selectsearch.data import load_qrels, load_queries
from selectsearch.errors import ModelError, SelectSearchError
from selectsearch.rerank import (
    CrossEncoderReranker,
    DistilledReranker,
    PairConfig,
    bm25_candidates,
    expected_grade,
    load_reranker,
    reranker_kind,
    training_pairs,
)
from selectsearch.types import Hit


def test_expected_grade_by_hand() -> None:
    probs = np.array([[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]])
    assert expected_grade(probs, [0, 1, 2], probabilities=True).tolist() == [0.75, 2.0]
    logits = np.log(probs[:1])
    assert expected_grade(logits, [0, 1, 2])[0] == pytest.approx(0.75)
    assert expected_grade(np.array([[3.5]]), [0]).tolist() == [3.5]  # regression column
    with pytest.raises(ModelError):
        expected_grade(probs, [0, 1])


def test_interpolate_by_hand() -> None:
    from selectsearch.rerank import interpolate

    model = np.array([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(interpolate(model, np.array([0.0, 5.0, 1.0]), 0.0), model.astype(np.float32))
    z = (model - model.mean()) / model.std()
    bm25 = np.array([1.0, 3.0, 2.0])
    np.testing.assert_allclose(interpolate(model, bm25, 0.5), z + 0.5 * (bm25 - 2.0) / bm25.std(), rtol=1e-6)


def test_bm25_candidates_are_exhaustive_and_cached(index_dir: Path, beir: Path, tmp_path: Path) -> None:
    queries = dict(list(load_queries(beir, split="train").items())[:5])
    first = bm25_candidates(index_dir, queries, depth=10, cache_dir=tmp_path)
    assert list(first) == list(queries)
    assert all(0 < len(c) <= 10 for c in first.values())
    assert all(c[i][1] >= c[i + 1][1] for c in first.values() for i in range(len(c) - 1))
    assert len(list(tmp_path.glob("bm25-*.run"))) == 1
    again = bm25_candidates(index_dir, queries, depth=10, cache_dir=tmp_path)
    assert {q: [d for d, _ in c] for q, c in again.items()} == {q: [d for d, _ in c] for q, c in first.items()}


def test_training_pairs_grades_and_negatives(index_dir: Path, beir: Path) -> None:
    queries = load_queries(beir, split="train")
    qrels = load_qrels(beir, split="train")
    config = PairConfig(depth=20, max_queries=10, max_positives=2, max_judged_negatives=0, bm25_negatives=3, seed=1)
    pairs = training_pairs(index_dir, queries, qrels, config)
    qids = {p.query_id for p in pairs}
    assert len(qids) == 10
    for p in pairs:
        assert p.grade == qrels[p.query_id].get(p.doc_id, 0)  # judged grade, or 0 for an unjudged BM25 negative
        assert p.query == queries[p.query_id] and p.doc
    assert sum(p.grade > 0 for p in pairs) <= 2 * 10
    assert sum(p.grade == 0 for p in pairs) == 3 * 10
    assert training_pairs(index_dir, queries, qrels, config) == pairs  # seeded
    with pytest.raises(SelectSearchError):
        training_pairs(index_dir, queries, {}, config)


def _hits(n: int) -> list[Hit]:
    return [Hit(f"d{i}", float(n - i), 0) for i in range(n)]


def test_teacher_learns_and_round_trips(models: SimpleNamespace) -> None:
    assert reranker_kind(models.teacher_dir) == "cross-encoder"
    reranker = load_reranker(models.teacher_dir)
    assert isinstance(reranker, CrossEncoderReranker)
    assert reranker.grades == [0.0, 1.0, 2.0]
    texts = ["rocket orbit launch planet", "flour sugar butter oven", "stock bond market bank", "rocket orbit"]
    in_memory = CrossEncoderReranker(models.teacher).scores("rocket orbit", texts)
    np.testing.assert_array_equal(reranker.scores("rocket orbit", texts), in_memory)
    ranked = reranker.rerank("rocket orbit", _hits(4), texts)
    assert [h.doc_id for h in ranked] == [h.doc_id for h in CrossEncoderReranker(models.teacher).rerank(
        "rocket orbit", _hits(4), texts)]
    assert all(ranked[i].score >= ranked[i + 1].score for i in range(3))
    assert reranker.stats.queries == 1 and reranker.stats.pairs == 4 and reranker.stats.ms_per_query > 0
    # interpolation with the incoming (BM25) scores: a huge weight keeps the first-stage order
    follow = load_reranker(models.teacher_dir, first_stage_weight=1e6)
    assert [h.doc_id for h in follow.rerank("rocket orbit", _hits(4), texts)] == ["d0", "d1", "d2", "d3"]
    # it fitted its training pairs: relevant pairs score above non-relevant ones (AUC well above 0.5)
    pos = [reranker.scores(p.query, [p.doc])[0] for p in models.pairs if p.grade > 0]
    neg = [reranker.scores(p.query, [p.doc])[0] for p in models.pairs if p.grade == 0]
    auc = float(np.mean([x > y for x in pos for y in neg]))
    assert auc > 0.7, auc


def test_student_round_trip_and_retrieval_switch(models: SimpleNamespace) -> None:
    assert reranker_kind(models.student_dir) == "student"
    assert models.summary["rows"] > 0 and 0.0 <= models.summary["alpha"] <= 1.0
    a = load_reranker(models.student_dir)
    b = load_reranker(models.student_dir)
    assert isinstance(a, DistilledReranker)
    assert a.student.batcher.max_length == 24  # the student's own length, shorter than its teacher's 32
    assert models.teacher.batcher.max_length == 32
    texts = ["rocket orbit launch", "flour sugar butter", "stock bond market", "cell gene protein"]
    np.testing.assert_array_equal(a.scores("rocket orbit", texts), b.scores("rocket orbit", texts))
    assert [h.doc_id for h in a.rerank("rocket orbit", _hits(4), texts)] == \
        [h.doc_id for h in b.rerank("rocket orbit", _hits(4), texts)]
    alone = load_reranker(models.student_dir, retrieval=False)
    student = alone.student  # type: ignore[union-attr]
    rows = [("rocket orbit", t) for t in texts]
    np.testing.assert_allclose(alone.scores("rocket orbit", texts),
                               expected_grade(student.predict(rows, retrieval=False), [0, 1, 2], probabilities=True),
                               rtol=1e-6)
    mixed = student.predict(rows, alpha=0.0, k=3)  # retrieval only: KB distributions still sum to 1
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-5)
    # the reranker's matrix-product KB search gives what the student's faiss search gives
    student.alpha, student.k = 0.5, 3
    fast = DistilledReranker(student, [0, 1, 2])
    np.testing.assert_allclose(fast.scores("rocket orbit", texts),
                               expected_grade(student.predict(rows), [0, 1, 2], probabilities=True), rtol=1e-5)
    alone_scores, mixed_scores, alone_s, mixed_s = fast.score_both("rocket orbit", texts)
    np.testing.assert_allclose(alone_scores, alone.scores("rocket orbit", texts), rtol=1e-6)
    np.testing.assert_allclose(mixed_scores, fast.scores("rocket orbit", texts), rtol=1e-6)
    assert 0 < alone_s <= mixed_s
    info = json.loads((models.student_dir / "reranker.json").read_text())
    assert info["grades"] == [0.0, 1.0, 2.0] and info["teacher"] == str(models.teacher_dir)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_kb_search_is_the_exact_top_k(precision: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from selectsearch.distill.kb import KnowledgeBase

    monkeypatch.setenv("SELECTSEARCH_ENCODER_PRECISION", precision)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.normal(size=(7, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    student = SimpleNamespace(kb=KnowledgeBase(vectors, np.full((500, 3), 1 / 3, dtype=np.float32)), k=5, alpha=0.5)
    scores, ids = DistilledReranker(student, [0, 1, 2])._retrieve(queries)
    exact = queries @ vectors.T
    best = np.sort(exact, axis=1)[:, ::-1][:, :5]
    assert ids.shape == (7, 5) and len({tuple(sorted(r)) for r in ids}) == 7
    assert (np.diff(scores, axis=1) <= 0).all()  # best first
    chosen = np.take_along_axis(exact, ids, axis=1)
    if precision == "fp32":
        np.testing.assert_array_equal(ids, np.argsort(-exact, axis=1)[:, :5])
        np.testing.assert_allclose(scores, best, rtol=1e-5)
    else:  # bf16 keeps about 3 significant digits: only near-ties may swap
        np.testing.assert_allclose(np.sort(chosen, axis=1)[:, ::-1], best, atol=2e-2)
        np.testing.assert_allclose(scores, chosen, atol=2e-2)


def test_reranker_in_selective_searcher(models: SimpleNamespace, index_dir: Path) -> None:
    from selectsearch.search import SelectiveSearcher

    for folder in (models.teacher_dir, models.student_dir):
        reranker = load_reranker(folder)
        searcher = SelectiveSearcher.open(index_dir, "all", reranker=reranker, rerank_depth=15)
        plain = SelectiveSearcher.open(index_dir, "all")
        queries = {"a": "rocket orbit", "b": "flour sugar"}
        out = searcher.batch_search(queries, k=10)
        base = plain.batch_search(queries, k=15)
        for qid, res in out.items():
            assert "rerank" in res.trace.timings_ms
            assert len(res.hits) == 10
            assert {h.doc_id for h in res.hits} <= {h.doc_id for h in base[qid].hits}  # a re-ordering of the top 15
            assert all(res.hits[i].score >= res.hits[i + 1].score for i in range(9))
        assert reranker.stats.queries == 2


def test_rerank_max_length_truncates_pairs(models: SimpleNamespace, index_dir: Path, tmp_path: Path) -> None:
    # the two documents differ only after the 8th token of the pair: cut there they score the same
    texts = ["a b c d e f g h i j rocket orbit launch", "a b c d e f g h i j flour sugar butter"]
    for folder in (models.teacher_dir, models.student_dir):
        short = load_reranker(folder, max_length=8, retrieval=False)
        full = load_reranker(folder, retrieval=False)
        cut = short.scores("rocket orbit", texts)
        assert cut[0] == pytest.approx(cut[1], abs=1e-6)
        assert full.scores("rocket orbit", texts)[0] != pytest.approx(full.scores("rocket orbit", texts)[1], abs=1e-6)
        with pytest.raises(ModelError, match="at least 8"):
            load_reranker(folder, max_length=4)
    out = tmp_path / "run.trec"
    # depth 5 < k 10: the five hits the reranker did not see stay below the ones it rescored,
    # so the run file (which evaluators re-sort by score) holds the ranking returned
    assert main(["-q", "search", str(index_dir), "--query", "rocket orbit", "--route", "all", "--rerank",
                 str(models.student_dir), "--depth", "5", "--rerank-max-length", "16", "--output", str(out)]) == 0
    scores = [float(line.split()[4]) for line in out.read_text().splitlines()]
    assert len(scores) == 10 and all(a > b for a, b in itertools.pairwise(scores))


def test_not_a_reranker(tmp_path: Path, mico_dir: Path) -> None:
    with pytest.raises(ModelError, match="train-reranker"):
        load_reranker(tmp_path)
    with pytest.raises(ModelError):
        reranker_kind(mico_dir)


def test_cli_train_reranker_teacher(index_dir: Path, beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-teacher"
    code = main(["-q", "train-reranker", str(beir), "--index", str(index_dir), "--out", str(out),
                 "--encoder", str(tiny_model_dir), "--max-queries", "8", "--steps", "3", "--batch-size", "8",
                 "--max-length", "32", "--log-file", str(tmp_path / "log.jsonl")])
    assert code == 0
    assert reranker_kind(out) == "cross-encoder"
    assert (tmp_path / "log.jsonl").exists()
    assert main(["-q", "train-reranker", str(beir), "--index", str(index_dir), "--out", str(out)]) == 2  # exists
    assert main(["-q", "train-reranker", str(beir), "--index", str(index_dir), "--out", str(tmp_path / "short"),
                 "--max-length", "0"]) == 2
    assert not (tmp_path / "short").exists()


def test_dynamar_relevance_model_trains_and_reranks(models: SimpleNamespace, tiny_model_dir: Path,
                                                     tmp_path: Path) -> None:
    """``method="dynamar"``: [MASK]-state regression on the grade, loaded and used like the cross-encoder."""
    from selectsearch.models.text_classifier import TextClassifier
    from selectsearch.rerank.teacher import CrossEncoderConfig, train_cross_encoder

    model = train_cross_encoder(models.pairs, CrossEncoderConfig(method="dynamar", pool_size=2,
                                                                 encoder=str(tiny_model_dir), max_length=32,
                                                                 steps=150, batch_size=16, learning_rate=1e-3))
    assert model.config.method == "dynamar" and model.config.kind == "regression"
    assert len(model.pool) == 2 and all("{mask}" in t.source for t in model.pool)
    folder = model.save(tmp_path / "dynamar")
    assert reranker_kind(folder) == "cross-encoder"  # any pair model reranks
    reranker = load_reranker(folder)
    assert TextClassifier.load(folder).extra["reranker"]["kind"] == "dynamar"
    pos = [reranker.scores(p.query, [p.doc])[0] for p in models.pairs if p.grade > 0]
    neg = [reranker.scores(p.query, [p.doc])[0] for p in models.pairs if p.grade == 0]
    # it fitted its training pairs (chance is 0.5; the tiny [MASK] model learns slower than the mean-pooled one)
    assert float(np.mean([x > y for x in pos for y in neg])) > 0.65
    with pytest.raises(SelectSearchError, match="unknown reranker method"):
        train_cross_encoder(models.pairs, CrossEncoderConfig(method="bm25"))


def test_cli_dynamar_with_teacher_refused(index_dir: Path, beir: Path, tmp_path: Path) -> None:
    code = main(["-q", "train-reranker", str(beir), "--index", str(index_dir), "--out", str(tmp_path / "x"),
                 "--method", "dynamar", "--teacher", str(tmp_path / "t")])
    assert code == 2 and not (tmp_path / "x").exists()
