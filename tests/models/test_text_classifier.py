"""The shared trainer: both methods, both heads, callbacks, seeds, save/load, CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from selectsearch.data.classification import TextExample
from selectsearch.errors import ModelError
from selectsearch.models.classifier_config import ModelConfig, TrainConfig
from selectsearch.models.classifier_training import sample_few_shot, train_classifier
from selectsearch.models.encoder import tiny_encoder
from selectsearch.models.text_classifier import TextClassifier
from selectsearch.train.callbacks import JsonLogCallback, TrainerCallback, TrainState

WORDS = ["alpha", "delta", "river", "stone", "cloud", "table", "green", "paper"]


def _classification(n: int = 48, seed: int = 0) -> list[TextExample]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = i % 3
        cue = ["good", "bad", "meh"][label]
        words = rng.sample(WORDS, 3)
        words.insert(rng.randrange(4), cue)
        out.append(TextExample(" ".join(words), label))
    return out


def _regression(n: int = 32, seed: int = 0) -> list[TextExample]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randrange(5)
        out.append(
            TextExample(
                " ".join(["good"] * k + rng.sample(WORDS, 2)),
                float(k),
                " ".join(rng.sample(WORDS, 2)),
            )
        )
    return out


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FAST = TrainConfig(
    steps=40,
    batch_size=16,
    learning_rate=1e-3,
    head_learning_rate=1e-2,
    warmup_ratio=0.0,
    seed=1,
    eval_batch_size=32,
)


class Recorder(TrainerCallback):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.losses: list[float] = []

    def on_train_begin(self, state: TrainState) -> None:
        self.events.append("begin")

    def on_step_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        self.losses.append(state.loss)
        json.dumps(state.to_json())

    def on_train_end(self, state: TrainState) -> None:
        self.events.append("end")


@pytest.mark.parametrize("method", ["dynamar", "finetune"])
def test_classification_head_trains(method: str) -> None:
    data = _classification()
    cfg = ModelConfig(
        method=method,
        kind="classification",
        label_names=("g", "b", "m"),
        max_length=16,
        pool_size=3,
    )
    rec = Recorder()
    clf = train_classifier(data, cfg, FAST, encoder=tiny_encoder(), callbacks=[rec])
    assert rec.events == ["begin", "end"] and len(rec.losses) == FAST.steps
    assert np.mean(rec.losses[-5:]) < 0.7 * np.mean(rec.losses[:5])
    preds = clf.predict(data)
    assert preds.dtype == np.int64 and preds.shape == (len(data),)
    assert (preds == [e.label for e in data]).mean() > 0.6  # chance: 1/3
    views = clf.view_outputs(data[:5])
    assert views.shape == ((3 if method == "dynamar" else 1), 5, 3)


@pytest.mark.parametrize("method", ["dynamar", "finetune"])
def test_regression_head_trains(method: str) -> None:
    data = _regression()
    cfg = ModelConfig(
        method=method,
        kind="regression",
        label_names=("score",),
        slots=("text_a", "text_b"),
        max_length=24,
        pool_size=2,
    )
    rec = Recorder()
    clf = train_classifier(data, cfg, FAST, encoder=tiny_encoder(), callbacks=[rec])
    assert np.mean(rec.losses[-5:]) < 0.5 * np.mean(rec.losses[:5])
    preds = clf.predict(data)
    assert preds.dtype == np.float32
    gold = np.array([e.label for e in data])
    assert np.corrcoef(preds, gold)[0, 1] > 0.8
    assert abs(preds.mean() - gold.mean()) < 1.0  # outputs are in label units


def test_seed_makes_runs_reproducible() -> None:
    data = _classification(24)
    cfg = ModelConfig(
        method="dynamar",
        kind="classification",
        label_names=("g", "b", "m"),
        max_length=16,
        pool_size=2,
    )
    short = TrainConfig(steps=5, batch_size=8, seed=3)
    a = train_classifier(data, cfg, short, encoder=tiny_encoder()).view_outputs(data)
    b = train_classifier(data, cfg, short, encoder=tiny_encoder()).view_outputs(data)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["dynamar", "finetune"])
def test_save_load_round_trip(method: str, tmp_path: Path) -> None:
    data = _classification(24)
    cfg = ModelConfig(
        method=method,
        kind="classification",
        label_names=("g", "b", "m"),
        max_length=16,
        pool_size=3,
        inference="single",
    )
    log = tmp_path / "log.jsonl"
    clf = train_classifier(
        data,
        cfg,
        TrainConfig(steps=4, batch_size=8, seed=2),
        encoder=tiny_encoder(),
        callbacks=[JsonLogCallback(log, every=2)],
    )
    events = [json.loads(x)["event"] for x in log.read_text().splitlines()]
    assert events == ["train_begin", "step", "step", "train_end"]
    folder = clf.save(tmp_path / "model", command="test")
    assert not (tmp_path / "model.partial").exists()
    assert {p.name for p in folder.iterdir()} >= {"encoder", "head.pt", "pool.json", "config.json"}
    again = TextClassifier.load(folder)
    assert again.config == cfg and again.train_config == clf.train_config
    assert [t.source for t in again.pool] == [t.source for t in clf.pool]
    np.testing.assert_array_equal(again.view_outputs(data), clf.view_outputs(data))
    np.testing.assert_array_equal(again.predict(data), clf.predict(data))
    with pytest.raises(ModelError):
        clf.save(folder)


def test_load_refuses_other_folders(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        TextClassifier.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "selectsearch.text_classifier", "format_version": 99}))
    with pytest.raises(ModelError, match="newer"):
        TextClassifier.load(tmp_path)


def test_config_validation_and_sampling() -> None:
    with pytest.raises(ModelError):
        ModelConfig(method="prompt", kind="classification", label_names=("a", "b"))
    with pytest.raises(ModelError):
        ModelConfig(method="dynamar", kind="ranking", label_names=("a", "b"))
    data = _classification(60)
    few = sample_few_shot(data, k=4, kind="classification", seed=0)
    assert sorted(e.label for e in few) == [0] * 4 + [1] * 4 + [2] * 4
    assert few == sample_few_shot(data, k=4, kind="classification", seed=0)
    assert len(sample_few_shot(_regression(), k=7, kind="regression", seed=1)) == 7


def test_cli_train_and_classify(tmp_path: Path, capsys: Any) -> None:
    from selectsearch.cli import main

    tok, enc = tiny_encoder()
    enc_dir = tmp_path / "tiny"
    enc.save_pretrained(str(enc_dir))
    tok.save_pretrained(str(enc_dir))
    train = tmp_path / "train.jsonl"
    names = ["good", "bad", "meh"]
    train.write_text(
        "".join(json.dumps({"text": e.text_a, "label": names[int(e.label)]}) + "\n" for e in _classification(24))
    )
    out = tmp_path / "model"
    rc = main(
        [
            "-q",
            "train-classifier",
            "--method",
            "dynamar",
            "--train",
            str(train),
            "--encoder",
            str(enc_dir),
            "--steps",
            "3",
            "--max-length",
            "16",
            "--pool-size",
            "2",
            "--output",
            str(out),
            "--log",
            str(tmp_path / "log.jsonl"),
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["pool"]) == 2
    assert json.loads((out / "config.json").read_text())["command"].startswith("selectsearch")
    inp = tmp_path / "in.txt"
    inp.write_text("good alpha river\nbad stone\n")
    pred = tmp_path / "pred.jsonl"
    assert main(["-q", "classify", str(out), "--input", str(inp), "--output", str(pred)]) == 0
    lines = [json.loads(x) for x in pred.read_text().splitlines()]
    assert len(lines) == 2 and all(x["label"] in names for x in lines)
    assert abs(sum(lines[0]["scores"].values()) - 1) < 1e-4
    # errors: one line on stderr, exit 2
    assert main(["classify", str(tmp_path / "missing"), "--input", str(inp)]) == 2
    assert "error" in capsys.readouterr().err


def test_reranker_and_query_classifier() -> None:
    from selectsearch.models.query_classifier import QueryClassifier
    from selectsearch.rerank import CrossEncoderReranker
    from selectsearch.types import Hit, SearchTrace

    pairs = [TextExample(f"query {w}", float(i % 3), f"doc {w} {w}") for i, w in enumerate(WORDS)]
    rel_cfg = ModelConfig(
        method="dynamar",
        kind="regression",
        label_names=("score",),
        slots=("query", "doc"),
        max_length=24,
        pool_size=2,
    )
    rel = train_classifier(pairs, rel_cfg, TrainConfig(steps=2, batch_size=4), encoder=tiny_encoder())
    reranker = CrossEncoderReranker(rel)
    assert reranker.inference == "pool"  # the model's default: mean over its 2 templates
    single = CrossEncoderReranker(rel, inference="single").scores("query alpha", ["doc alpha", "stone"])
    pooled = reranker.scores("query alpha", ["doc alpha", "stone"])
    per_view = rel.view_outputs([("query alpha", "doc alpha"), ("query alpha", "stone")])[:, :, 0]
    np.testing.assert_allclose(single, per_view[0], rtol=1e-5)
    np.testing.assert_allclose(pooled, per_view.mean(axis=0), rtol=1e-5)
    hits = [Hit(f"d{i}", 0.0, 0) for i in range(4)]
    texts = ["doc alpha", "doc river", "doc alpha", "stone"]
    out = reranker.rerank("query alpha", hits, texts)
    assert sorted(h.doc_id for h in out) == [h.doc_id for h in hits]
    assert [h.score for h in out] == sorted((h.score for h in out), reverse=True)
    expected = reranker.scores("query alpha", texts)
    assert {h.doc_id: h.score for h in out} == pytest.approx({f"d{i}": float(s) for i, s in enumerate(expected)})
    assert reranker.rerank("q", [], []) == []
    with pytest.raises(ModelError):
        reranker.rerank("q", hits, texts[:2])

    cls_cfg = ModelConfig(method="finetune", kind="classification", label_names=("g", "b", "m"), max_length=16)
    clf = train_classifier(_classification(12), cls_cfg, TrainConfig(steps=2, batch_size=4), encoder=tiny_encoder())
    qc = QueryClassifier(clf)
    traces = [SearchTrace(f"q{i}", "all", [0], 1) for i in range(2)]
    labels = qc.annotate(["good alpha", "bad river"], traces)
    assert [t.extra["query_class"] for t in traces] == labels
    assert all(lab in ("g", "b", "m") for lab in labels)
    assert "query_class" in traces[0].timings_ms
    assert qc.keep(["good alpha", "bad river"], labels[:1])[0] is True
    with pytest.raises(ModelError):
        QueryClassifier(rel)
    with pytest.raises(ModelError):
        CrossEncoderReranker(clf)
    with pytest.raises(ModelError, match="inference"):
        CrossEncoderReranker(rel, inference="all")


def test_cli_task_k_shot_eval(tmp_path: Path, capsys: Any) -> None:
    from selectsearch.cli import main

    folder = tmp_path / "data" / "classification" / "sentences"
    folder.mkdir(parents=True)
    for split, n in (("train", 30), ("test", 9)):
        lines = [
            json.dumps({"text": f"what is {w} {i}", "coarse": ["DESC", "NUM", "LOC"][i % 3], "fine": "x"})
            for i, w in enumerate(WORDS * 4)
        ][:n]
        (folder / f"trec-{split}.jsonl").write_text("\n".join(lines) + "\n")
    tok, enc = tiny_encoder()
    enc_dir = tmp_path / "tiny"
    enc.save_pretrained(str(enc_dir))
    tok.save_pretrained(str(enc_dir))
    out = tmp_path / "model"
    rc = main(
        [
            "-q",
            "train-classifier",
            "--method",
            "finetune",
            "--task",
            "trec-coarse",
            "--data",
            str(tmp_path / "data"),
            "--k-shot",
            "2",
            "--encoder",
            str(enc_dir),
            "--steps",
            "2",
            "--max-length",
            "16",
            "--output",
            str(out),
            "--eval",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_train"] == 6 and summary["n_test"] == 9
    assert 0 <= summary["test_pool"]["accuracy"] <= 100
    assert summary["test_pool"] == summary["test_single"]  # fine-tuning has one view
    # refusing to overwrite is a one-line error, exit 2
    assert (
        main(
            [
                "train-classifier",
                "--method",
                "finetune",
                "--task",
                "trec-coarse",
                "--data",
                str(tmp_path / "data"),
                "--output",
                str(out),
            ]
        )
        == 2
    )
