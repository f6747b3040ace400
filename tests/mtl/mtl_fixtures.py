"""Helpers for the multi-task tests: small tasks generated in code."""

from __future__ import annotations

import json
import random
from pathlib import Path

from selectsearch.data.classification import TaskData, TextExample
from selectsearch.mtl.tasks import MTLTask

WORDS = ["red", "blue", "green", "toy", "car", "ball", "doll", "train", "kite", "game"]


def make_examples(n: int, kind: str, seed: int, pair: bool = False) -> list[TextExample]:
    """``n`` short texts whose label depends on their words (learnable, deterministic)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
        text = " ".join(words)
        second = " ".join(rng.choice(WORDS) for _ in range(3)) if pair else None
        if kind == "regression":
            label: float | int = float(words.count("red") + words.count("blue"))
        else:
            label = int("toy" in words) + int("car" in words)
        out.append(TextExample(text, label, second))
    return out


def make_task(name: str, kind: str = "classification", n: int = 48, seed: int = 0,
              pair: bool = False) -> MTLTask:
    """An :class:`MTLTask` with train / val / test from :func:`make_examples`."""
    labels = ["score"] if kind == "regression" else ["zero", "one", "two"]
    metrics = ("pearson",) if kind == "regression" else ("accuracy",)
    train = make_examples(n, kind, seed, pair)
    val = make_examples(16, kind, seed + 100, pair)
    test = make_examples(16, kind, seed + 200, pair)
    data = TaskData(name, kind, labels, train, test, metrics, pair=pair)
    return MTLTask(name, data, train, val, test)


def write_jsonl(path: Path, examples: list[TextExample], kind: str) -> None:
    """Write examples as JSONL with columns text / pair / label."""
    with path.open("w", encoding="utf-8") as f:
        for e in examples:
            label = e.label if kind == "regression" else ["zero", "one", "two"][int(e.label)]
            f.write(json.dumps({"text": e.text_a, "pair": e.text_b, "label": label}) + "\n")
