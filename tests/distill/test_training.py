"""End to end on tiny random-initialised models: teacher -> projection/KB -> student -> k/alpha,
save/load, self-exclusion through the student, the teacher adapter and the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from selectsearch.data.classification import TextExample
from selectsearch.distill import (
    DistillConfig,
    KnowledgeBase,
    PrecomputedTeacher,
    ReAugKDStudent,
    Teacher,
    distill,
    teacher_from_classifier,
)
from selectsearch.errors import ModelError
from selectsearch.models.classifier_config import ModelConfig, TrainConfig
from selectsearch.models.classifier_training import train_classifier
from selectsearch.models.encoder import tiny_encoder
from selectsearch.models.text_classifier import TextClassifier

WORDS = ["alpha", "delta", "river", "stone", "cloud", "table", "green", "paper"]
CUES = ["good", "bad", "meh"]


def _classification(n: int, seed: int) -> list[TextExample]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = rng.sample(WORDS, 3)
        words.insert(rng.randrange(4), CUES[i % 3])
        out.append(TextExample(" ".join(words), i % 3))
    return out


def _regression(n: int, seed: int) -> list[TextExample]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randrange(4)
        out.append(TextExample(" ".join(["good"] * k + rng.sample(WORDS, 2)), float(k), " ".join(rng.sample(WORDS, 2))))
    return out


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FAST_TEACHER = TrainConfig(
    steps=40, batch_size=16, learning_rate=1e-3, head_learning_rate=1e-2, warmup_ratio=0.0, seed=1
)
FAST = DistillConfig(
    epochs=8,
    batch_size=16,
    lr=1e-3,
    head_lr=1e-2,
    max_length=16,
    proj_epochs=15,
    rel_negatives=8,
    ce_weight=0.5,
    k_grid=(1, 4, 16),
    alpha_grid=(0.0, 0.5, 1.0),
    eval_batch_size=16,
    seed=3,
)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 3-layer teacher fine-tuned on the cue-word task, saved as a classifier folder."""
    cfg = ModelConfig(method="finetune", kind="classification", label_names=("g", "b", "m"), max_length=16)
    clf = train_classifier(_classification(72, 0), cfg, FAST_TEACHER, encoder=tiny_encoder(layers=3, seed=1))
    return clf.save(tmp_path_factory.mktemp("distill") / "teacher")


@pytest.fixture(scope="module")
def trained(teacher_dir: Path) -> tuple[ReAugKDStudent, Any, list[TextExample], list[TextExample]]:
    clf = TextClassifier.load(teacher_dir)
    teacher = teacher_from_classifier(clf, encoder_dir=teacher_dir / "encoder")
    data = _classification(108, 0)
    train, dev, test = data[:72], data[72:90], _classification(30, 5)
    student = distill(
        teacher,
        train,
        dev,
        train_labels=[e.label for e in train],
        dev_labels=[e.label for e in dev],
        config=replace_layers(FAST, 1),
    )
    return student, teacher, train, test


def replace_layers(cfg: DistillConfig, layers: int) -> DistillConfig:
    from dataclasses import replace

    return replace(cfg, layers=layers)


def test_teacher_adapter(teacher_dir: Path) -> None:
    clf = TextClassifier.load(teacher_dir)
    teacher = teacher_from_classifier(clf)
    assert isinstance(teacher, Teacher)
    assert teacher.encoder_dir == "all-MiniLM-L6-v2"  # the encoder the teacher started from
    rows = _classification(10, 9)
    emb, probs = teacher.embed_predict(rows)
    assert emb.shape == (10, 32) and probs.shape == (10, 3)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (probs.argmax(1) == clf.predict(rows)).all()


def test_trains_end_to_end_and_chooses_k_alpha(trained: Any) -> None:
    student, teacher, train, test = trained
    assert len(student.model.encoder.encoder.layer) == 1  # first layer of the 3-layer teacher
    assert student.k in FAST.k_grid and student.alpha in FAST.alpha_grid
    losses = student.extra["train_loss"]
    assert losses[-1]["loss"] < losses[0]["loss"]
    assert losses[-1]["rel"] < losses[0]["rel"]
    proj = student.extra["projection_loss"]
    assert proj[-1] < proj[0]
    assert len(student.kb) == len(train) and student.kb.dim == 32
    probs = student.predict(test)
    assert probs.shape == (30, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    gold = np.array([e.label for e in test])
    teacher_acc = float((teacher.embed_predict(test)[1].argmax(1) == gold).mean())
    assert teacher_acc > 0.8
    assert float((probs.argmax(1) == gold).mean()) > 0.6
    emb = student.embed(test)
    assert emb.shape == (30, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # the dev table holds every (k, alpha) pair and the chosen one is its best
    table = student.extra["dev_selection"]["table"]
    assert len(table) == len(FAST.k_grid) * len(FAST.alpha_grid)
    assert student.extra["dev_best"] == max(r["value"] for r in table)


def test_saved_student_reloads_and_predicts_identically(trained: Any, tmp_path: Path) -> None:
    student, _, _, test = trained
    folder = student.save(tmp_path / "student")
    for name in ("config.json", "kb.faiss", "kb_labels.npy", "head.pt", "encoder/config.json"):
        assert (folder / name).exists(), name
    back = ReAugKDStudent.load(folder)
    assert (back.k, back.alpha, back.task, back.num_outputs) == (student.k, student.alpha, "classification", 3)
    for retrieval in (True, False):
        np.testing.assert_allclose(
            back.predict(test, retrieval=retrieval), student.predict(test, retrieval=retrieval), rtol=1e-6, atol=1e-7
        )
    np.testing.assert_allclose(back.predict(test, k=4, alpha=0.0), student.predict(test, k=4, alpha=0.0), atol=1e-7)
    assert json.loads((folder / "config.json").read_text())["distill_config"]["layers"] == 1
    with pytest.raises(ModelError):
        ReAugKDStudent.load(tmp_path)


def test_bf16_inference_is_close_to_fp32(trained: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from selectsearch.encode import PRECISION_ENV

    student, _, _, test = trained
    fp32 = student.outputs(test)[0]
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    bf16 = student.outputs(test)[0]
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16, fp32, atol=0.05)  # probabilities; bf16 keeps about 3 digits


def test_student_retrieval_on_training_rows_skips_the_row_itself(trained: Any) -> None:
    student, _, train, _ = trained
    n = len(train)
    rng = np.random.default_rng(0)
    distinct = rng.normal(size=(n, 32)).astype(np.float32)
    distinct /= np.linalg.norm(distinct, axis=1, keepdims=True)
    real = student.embed(train)  # may hold exact twins (repeated texts): exclusion must still hold
    student_kb = student.kb
    try:
        student.num_outputs = n
        alone = np.zeros((n, n), np.float32)
        for emb, check_own in ((distinct, True), (real, False)):
            # a KB whose entry j predicts "class j": the prediction reveals which entry was retrieved
            student.kb = KnowledgeBase(emb, np.eye(n, dtype=np.float32))
            student.outputs = lambda rows, batch_size=None, e=emb: (alone, e)  # type: ignore[method-assign]
            if check_own:
                assert (student.predict(train, k=1, alpha=0.0).argmax(1) == np.arange(n)).all()
            other = student.predict(train, k=1, alpha=0.0, exclude=np.arange(n)).argmax(1)
            assert not (other == np.arange(n)).any()
    finally:
        del student.outputs
        student.kb = student_kb
        student.num_outputs = 3


def test_regression_without_labels(tmp_path: Path) -> None:
    cfg = ModelConfig(
        method="finetune", kind="regression", label_names=("score",), slots=("text_a", "text_b"), max_length=24
    )
    data = _regression(70, 0)
    clf = train_classifier(data[:50], cfg, FAST_TEACHER, encoder=tiny_encoder(layers=2, seed=4))
    teacher = PrecomputedTeacher.from_teacher(teacher_from_classifier(clf), data)
    assert teacher.task == "regression" and teacher.predictions.shape == (70, 1)
    student = distill(
        teacher,
        data[:50],
        data[50:],
        config=replace_layers(FAST, 1),
        encoder=tiny_encoder(layers=1, seed=5),
        out=tmp_path / "reg",
    )
    assert student.extra["dev_selection"]["criterion"] == "teacher"
    pred = student.predict(data[50:])
    assert pred.shape == (20, 1)
    t = teacher.predictions[50:, 0]
    # mixing never does worse on dev than the student alone (alpha = 1 is in the grid)
    assert student.extra["dev_best"] >= student.extra["dev_student_alone"]
    assert float(np.mean((pred[:, 0] - t) ** 2)) < float(np.var(t)) * 1.5
    back = ReAugKDStudent.load(tmp_path / "reg")
    np.testing.assert_allclose(back.predict(data[50:]), pred, rtol=1e-5, atol=1e-6)


def test_precomputed_teacher_roundtrip_and_missing_rows(tmp_path: Path) -> None:
    emb = np.arange(6, dtype=np.float32).reshape(3, 2)
    pred = np.array([[1, 0], [0, 1], [0.5, 0.5]], dtype=np.float32)
    t = PrecomputedTeacher("classification", 2, None, ["a", ("b", "c"), TextExample("d", 0)], emb, pred)
    e, p = t.embed_predict([("d",), "a"])
    assert e.tolist() == [[4, 5], [0, 1]] and p[0].tolist() == [0.5, 0.5]
    back = PrecomputedTeacher.load(t.save(tmp_path / "t.npz"))
    assert back.embed_predict([TextExample("b", 1, "c")])[0].tolist() == [[2, 3]]
    with pytest.raises(ModelError):
        t.embed_predict(["zzz"])
    fallback = PrecomputedTeacher("classification", 2, None, ["zzz"], emb[:1] * 0 + 9, pred[:1])
    t.fallback = fallback
    assert t.embed_predict(["zzz", "a"])[0].tolist() == [[9, 9], [0, 1]]


def test_config_and_input_errors(trained: Any) -> None:
    _, teacher, train, _ = trained
    with pytest.raises(ModelError):
        DistillConfig(alpha_grid=(1.5,))
    with pytest.raises(ModelError):
        DistillConfig(k_grid=())
    with pytest.raises(ModelError):
        distill(teacher, train, [], config=FAST)
    with pytest.raises(ModelError):
        distill(teacher, train, train[:4], train_labels=[0, 1], config=FAST)
    no_dir = PrecomputedTeacher("classification", 3, None, train, *teacher.embed_predict(train))
    with pytest.raises(ModelError, match="student_model"):
        distill(no_dir, train, train[:4], config=FAST)


def test_cli_distill(teacher_dir: Path, tmp_path: Path) -> None:
    from selectsearch.cli import main

    data = tmp_path / "train.jsonl"
    with data.open("w") as f:
        for e in _classification(60, 2):
            f.write(json.dumps({"text": e.text_a, "label": CUES[int(e.label)]}) + "\n")
    out = tmp_path / "student"
    code = main(
        [
            "-q",
            "distill",
            "--train",
            str(data),
            "--teacher",
            str(teacher_dir),
            "--student-init",
            "teacher",
            "--layers",
            "1",
            "--max-length",
            "16",
            "--epochs",
            "2",
            "--lr",
            "1e-3",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    student = ReAugKDStudent.load(out)
    assert student.extra["teacher"] == str(teacher_dir) and len(student.kb) == 54  # 10% held out for k/alpha
    assert main(["-q", "distill", "--train", str(data), "--teacher", str(teacher_dir), "--out", str(out)]) == 2
