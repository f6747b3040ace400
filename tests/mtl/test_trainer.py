"""The trainer: KD switch, teacher snapshot, evaluation, resume, the served model."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from selectsearch.mtl.losses import distillation_loss
from selectsearch.mtl.model import MultiTaskModel
from selectsearch.mtl.tasks import MTLTask
from selectsearch.mtl.trainer import (
    JsonLogCallback,
    MultiTaskTrainer,
    TrainConfig,
    TrainerCallback,
    build_model,
)
from selectsearch.train.callbacks import TrainState


def make_trainer(tiny: tuple[Any, Any], tasks: list[MTLTask], *, frozen: int = 1,
                 **config: Any) -> MultiTaskTrainer:
    tok, enc = tiny
    model = build_model(tasks, frozen_layers=frozen, max_length=16, seed=0,
                        tokenizer_and_model=(tok, copy.deepcopy(enc)))
    defaults: dict[str, Any] = {"steps": 8, "batch_size": 8, "eval_every": 2, "lr": 1e-3,
                                "eval_batch_size": 16}
    return MultiTaskTrainer(model, tasks, TrainConfig(**{**defaults, **config}))


def test_frozen_cached_path_equals_full_forward(tiny: tuple[Any, Any],
                                                two_tasks: list[MTLTask]) -> None:
    full = make_trainer(tiny, two_tasks, frozen=0).model.eval()
    cached = make_trainer(tiny, two_tasks, frozen=1).model.eval()
    pairs = [("red toy car", None), ("blue ball", "kite game doll")]
    with torch.no_grad():
        a, b = full.shared(pairs), cached.shared(pairs)
    assert torch.allclose(a, b, atol=1e-2)  # the cache stores float16
    assert len(cached.shared.feature_cache) == 2
    assert not any(p.requires_grad for p in cached.shared.encoder.embeddings.parameters())


def test_switched_loss_is_kl_to_stored_soft_labels(tiny: tuple[Any, Any],
                                                   two_tasks: list[MTLTask]) -> None:
    trainer = make_trainer(tiny, two_tasks, method="async-kd")
    n_cls, n_reg = len(two_tasks[0].train), len(two_tasks[1].train)
    gen = torch.Generator().manual_seed(0)
    soft = torch.softmax(torch.randn(n_cls, 3, generator=gen), -1)
    stored_reg = torch.randn(n_reg, generator=gen)
    trainer.soft_labels = {"cls": soft, "reg": stored_reg}
    trainer.model.eval()  # no dropout: the two forwards below match
    batch = {"cls": [3, 1, 4], "reg": [0, 5]}
    losses = trainer.compute_losses(batch)
    with torch.no_grad():
        out_c = trainer.model([(e.text_a, e.text_b) for e in
                               (two_tasks[0].train[i] for i in batch["cls"])])["cls"]
        out_r = trainer.model([(e.text_a, e.text_b) for e in
                               (two_tasks[1].train[i] for i in batch["reg"])])["reg"]
    assert torch.allclose(losses["cls"], distillation_loss("classification", out_c, soft[[3, 1, 4]]),
                          atol=1e-6)
    assert torch.allclose(losses["reg"], torch.mean((out_r - stored_reg[[0, 5]]) ** 2), atol=1e-6)
    # unswitched task: back to the true labels
    del trainer.soft_labels["cls"]
    ce = trainer.compute_losses(batch)["cls"]
    labels = torch.tensor([two_tasks[0].train[i].label for i in batch["cls"]])
    assert torch.allclose(ce, torch.nn.functional.cross_entropy(out_c, labels), atol=1e-6)


def test_soft_labels_come_from_the_best_snapshot(tiny: tuple[Any, Any],
                                                 two_tasks: list[MTLTask]) -> None:
    trainer = make_trainer(tiny, two_tasks, method="async-kd", patience=2)
    pairs = [(e.text_a, e.text_b) for e in two_tasks[0].train]
    at_best = trainer.model.predict(pairs, tasks=["cls"])["cls"]
    trainer.observe_validation(0, {"cls": 90.0, "reg": 10.0})  # best point of cls
    for _ in range(6):
        trainer.training_step()
    current = trainer.model.predict(pairs, tasks=["cls"])["cls"]
    assert not np.allclose(current, at_best, atol=1e-3)  # the weights moved
    assert trainer.observe_validation(6, {"cls": 80.0, "reg": 20.0}) == []
    assert trainer.observe_validation(7, {"cls": 85.0, "reg": 30.0}) == ["cls"]
    assert set(trainer.soft_labels) == {"cls"}
    np.testing.assert_allclose(trainer.soft_labels["cls"].numpy(), at_best, atol=1e-5)
    # current weights are restored after running the teacher
    np.testing.assert_allclose(trainer.model.predict(pairs, tasks=["cls"])["cls"], current,
                               atol=1e-6)
    kinds = [e["event"] for e in trainer.events]
    assert kinds == ["converged", "switch"]
    assert trainer.events[1]["teacher_step"] == 0


def test_baselines_log_convergence_but_never_switch(tiny: tuple[Any, Any],
                                                    two_tasks: list[MTLTask]) -> None:
    trainer = make_trainer(tiny, two_tasks, method="equal", patience=1)
    trainer.observe_validation(0, {"cls": 90.0, "reg": 10.0})
    assert trainer.observe_validation(1, {"cls": 80.0, "reg": 20.0}) == ["cls"]
    assert trainer.soft_labels == {} and trainer.events[0]["event"] == "converged"


class Recorder(TrainerCallback):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_train_begin(self, state: TrainState) -> None:
        self.calls.append("begin")

    def on_evaluate(self, state: TrainState, record: dict[str, Any]) -> None:
        self.calls.append(f"eval{record['step']}")

    def on_train_end(self, state: TrainState) -> None:
        self.calls.append("end")


def test_train_summary_log_and_callbacks(tiny: tuple[Any, Any], two_tasks: list[MTLTask],
                                         tmp_path: Path) -> None:
    trainer = make_trainer(tiny, two_tasks, method="async-kd", patience=1, steps=6)
    rec = Recorder()
    trainer.callbacks = [rec, JsonLogCallback(tmp_path / "log.jsonl")]
    summary = trainer.train()
    assert rec.calls == ["begin", "eval2", "eval4", "eval6", "end"]
    for t in ("cls", "reg"):
        entry = summary["tasks"][t]
        assert {"final_val", "best_val", "final_test", "best_test", "best_step"} <= set(entry)
        assert entry["best_val"] >= entry["final_val"]
    assert set(summary["average"]) == {"final_val", "best_val", "final_test", "best_test"}
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [x["type"] for x in lines][:2] == ["config", "eval"] and lines[-1]["type"] == "summary"


@pytest.mark.parametrize("method", ["async-kd", "gradnorm", "pcgrad", "uncertainty", "dwa"])
def test_resume_from_checkpoint_continues_identically(tiny: tuple[Any, Any],
                                                      two_tasks: list[MTLTask], tmp_path: Path,
                                                      method: str) -> None:
    cfg: dict[str, Any] = {"method": method, "patience": 1, "steps": 8, "checkpoint_every": 4,
           "keep_checkpoints": 2}
    straight = make_trainer(tiny, two_tasks, **cfg)
    full = straight.train(output_dir=tmp_path / "a")
    ckpt = tmp_path / "a" / "checkpoint-000004"
    assert (ckpt / "trainer_state.json").exists()
    resumed = make_trainer(tiny, two_tasks, **cfg)
    resumed.load_checkpoint(ckpt)
    assert resumed.step == 4
    summary = resumed.train(output_dir=tmp_path / "b")
    for (n, p), (_, q) in zip(straight.model.named_parameters(), resumed.model.named_parameters(),
                              strict=True):
        assert torch.equal(p, q), n
    assert summary["average"] == full["average"]
    assert straight.history == resumed.history and straight.events == resumed.events
    if method == "async-kd":
        assert straight.soft_labels and set(straight.soft_labels) == set(resumed.soft_labels)


def test_checkpoint_refuses_other_method(tiny: tuple[Any, Any], two_tasks: list[MTLTask],
                                         tmp_path: Path) -> None:
    from selectsearch.errors import SelectSearchError

    a = make_trainer(tiny, two_tasks, method="equal")
    a.save_checkpoint(tmp_path / "ck")
    with pytest.raises(SelectSearchError, match="method"):
        make_trainer(tiny, two_tasks, method="dwa").load_checkpoint(tmp_path / "ck")
    with pytest.raises(SelectSearchError, match="not a checkpoint"):
        a.load_checkpoint(tmp_path)


def test_model_serves_all_heads_from_one_pass_and_round_trips(
        tiny: tuple[Any, Any], two_tasks: list[MTLTask], tmp_path: Path) -> None:
    trainer = make_trainer(tiny, two_tasks)
    trainer.training_step()
    model = trainer.model
    calls = []
    handle = model.shared.register_forward_hook(lambda *a: calls.append(1))
    texts: list[str | tuple[str, str | None]] = ["red toy car", ("blue ball", "kite game")]
    out = model.predict(texts)
    handle.remove()
    assert len(calls) == 1  # one encoder pass for both heads
    assert out["cls"].shape == (2, 3) and out["reg"].shape == (2,)
    np.testing.assert_allclose(out["cls"].sum(1), 1.0, atol=1e-5)
    model.save(tmp_path / "m", extra={"method": "equal"})
    assert not (tmp_path / "m.partial").exists()
    loaded = MultiTaskModel.load(tmp_path / "m")
    again = loaded.predict(texts)
    for t in out:
        np.testing.assert_allclose(again[t], out[t], atol=1e-2)  # fp16 feature cache
    assert json.loads((tmp_path / "m" / "mtl_model.json").read_text())["method"] == "equal"
