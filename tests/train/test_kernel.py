"""The training kernel on a toy regression: callback order, early stopping and the best weights,
checkpoint/resume equal to an uninterrupted run, progress lines without a terminal, the one
schedule (and that it reproduces each trainer's former schedule), the old setting names."""

from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from selectsearch.errors import ModelError  # noqa: E402
from selectsearch.train.arguments import TrainingArguments, arguments_from_dict, new_names  # noqa: E402
from selectsearch.train.callbacks import JsonLogCallback, ProgressCallback, TrainerCallback, TrainState  # noqa: E402
from selectsearch.train.loop import CheckpointPlan, Trainer, TrainingMethod  # noqa: E402
from selectsearch.train.schedule import lr_scheduler, warmup_decay  # noqa: E402


class Toy(TrainingMethod):
    """``y = sum(x)`` with a dropout MLP: batches from a numpy generator, dropout from torch's."""

    name = "toy"
    metric_for_best_model = "score"

    def __init__(self, args: TrainingArguments, total: int, scripted: list[float] | None = None) -> None:
        torch.manual_seed(args.seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(24, 4, generator=gen)
        self.y = self.x.sum(1, keepdim=True)
        self.batch_size = args.batch_size
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=args.learning_rate)
        self.scheduler = lr_scheduler(self.optimizer, args.warmup_before_peak(total), total)
        self.rng = np.random.default_rng(args.seed)
        self.order = self.rng.permutation(len(self.x))
        self.position = 0
        self.passes = 0
        self.scripted = scripted

    def next_batch(self) -> np.ndarray:
        if self.position >= len(self.order):
            self.order, self.position, self.passes = self.rng.permutation(len(self.x)), 0, self.passes + 1
        batch = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return batch

    def compute_loss(self, batch: np.ndarray) -> tuple[Any, dict[str, Any]]:
        self.model.train()
        idx = torch.as_tensor(batch)
        loss = torch.nn.functional.mse_loss(self.model(self.x[idx]), self.y[idx])
        return loss, {"loss": float(loss.detach())}

    def clip_groups(self) -> list[list[Any]]:
        return [list(self.model.parameters())]

    def epoch(self) -> float:
        return self.passes + self.position / len(self.x)

    def epoch_ended(self) -> bool:
        return self.position >= len(self.x)

    def evaluate(self, state: TrainState) -> dict[str, Any]:
        if self.scripted is not None:
            return {"step": state.step, "score": self.scripted[len(state.history)]}
        self.model.eval()
        with torch.no_grad():
            score = -float(torch.nn.functional.mse_loss(self.model(self.x), self.y))
        return {"step": state.step, "score": score}

    def weights(self) -> dict[str, Any]:
        return copy.deepcopy(self.model.state_dict())

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.model.load_state_dict(weights)

    def checkpoint_json(self) -> dict[str, Any]:
        return {"order": self.order.tolist(), "position": self.position, "passes": self.passes,
                "rng": self.rng.bit_generator.state}

    def restore(self, tensors: dict[str, Any], data: dict[str, Any]) -> None:
        self.load_weights(tensors)
        self.order, self.position, self.passes = np.asarray(data["order"]), data["position"], data["passes"]
        self.rng.bit_generator.state = data["rng"]


class Recorder(TrainerCallback):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_train_begin(self, state: TrainState) -> None:
        self.calls.append("begin")

    def on_step_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        self.calls.append(f"step{state.step}")

    def on_evaluate(self, state: TrainState, metrics: dict[str, Any]) -> None:
        self.calls.append(f"eval{metrics['step']}")

    def on_event(self, state: TrainState, event: dict[str, Any]) -> None:
        self.calls.append(f"event:{event['event']}")

    def on_train_end(self, state: TrainState) -> None:
        self.calls.append("end")


ARGS = TrainingArguments(max_steps=12, batch_size=8, learning_rate=1e-2, warmup_ratio=0.25, eval_steps=4, seed=3)


def test_callbacks_are_called_in_order() -> None:
    rec = Recorder()
    trainer = Trainer(Toy(ARGS, 6), TrainingArguments(max_steps=6, batch_size=8, eval_steps=4), total_steps=6,
                      callbacks=[rec])
    trainer.emit({"event": "hello"})
    trainer.train(evaluate_first=True)
    # an epoch is 3 steps: validation at the start, at each epoch end, every 4 steps and at the end
    assert rec.calls == ["event:hello", "begin", "eval0", "step1", "step2", "step3", "eval3", "step4", "eval4",
                         "step5", "step6", "eval6", "end"]


def test_early_stopping_keeps_the_best_weights() -> None:
    args = TrainingArguments(max_steps=30, batch_size=8, eval_steps=1, patience=2, seed=0)
    method = Toy(args, 30, scripted=[0.1, 0.5, 0.4, 0.5, 0.9])
    kept: dict[str, Any] = {}

    class KeepAtStep2(TrainerCallback):
        def on_evaluate(self, state: TrainState, metrics: dict[str, Any]) -> None:
            if state.step == 2:
                kept.update(method.weights())

    state = Trainer(method, args, total_steps=30, callbacks=[KeepAtStep2()]).train()
    # 0.5 at step 2, then two validations without improvement (0.4, a tie 0.5): stop at step 4
    assert state.step == 4 and state.should_stop
    assert state.best_metric == 0.5 and state.best_step == 2 and state.evals_since_best == 2
    for name, value in method.model.state_dict().items():
        assert torch.equal(value, kept[name]), name


def _run(tmp: Path, *, until: int | None = None, resume_from: Path | None = None) -> tuple[Trainer, Toy]:
    args = TrainingArguments(max_steps=12, batch_size=8, learning_rate=1e-2, warmup_ratio=0.25, eval_steps=4,
                             save_steps=4, save_total_limit=2, seed=3)
    method = Toy(args, 12)
    trainer = Trainer(method, args, total_steps=12, checkpoints=CheckpointPlan(tmp, per_step=True))
    if resume_from is not None:
        trainer.load_checkpoint(resume_from)
    trainer.train(until=until)
    return trainer, method


def test_resume_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    straight, a = _run(tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["checkpoint-000008", "checkpoint-000012"]
    _run(tmp_path / "b", until=4)  # interrupted after the first checkpoint
    resumed, b = _run(tmp_path / "c", resume_from=tmp_path / "b" / "checkpoint-000004")
    for name, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[name]), name
    assert resumed.state.step == 12 and resumed.state.history == straight.state.history
    assert resumed.state.best_step == straight.state.best_step


def test_checkpoints_load_tensors_only(tmp_path: Path) -> None:
    trainer, _ = _run(tmp_path / "a", until=4)
    folder = tmp_path / "a" / "checkpoint-000004"

    class Evil:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (print, ("code ran",))

    torch.save({"method": Evil()}, folder / "checkpoint.pt")
    with pytest.raises(ModelError, match="tensors only"):
        trainer.load_checkpoint(folder)
    with pytest.raises(ModelError, match="not a checkpoint"):
        trainer.load_checkpoint(tmp_path)


def test_progress_lines_without_a_terminal(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    log_file = tmp_path / "log.jsonl"
    with caplog.at_level(logging.INFO, logger="selectsearch"):
        Trainer(Toy(ARGS, 12), ARGS, total_steps=12,
                callbacks=[ProgressCallback(desc="toy"), JsonLogCallback(log_file, every=5)]).train()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ") and " of " in r.getMessage()]
    assert lines[0].startswith("step 1 of 12 (toy") and lines[-1].startswith("step 12 of 12 (toy")
    events = [json.loads(x)["event"] for x in log_file.read_text().splitlines()]
    assert events[0] == "train_begin" and events[-1] == "train_end"
    assert events.count("step") == 3  # steps 5, 10 and the last
    assert events.count("evaluate") == 6  # every 4 steps and at each epoch end (3 steps): 3, 4, 6, 8, 9, 12


def test_one_schedule_reproduces_each_former_schedule() -> None:
    # text classifiers / ReAugKD: warmup = int(steps * ratio), (s+1)/(w+1) then linear decay
    steps, ratio = 40, 0.1
    w = int(steps * ratio)
    f = warmup_decay(TrainingArguments(warmup_ratio=ratio).warmup_before_peak(steps), steps)
    former = [(s + 1) / (w + 1) if s < w else max(0.0, (steps - s) / max(1, steps - w)) for s in range(steps)]
    assert [f(s) for s in range(steps)] == former
    # MICO: min(1, (s+1) / max(1, warmup_steps)), constant afterwards
    from selectsearch.mico.config import MicoConfig

    for warmup_steps in (0, 1, 5, 50):
        g = warmup_decay(MicoConfig(warmup_steps=warmup_steps).warmup_before_peak(100), 100, decay="constant")
        assert [g(s) for s in range(80)] == [min(1.0, (s + 1) / max(1, warmup_steps)) for s in range(80)]
    # multi-task, constant schedule (the published runs): (s+1)/W for s < W = max(1, round(ratio * steps))
    from selectsearch.mtl.trainer import TrainConfig

    cfg = TrainConfig(max_steps=300, warmup_ratio=0.05, schedule="constant")
    h = warmup_decay(cfg.warmup_before_peak(300), 300, decay="constant")
    big_w = max(1, round(0.05 * 300))
    assert [h(s) for s in range(300)] == [(s + 1) / big_w if s < big_w else 1.0 for s in range(300)]
    # multi-task, linear schedule: the decay is measured from W
    steps, w2 = 25, max(1, round(0.06 * 25))
    lin = warmup_decay(TrainConfig(max_steps=steps).warmup_before_peak(steps), steps, decay_start=w2)
    assert [lin(s) for s in range(steps)] == [(s + 1) / w2 if s < w2 else max(0.0, (steps - s) / max(1, steps - w2))
                                              for s in range(steps)]


def test_old_setting_names_are_read_as_new_ones() -> None:
    args = TrainingArguments(lr=1e-3, steps=7, clip=0.5, eval_every=3)
    assert (args.learning_rate, args.max_steps, args.max_grad_norm, args.eval_steps) == (1e-3, 7, 0.5, 3)
    saved = {"lr": 2e-4, "head_lr": 1e-2, "warmup": 0.2, "checkpoint_every": 5, "keep_checkpoints": 3,
             "unknown_future_field": 1}
    again = arguments_from_dict(TrainingArguments, saved)
    assert (again.learning_rate, again.head_learning_rate, again.warmup_ratio) == (2e-4, 1e-2, 0.2)
    assert (again.save_steps, again.save_total_limit) == (5, 3)
    with pytest.raises(ModelError, match="same setting"):
        new_names({"lr": 1.0, "learning_rate": 2.0})
    assert TrainingArguments(max_steps=0, epochs=2.5).total_steps(4) == 10
    assert TrainingArguments(max_steps=6, epochs=2.5).total_steps(4) == 6
    assert math.isnan(TrainState().loss)
