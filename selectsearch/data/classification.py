"""Text classification and regression tasks from ``../shared/data/classification``.

One loader for the GLUE TSVs, the Kim (2014) sentence sets, TREC question types and the Amazon
toys categories, so that every trainer (DynaMaR, multi-task, ReAugKD) reads the same examples.

Task names: ``sst2 mrpc rte cola stsb`` (GLUE; dev set used as test), ``mr cr mpqa subj``
(no official split: seeded 90/10 split), ``trec-coarse trec-fine`` (official train/test),
``toys-l1 toys-l2 toys-l3`` (seeded 80/20 split).

Example:
    >>> task = load_task("sst2")  # doctest: +SKIP
    >>> task.train[0].text_a, task.train[0].label  # doctest: +SKIP
    >>> compute_metrics(task, predictions, [e.label for e in task.test])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from selectsearch.errors import DataFormatError, DataNotFoundError

__all__ = ["TASKS", "Row", "TaskData", "TextExample", "as_rows", "compute_metrics", "data_root", "load_task"]


@dataclass(frozen=True)
class TextExample:
    """One example: a text (or a text pair) and its label (class index or float target)."""

    text_a: str
    label: float | int
    text_b: str | None = None


#: model input: one text, or a text pair, as a tuple of fields
Row = tuple[str | None, ...]


def as_rows(inputs: Sequence[TextExample | str | Sequence[str | None]]) -> list[Row]:
    """Normalise inputs (``TextExample``, a string, or a tuple of strings) to tuples of fields."""
    rows: list[Row] = []
    for x in inputs:
        if isinstance(x, TextExample):
            rows.append((x.text_a,) if x.text_b is None else (x.text_a, x.text_b))
        elif isinstance(x, str):
            rows.append((x,))
        else:
            rows.append(tuple(x))
    return rows

@dataclass
class TaskData:
    """A loaded task. ``kind`` is ``"classification"`` or ``"regression"``."""

    name: str
    kind: str
    label_names: list[str]
    train: list[TextExample]
    test: list[TextExample]
    metrics: tuple[str, ...]
    pair: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        """Number of classes (1 for regression)."""
        return 1 if self.kind == "regression" else len(self.label_names)


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir``, else ``$SELECTSEARCH_DATA``, else ``../shared/data`` next to the repository."""
    if data_dir is not None:
        return Path(data_dir)
    from selectsearch import settings

    return settings.data_root() or settings.default_data_root()


def _read_tsv(path: Path, header: bool) -> list[list[str]]:
    if not path.exists():
        raise DataNotFoundError(f"{path} not found; set SELECTSEARCH_DATA or pass --data")
    rows = []
    with path.open(encoding="utf-8-sig") as f:
        if header:
            next(f, None)
        for line in f:
            line = line.rstrip("\n")
            if line:
                rows.append(line.split("\t"))
    return rows


def _glue(root: Path, name: str) -> TaskData:
    folder = root / "classification" / "glue"

    def load(split: str) -> list[TextExample]:
        out: list[TextExample] = []
        if name == "sst2":
            rows = _read_tsv(folder / "SST-2" / f"{split}.tsv", header=True)
            out = [TextExample(r[0].strip(), int(r[1])) for r in rows]
        elif name == "cola":
            rows = _read_tsv(folder / "CoLA" / f"{split}.tsv", header=False)
            out = [TextExample(r[3], int(r[1])) for r in rows]
        elif name == "mrpc":
            rows = _read_tsv(folder / "MRPC" / f"{split}.tsv", header=True)
            out = [TextExample(r[3], int(r[0]), r[4]) for r in rows]
        elif name == "rte":
            rows = _read_tsv(folder / "RTE" / f"{split}.tsv", header=True)
            out = [TextExample(r[1], 0 if r[3] == "entailment" else 1, r[2]) for r in rows]
        elif name == "stsb":
            rows = _read_tsv(folder / "STS-B" / f"{split}.tsv", header=True)
            out = [TextExample(r[7], float(r[9]), r[8]) for r in rows]
        return out

    spec = {
        "sst2": ("classification", ["negative", "positive"], ("accuracy",), False),
        "cola": ("classification", ["unacceptable", "acceptable"], ("matthews",), False),
        "mrpc": ("classification", ["different", "paraphrase"], ("f1", "accuracy"), True),
        "rte": ("classification", ["entailment", "not_entailment"], ("accuracy",), True),
        "stsb": ("regression", ["score"], ("pearson", "spearman"), True),
    }[name]
    return TaskData(name, spec[0], spec[1], load("train"), load("dev"), spec[2], pair=spec[3])


def _split(examples: list[TextExample], test_fraction: float, seed: int) -> tuple[list[TextExample], list[TextExample]]:
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_test = round(len(examples) * test_fraction)
    test = [examples[i] for i in order[:n_test]]
    train = [examples[i] for i in order[n_test:]]
    return train, test


def _kim(root: Path, name: str, seed: int) -> TaskData:
    file = {"mr": "rt-polarity.all", "cr": "custrev.all", "mpqa": "mpqa.all", "subj": "subj.all"}[name]
    path = root / "classification" / "sentences" / file
    if not path.exists():
        raise DataNotFoundError(f"{path} not found; set SELECTSEARCH_DATA or pass --data")
    examples = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            label, _, text = line.partition(" ")
            if label not in ("0", "1"):
                raise DataFormatError(path, n, f"expected a 0/1 label first, got {label!r}")
            examples.append(TextExample(text, int(label)))
    train, test = _split(examples, 0.1, seed)
    labels = {"subj": ["objective", "subjective"]}.get(name, ["negative", "positive"])
    return TaskData(name, "classification", labels, train, test, ("accuracy",), extra={"split_seed": seed})


def _jsonl_labelled(path: Path, text_key: str, label_key: str) -> list[tuple[str, str]]:
    if not path.exists():
        raise DataNotFoundError(f"{path} not found; set SELECTSEARCH_DATA or pass --data")
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                rows.append((obj[text_key], obj[label_key]))
            except (json.JSONDecodeError, KeyError) as exc:
                raise DataFormatError(path, n, f"bad record ({exc})") from exc
    return rows


def _labelled_task(name: str, train_rows: list[tuple[str, str]], test_rows: list[tuple[str, str]],
                   extra: dict[str, object]) -> TaskData:
    labels = sorted({lab for _, lab in train_rows} | {lab for _, lab in test_rows})
    index = {lab: i for i, lab in enumerate(labels)}
    train = [TextExample(t, index[lab]) for t, lab in train_rows]
    test = [TextExample(t, index[lab]) for t, lab in test_rows]
    return TaskData(name, "classification", labels, train, test, ("accuracy",), extra=extra)


def _trec(root: Path, name: str) -> TaskData:
    key = name.split("-")[1]
    folder = root / "classification" / "sentences"
    return _labelled_task(name, _jsonl_labelled(folder / "trec-train.jsonl", "text", key),
                          _jsonl_labelled(folder / "trec-test.jsonl", "text", key), {})


def _toys(root: Path, name: str, seed: int) -> TaskData:
    key = name.split("-")[1]
    rows = _jsonl_labelled(root / "classification" / "products" / "amazon-toys.jsonl", "text", key)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_test = round(len(rows) * 0.2)
    test = [rows[i] for i in order[:n_test]]
    train = [rows[i] for i in order[n_test:]]
    return _labelled_task(name, train, test, {"split_seed": seed})


TASKS: tuple[str, ...] = ("sst2", "mrpc", "rte", "cola", "stsb", "mr", "cr", "mpqa", "subj",
                          "trec-coarse", "trec-fine", "toys-l1", "toys-l2", "toys-l3")


def load_task(name: str, data_dir: str | os.PathLike[str] | None = None, *, split_seed: int = 0) -> TaskData:
    """Load task ``name`` (see :data:`TASKS`). ``split_seed`` fixes the split where none is official.

    Raises:
        DataNotFoundError: unknown task or missing file.
    """
    root = data_root(data_dir)
    if name in ("sst2", "mrpc", "rte", "cola", "stsb"):
        return _glue(root, name)
    if name in ("mr", "cr", "mpqa", "subj"):
        return _kim(root, name, split_seed)
    if name in ("trec-coarse", "trec-fine"):
        return _trec(root, name)
    if name in ("toys-l1", "toys-l2", "toys-l3"):
        return _toys(root, name, split_seed)
    raise DataNotFoundError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")


def compute_metrics(task: TaskData, predictions: Sequence[float] | np.ndarray,
                    labels: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Task metrics as GLUE defines them, x100, plus ``"score"``: their mean (GLUE's convention).

    ``predictions`` are class indices for classification and floats for regression.
    """
    from scipy import stats

    pred = np.asarray(predictions)
    gold = np.asarray(labels)
    out: dict[str, float] = {}
    for metric in task.metrics:
        if metric == "accuracy":
            out[metric] = float((pred == gold).mean() * 100)
        elif metric == "f1":
            tp = float(((pred == 1) & (gold == 1)).sum())
            fp = float(((pred == 1) & (gold == 0)).sum())
            fn = float(((pred == 0) & (gold == 1)).sum())
            out[metric] = 100 * 2 * tp / max(2 * tp + fp + fn, 1e-9)
        elif metric == "matthews":
            tp = float(((pred == 1) & (gold == 1)).sum())
            tn = float(((pred == 0) & (gold == 0)).sum())
            fp = float(((pred == 1) & (gold == 0)).sum())
            fn = float(((pred == 0) & (gold == 1)).sum())
            denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
            out[metric] = float(100 * (tp * tn - fp * fn) / denom) if denom > 0 else 0.0
        elif metric == "pearson":
            out[metric] = float(100 * stats.pearsonr(pred, gold)[0]) if pred.std() > 0 else 0.0
        elif metric == "spearman":
            out[metric] = float(100 * stats.spearmanr(pred, gold)[0]) if pred.std() > 0 else 0.0
    out["score"] = float(np.mean([out[m] for m in task.metrics]))
    return out
