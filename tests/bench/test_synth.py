"""The synthetic-collection generator (``selectsearch.bench.synth``) and its entry script.

A tiny planted-topic collection made in code stands in for SciFact + Wikipedia: a few hundred
documents, four topics. The tests check what the scale benchmarks rely on: a seed fixes the
output; the folder holds N synthetic documents plus every judged one, ids unique, queries and
qrels intact; synthetic text uses only the real vocabulary and real lengths; generation
streams; the burstiness calibration matches the real postings per token.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from selectsearch.bench import synth
from selectsearch.bench.synth import FitOptions, TopicModel, fit_topic_model, iter_documents, tokenize, write_collection
from selectsearch.data import load_queries
from selectsearch.errors import SelectSearchError

from .conftest import REPO, run_script
from .conftest import write_collection as write_beir

OPTIONS = FitOptions(topics=4, fit_docs=250, passes=3, batch_size=64, heldout_docs=50, calibration_docs=400,
                     seed=0, threads=1)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``judged`` (a BEIR folder with queries and qrels) and ``other`` (more real documents)."""
    root = tmp_path_factory.mktemp("synth-real")
    write_beir(root / "judged", docs_per_topic=40)
    write_beir(root / "other", docs_per_topic=60, seed=1)
    return root


@pytest.fixture(scope="module")
def model(real: Path) -> TopicModel:
    return fit_topic_model([real / "judged", real / "other"], OPTIONS)


def _real_lengths(root: Path) -> list[int]:
    from selectsearch.data import open_corpus

    return [len(tokenize(d.contents)) for d in open_corpus([root / "judged", root / "other"])]


def _lines(folder: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------------------- the model
def test_topic_word_counts_share_out_every_real_token(model: TopicModel, real: Path) -> None:
    lengths = _real_lengths(real)
    assert model.topic_word.shape == (4, len(model.vocab))
    assert (model.topic_word >= 0).all() and (model.templates > 0).all()
    assert model.topic_word.sum() == pytest.approx(sum(lengths), rel=1e-4)  # expected counts, token for token
    assert sorted(model.lengths.tolist()) == sorted(n for n in lengths if n > 0)
    assert model.info["real_docs"] == len(lengths) and len(model.info["heldout_perplexity_per_pass"]) == 3


def test_save_and_load_give_the_same_documents(model: TopicModel, tmp_path: Path) -> None:
    model.save(tmp_path / "m")
    loaded = TopicModel.load(tmp_path / "m")
    assert loaded.vocab == model.vocab and loaded.options == model.options and loaded.copy_rate == model.copy_rate
    assert list(iter_documents(loaded, 50, seed=3, chunk_docs=20)) == list(iter_documents(model, 50, seed=3,
                                                                                           chunk_docs=20))
    with pytest.raises(SelectSearchError, match="exists"):
        model.save(tmp_path / "m")
    with pytest.raises(SelectSearchError, match="not a topic generator"):
        TopicModel.load(tmp_path)


# ---------------------------------------------------------------------------- generated documents
def test_same_seed_same_collection_other_seed_other_one(model: TopicModel, real: Path, tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        write_collection(model, tmp_path / name, docs=300, judged=real / "judged", seed=seed, chunk_docs=64)
    corpus = {name: (tmp_path / name / "corpus.jsonl").read_bytes() for name in "abc"}
    assert corpus["a"] == corpus["b"] and corpus["a"] != corpus["c"]
    # a smaller collection is the head of a larger one
    head = [text for _, text in iter_documents(model, 100, seed=7, chunk_docs=64)]
    assert head == [d["text"] for d in _lines(tmp_path / "a") if d["_id"].startswith("syn-")][:100]


def test_collection_holds_n_synthetic_and_every_judged_document(model: TopicModel, real: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "syn"
    sidecar = write_collection(model, out, docs=500, judged=real / "judged", seed=1, chunk_docs=128)
    docs = _lines(out)
    judged = {json.loads(line)["_id"]: json.loads(line) for line in
              (real / "judged" / "corpus.jsonl").read_text().splitlines()}
    ids = [d["_id"] for d in docs]
    assert len(ids) == len(set(ids)) == 500 + len(judged)
    synthetic = [d for d in docs if d["_id"] not in judged]
    assert [d["_id"] for d in synthetic] == [f"syn-{i:07d}" for i in range(1, 501)]
    assert all(d["title"] == "" for d in synthetic)
    assert {d["_id"]: d for d in docs if d["_id"] in judged} == judged  # real documents unchanged
    real_positions = [i for i, d in enumerate(docs) if d["_id"] in judged]
    assert real_positions != list(range(len(judged)))  # mixed in, not stacked at the start
    assert (out / "queries.jsonl").read_bytes() == (real / "judged" / "queries.jsonl").read_bytes()
    for split in ("train", "test"):
        qrels = f"qrels/{split}.tsv"
        assert (out / qrels).read_bytes() == (real / "judged" / qrels).read_bytes()
    assert json.loads((out / "generation.json").read_text()) == sidecar
    assert sidecar["docs"] == {"synthetic": 500, "real": len(judged), "total": 500 + len(judged)}
    assert sidecar["seed"] == 1 and sidecar["model"]["options"]["topics"] == 4
    stats = sidecar["stats"]
    assert stats["synthetic"]["docs"] == 500 and stats["real"]["docs"] == model.info["real_docs_nonempty"]
    assert stats["synthetic_at_real_size"]["docs"] == model.info["real_docs_nonempty"]
    assert stats["real"]["queries"]["queries"] == len(load_queries(real / "judged", split="test")) > 0
    assert not (tmp_path / "syn.partial").exists()


def test_synthetic_text_uses_real_terms_and_real_lengths(model: TopicModel, real: Path) -> None:
    vocab, lengths = set(model.vocab), _real_lengths(real)
    texts = [text for _, text in iter_documents(model, 2000, seed=5, chunk_docs=300)]
    assert len(texts) == 2000
    assert all(set(tokenize(t)) <= vocab for t in texts)
    assert all(t == " ".join(t.split()) for t in texts)  # single spaces, no padding
    drawn = {len(t.split()) for t in texts}
    assert min(drawn) >= min(lengths) and max(drawn) <= max(lengths) and len(drawn) > 3
    assert drawn <= set(lengths)


def test_documents_follow_their_template_topics(model: TopicModel) -> None:
    """A document mixes few topics: its words come mostly from one planted topic, not all four."""
    from .conftest import TOPICS

    topic_of = {w: t for t, words in TOPICS.items() for w in words}
    shares = []
    for _, text in iter_documents(model, 400, seed=2, chunk_docs=100):
        topics = [topic_of[w] for w in text.split() if w in topic_of]
        if topics:
            shares.append(max(topics.count(t) for t in set(topics)) / len(topics))
    assert np.mean(shares) > 0.7  # a topic-blind sampler would give about 0.4


def test_generation_streams_one_chunk_at_a_time(model: TopicModel) -> None:
    huge = iter_documents(model, 10**12, seed=0, chunk_docs=100)
    assert next(huge)[0] == "syn-" + "1".zfill(13)  # a list of 10^12 documents would never return

    def peak(n: int) -> int:
        tracemalloc.start()
        count = sum(1 for _ in iter_documents(model, n, seed=0, chunk_docs=250))
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert count == n
        return top

    small, large = peak(2_500), peak(20_000)
    assert large < 1.3 * small  # 8x the documents, the same memory


def test_copy_rate_matches_real_postings_per_token(tmp_path: Path) -> None:
    """Documents that repeat their words: independent draws would give far too many postings."""
    rng = random.Random(0)
    topics = [[f"{t}w{i}" for i in range(30)] for t in "abcd"]
    folder = tmp_path / "bursty"
    folder.mkdir()
    lines = []
    for n in range(400):
        words = rng.sample(topics[n % 4], 4)
        body = [w for w in words for _ in range(rng.randint(2, 6))]
        rng.shuffle(body)
        lines.append(json.dumps({"_id": str(n), "title": "", "text": " ".join(body)}))
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    model = fit_topic_model([folder], OPTIONS)
    target = model.info["postings_per_token_target"]
    assert target < 0.4 and model.copy_rate > 0.3
    assert model.info["postings_per_token_calibrated"] == pytest.approx(target, abs=0.02)
    sampler = synth.Sampler(model)
    ratios = []
    for rate in (0.0, model.copy_rate):
        words, lengths = sampler.sample(np.random.default_rng(0), 3000, copy_rate=rate)
        ratios.append(synth._postings(words, lengths, model.n_terms) / lengths.sum())
    assert ratios[0] > target + 0.2 and ratios[1] == pytest.approx(target, abs=0.02)


def test_write_refuses_an_existing_folder_and_a_clashing_prefix(model: TopicModel, real: Path,
                                                                tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(SelectSearchError, match="exists"):
        write_collection(model, tmp_path / "taken", docs=10, judged=real / "judged", seed=0)
    with pytest.raises(SelectSearchError, match="synthetic prefix"):
        write_collection(model, tmp_path / "new", docs=10, judged=real / "judged", seed=0, prefix="space")
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------------------- statistics
def test_summarize_reports_lengths_df_curve_zipf_and_query_terms() -> None:
    cf = np.round(1e6 / np.arange(1, 2001)).astype(np.int64)  # Zipf, slope -1
    cf[-1] = 0  # a vocabulary term that never occurs
    df = np.minimum(cf, 100)
    hist = np.bincount([10] * 50 + [20] * 50)
    stats = synth.summarize(df, cf, hist, docs=100, postings=1500, query_terms=[[0, 1], [-1], [1999]])
    assert stats["length"]["mean"] == 15 and stats["length"]["p50"] == 10 and stats["length"]["max"] == 20
    assert stats["zipf_slope"] == pytest.approx(-1.0, abs=0.05)
    assert stats["df_frac_at_rank"]["1"] == 1.0 and "10000" not in stats["df_frac_at_rank"]
    q = stats["queries"]
    assert q["terms"] == 4 and q["terms_absent"] == 0.5  # -1 (unknown) and the term with cf = 0
    assert q["mean_postings_per_query"] == pytest.approx((100 + 100 + 0 + 0) / 3, abs=0.1)
    assert stats["postings_per_doc"] == 15.0


def test_cooccurrence_counts_documents_holding_several_query_terms() -> None:
    counter = synth.Cooccurrence([[0, 1, 2], [3, -1], [4, 5]], n_terms=6)
    # doc 0 holds 0, 1, 2; doc 1 holds 0, 1; doc 2 holds 4, 5; doc 3 holds 3 and 5
    pairs = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 4), (2, 5), (3, 3), (3, 5)]
    counter.add(np.array([d for d, _ in pairs]), np.array([t for _, t in pairs]), 4)
    counter.add(np.array([0, 0, 0]), np.array([0, 1, 2]), 1)  # a second chunk: one more document with 0, 1, 2
    summary = counter.summary()
    assert summary["queries_with_2plus_terms"] == 2  # the query with one known term is left out
    assert summary["docs_with_2plus_query_terms_per_1m"] == (3 + 1) / 2 * 1e6 / 5
    assert summary["queries_with_3plus_terms"] == 1 and summary["docs_with_3plus_query_terms_per_1m"] == 2 * 1e6 / 5
    assert "docs_with_4plus_query_terms_per_1m" not in summary  # no query has 4 terms


def test_real_and_synthetic_cooccurrence_are_reported(model: TopicModel, real: Path, tmp_path: Path) -> None:
    stats = write_collection(model, tmp_path / "c", docs=400, judged=real / "judged", seed=0)["stats"]
    # the planted queries are two words of one topic: documents of that topic hold both, in both collections
    real_share = stats["real"]["queries"]["docs_with_2plus_query_terms_per_1m"]
    assert real_share > 0
    for part in ("synthetic", "synthetic_at_real_size"):
        assert stats[part]["queries"]["docs_with_2plus_query_terms_per_1m"] == pytest.approx(real_share, rel=0.5)


def test_query_terms_drop_lucene_stopwords(model: TopicModel) -> None:
    ids = synth.query_term_ids(model, ["The rocket and the orbit of mars", "zzz unknown"])
    assert [model.vocab[i] for i in ids[0]] == ["mars", "orbit", "rocket"]
    assert ids[1] == [-1, -1]


# ---------------------------------------------------------------------------- the entry script
def test_scale_generate(tmp_path: Path, data_root: Path, script_env: dict[str, str]) -> None:
    out, model_dir, report = tmp_path / "syn", tmp_path / "model", tmp_path / "report" / "syn"
    flags = ["--topics", "4", "--fit-docs", "60", "--passes", "2", "--threads", "1", "--chunk-docs", "100"]
    proc = run_script("scale/generate.py", ["--docs", "300", "--out", out, "--model", model_dir, "--report", report,
                                            *flags], env=script_env, cwd=tmp_path)
    assert "fit: pass 2/2" in proc.stderr and "generate: done" in proc.stderr
    assert proc.stdout.startswith("| statistic | real |")
    sidecar = json.loads((out / "generation.json").read_text())
    assert sidecar["docs"]["synthetic"] == 300 and "eval/scale/generate.py" in sidecar["command"]
    assert json.loads(report.with_suffix(".json").read_text()) == sidecar
    assert "| mean postings per query |" in report.with_suffix(".md").read_text()
    # the saved model is reused, and a different fit setting is refused in one line
    again = run_script("scale/generate.py", ["--docs", "300", "--out", tmp_path / "again", "--model", model_dir,
                                             *flags], env=script_env, cwd=tmp_path)
    assert "model: loaded" in again.stderr
    assert (tmp_path / "again" / "corpus.jsonl").read_bytes() == (out / "corpus.jsonl").read_bytes()
    refused = subprocess.run([sys.executable, str(REPO / "eval/scale/generate.py"), "--docs", "5", "--out",
                              tmp_path / "x", "--model", model_dir, "--topics", "5"], env=script_env,
                             capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--topics" in refused.stderr
