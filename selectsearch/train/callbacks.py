"""What a training run tells the outside: :class:`TrainState` and the callbacks that watch it.

The kernel (:class:`selectsearch.train.loop.Trainer`) calls, in this order,
``on_train_begin`` once, ``on_step_end`` after every optimiser step, ``on_evaluate`` after
every validation, ``on_event`` when a method reports something (a multi-task head converged...)
and ``on_train_end`` once. A callback may set ``state.should_stop`` to end the run early.

Two callbacks ship: :class:`ProgressCallback` (a tqdm bar on a terminal, log lines otherwise)
and :class:`JsonLogCallback` (one JSON line per event).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PROGRESS_LOG_SECONDS", "JsonLogCallback", "ProgressCallback", "TrainState", "TrainerCallback"]

log = logging.getLogger(__name__)

#: seconds between progress log lines when there is no bar (stderr is not a terminal)
PROGRESS_LOG_SECONDS = 30.0


@dataclass
class TrainState:
    """JSON-serialisable progress of a run (handed to callbacks, saved in checkpoints).

    Attributes:
        step: optimiser steps done.
        max_steps: steps the run will take.
        epoch: passes over the training data done (fractional).
        loss: loss of the last step.
        learning_rate: learning rate of the first parameter group after the last step.
        elapsed_s: seconds since the run (or the resumed session) started.
        step_seconds: seconds spent in optimiser steps only (validation excluded), this session.
        best_metric: best validation value so far (``-inf``: none yet).
        best_step: step of ``best_metric`` (-1: none yet).
        evals_since_best: validations since ``best_metric`` improved.
        should_stop: set to end the run after the current step.
        seed: the run's seed.
        method: the training method's name.
        history: one record per validation.
        run: what the run is (configuration, data sizes), for logs.
        summary: the method's summary, set before ``on_train_end``.
    """

    step: int = 0
    max_steps: int = 0
    epoch: float = 0.0
    loss: float = math.nan
    learning_rate: float = 0.0
    elapsed_s: float = 0.0
    step_seconds: float = 0.0
    best_metric: float = -math.inf
    best_step: int = -1
    evals_since_best: int = 0
    should_stop: bool = False
    seed: int = 0
    method: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The scalar fields (one log line)."""
        d = asdict(self)
        for key in ("history", "run", "summary"):
            d.pop(key)
        return d

    def to_dict(self) -> dict[str, Any]:
        """Everything (checkpoints)."""
        return asdict(self)


class TrainerCallback:
    """Hooks called by the training kernel; override what you need (all no-ops here)."""

    def on_train_begin(self, state: TrainState) -> None:
        """Once, before the first step (also when a run is resumed)."""

    def on_step_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        """After every optimiser step; ``metrics`` are the method's losses of that step."""

    def on_evaluate(self, state: TrainState, metrics: dict[str, Any]) -> None:
        """After every validation; ``metrics`` is the record added to ``state.history``."""

    def on_event(self, state: TrainState, event: dict[str, Any]) -> None:
        """When the method reports an event (e.g. a multi-task head converged)."""

    def on_train_end(self, state: TrainState) -> None:
        """Once, after the last step (the best weights are restored by then)."""


class ProgressCallback(TrainerCallback):
    """A tqdm bar over the steps on a terminal; without one, a log line every 30 seconds.

    Args:
        disable: no bar (``None``: a bar only when stderr is a terminal). Log lines are written
            whenever there is no bar, at INFO level, so ``-q`` hides them.
        desc: the bar's label.
        interval: seconds between log lines (the first and the last step are always logged).
    """

    def __init__(self, *, disable: bool | None = None, desc: str = "train", interval: float | None = None) -> None:
        self.bar_enabled = sys.stderr.isatty() if disable is None else not disable and sys.stderr.isatty()
        self.desc = desc
        self.interval = interval
        self._bar: Any = None
        self._last_log = -math.inf

    def on_train_begin(self, state: TrainState) -> None:
        if self.bar_enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=state.max_steps, initial=state.step, desc=self.desc, unit="step")

    def _postfix(self, state: TrainState) -> str:
        best = f", best {state.best_metric:.4g} at step {state.best_step}" if state.best_step >= 0 else ""
        return f"loss {state.loss:.4f}{best}"

    def on_step_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(self._postfix(state), refresh=False)
            return
        interval = PROGRESS_LOG_SECONDS if self.interval is None else self.interval
        now = time.perf_counter()
        if now - self._last_log >= interval or state.step >= state.max_steps:
            self._last_log = now
            log.info("step %d of %d (%s, epoch %.2f): %s", state.step, state.max_steps, self.desc, state.epoch,
                     self._postfix(state))

    def on_train_end(self, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class JsonLogCallback(TrainerCallback):
    """Append one JSON line per event to ``path``: ``train_begin``, ``step`` (every ``every``
    steps and the last), ``evaluate``, method events and ``train_end``."""

    def __init__(self, path: str | os.PathLike[str], *, every: int = 1) -> None:
        self.path = Path(path)
        self.every = max(1, every)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        """Append one line."""
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def on_train_begin(self, state: TrainState) -> None:
        self.write({"event": "train_begin", **state.to_json()})

    def on_step_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        if state.step % self.every == 0 or state.step == state.max_steps:
            self.write({"event": "step", **state.to_json(), **metrics})

    def on_evaluate(self, state: TrainState, metrics: dict[str, Any]) -> None:
        self.write({"event": "evaluate", **metrics})

    def on_event(self, state: TrainState, event: dict[str, Any]) -> None:
        self.write(event if "event" in event else {"event": "method_event", **event})

    def on_train_end(self, state: TrainState) -> None:
        self.write({"event": "train_end", **state.to_json()})
