"""Task declarations (TOML) and their data: train / validation / test splits per task.

A task file lists ``[[task]]`` tables. A task is either a built-in task of
:mod:`selectsearch.data.classification` (``source = "sst2"``) or a local file
(``path = "train.jsonl"``, JSONL or TSV with a header) with named columns::

    [defaults]            # optional, applies to every task
    val_size = 500        # held out of the training set for validation (int or fraction)
    max_test = 1000

    [[task]]
    name = "sst2"
    source = "sst2"
    max_train = 6000      # seeded subsample of the training set (keeps the size imbalance)

    [[task]]
    name = "intent"
    path = "intent-train.jsonl"      # relative to the TOML file
    test_path = "intent-test.jsonl"  # optional: else test_fraction of path is held out
    text = "query"                   # column of the first text
    text_pair = ""                   # optional second text column
    label = "intent"
    type = "classification"          # or "regression"
    metric = ["accuracy"]            # accuracy f1 matthews pearson spearman

Example:
    >>> specs = load_task_file("eval/mtl/setup_b.toml")  # doctest: +SKIP
    >>> tasks = prepare_tasks(specs)  # doctest: +SKIP
    >>> tasks[0].name, len(tasks[0].train), len(tasks[0].val)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
import random
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from selectsearch.data.classification import TaskData, TextExample, load_task
from selectsearch.errors import DataFormatError, DataNotFoundError, SelectSearchError

__all__ = ["METRICS", "MTLTask", "TaskSpec", "load_task_file", "prepare_tasks"]

METRICS = ("accuracy", "f1", "matthews", "pearson", "spearman")


@dataclass(frozen=True)
class TaskSpec:
    """One declared task (see the module docstring for the TOML keys)."""

    name: str
    source: str | None = None
    path: str | None = None
    test_path: str | None = None
    text: str = "text"
    text_pair: str | None = None
    label: str = "label"
    type: str = "classification"
    metric: tuple[str, ...] = ()
    max_train: int | None = None
    val_size: float = 0.1
    max_test: int | None = None
    test_fraction: float = 0.2
    split_seed: int = 0
    base_dir: str = "."

    def __post_init__(self) -> None:
        if (self.source is None) == (self.path is None):
            raise SelectSearchError(f"task {self.name!r}: give exactly one of source= or path=")
        if self.type not in ("classification", "regression"):
            raise SelectSearchError(f"task {self.name!r}: type must be classification or "
                                    f"regression, got {self.type!r}")
        bad = [m for m in self.metric if m not in METRICS]
        if bad:
            raise SelectSearchError(f"task {self.name!r}: unknown metric {bad}; use {METRICS}")


@dataclass
class MTLTask:
    """A task ready for training: splits plus what :func:`compute_metrics` needs."""

    name: str
    data: TaskData
    train: list[TextExample]
    val: list[TextExample]
    test: list[TextExample] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return self.data.kind

    @property
    def num_labels(self) -> int:
        """Classes (1 for regression)."""
        return self.data.num_labels


def load_task_file(path: str | os.PathLike[str]) -> list[TaskSpec]:
    """Parse a task TOML file into specs (``[defaults]`` merged into every ``[[task]]``).

    Raises:
        DataNotFoundError: the file does not exist.
        SelectSearchError: no tasks, duplicate names or unknown keys.
    """
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"task file {p} not found")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SelectSearchError(f"{p}: invalid TOML ({exc})") from exc
    defaults = doc.get("defaults", {})
    tables = doc.get("task", [])
    if not tables:
        raise SelectSearchError(f"{p}: declare at least one [[task]] table")
    allowed = {f.name for f in fields(TaskSpec)} - {"base_dir"}
    specs = []
    for table in tables:
        merged: dict[str, Any] = {**defaults, **table}
        unknown = set(merged) - allowed
        if unknown:
            raise SelectSearchError(f"{p}: unknown key(s) {sorted(unknown)}; allowed: "
                                    f"{sorted(allowed)}")
        if "name" not in merged:
            merged["name"] = merged.get("source") or Path(str(merged.get("path"))).stem
        metric = merged.get("metric", ())
        merged["metric"] = (metric,) if isinstance(metric, str) else tuple(metric)
        specs.append(TaskSpec(**merged, base_dir=str(p.resolve().parent)))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise SelectSearchError(f"{p}: task names must be unique, got {names}")
    return specs


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise DataNotFoundError(f"{path} not found")
    rows: list[dict[str, str]] = []
    if path.suffix in (".tsv", ".csv"):
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ",")
            rows = [dict(r) for r in reader]
        return rows
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataFormatError(path, n, f"invalid JSON ({exc})") from exc
    return rows


def _file_task(spec: TaskSpec) -> TaskData:
    base = Path(spec.base_dir)

    def examples(path: Path) -> list[tuple[str, Any, str | None]]:
        out = []
        for n, row in enumerate(_read_rows(path), 1):
            try:
                pair = str(row[spec.text_pair]) if spec.text_pair else None
                out.append((str(row[spec.text]), row[spec.label], pair))
            except KeyError as exc:
                raise DataFormatError(path, n, f"missing column {exc}; columns are "
                                               f"{sorted(row)}") from exc
        return out

    train_rows = examples(base / str(spec.path))
    if spec.test_path:
        test_rows = examples(base / spec.test_path)
    else:
        order = list(range(len(train_rows)))
        random.Random(spec.split_seed).shuffle(order)
        n_test = round(len(order) * spec.test_fraction)
        test_rows = [train_rows[i] for i in order[:n_test]]
        train_rows = [train_rows[i] for i in order[n_test:]]
    if spec.type == "regression":
        def conv(rows: list[tuple[str, Any, str | None]]) -> list[TextExample]:
            return [TextExample(a, float(lab), b) for a, lab, b in rows]
        labels = ["score"]
        train, test = conv(train_rows), conv(test_rows)
    else:
        labels = sorted({str(r[1]) for r in train_rows + test_rows})
        index = {lab: i for i, lab in enumerate(labels)}
        train = [TextExample(a, index[str(lab)], b) for a, lab, b in train_rows]
        test = [TextExample(a, index[str(lab)], b) for a, lab, b in test_rows]
    metrics = spec.metric or (("pearson", "spearman") if spec.type == "regression"
                              else ("accuracy",))
    return TaskData(spec.name, spec.type, labels, train, test, metrics,
                    pair=spec.text_pair is not None)


def prepare_tasks(specs: list[TaskSpec], data_dir: str | os.PathLike[str] | None = None
                  ) -> list[MTLTask]:
    """Load every task and cut its splits.

    The validation set is held out of the training set (``val_size`` examples, or that
    fraction when < 1) with a seeded shuffle (``split_seed``), the remaining training set is
    capped at ``max_train`` and the test set at ``max_test`` (seeded subsample). Tasks with
    the same texts and the same seeds get the same splits, so their evaluation texts are
    encoded once.
    """
    tasks = []
    for spec in specs:
        if spec.source is not None:
            data = load_task(spec.source, data_dir, split_seed=spec.split_seed)
            if spec.metric:
                data.metrics = spec.metric
            data.name = spec.name
        else:
            data = _file_task(spec)
        order = list(range(len(data.train)))
        random.Random(spec.split_seed).shuffle(order)
        n_val = int(spec.val_size) if spec.val_size >= 1 else round(len(order) * spec.val_size)
        val = [data.train[i] for i in order[:n_val]]
        rest = order[n_val:]
        if spec.max_train is not None:
            rest = rest[: spec.max_train]
        train = [data.train[i] for i in sorted(rest)]
        test = list(data.test)
        if spec.max_test is not None and len(test) > spec.max_test:
            idx = list(range(len(test)))
            random.Random(spec.split_seed + 1).shuffle(idx)
            test = [test[i] for i in sorted(idx[: spec.max_test])]
        if not train or not val:
            raise SelectSearchError(f"task {spec.name!r}: empty training or validation split "
                                    f"({len(train)} / {len(val)}); lower val_size")
        tasks.append(MTLTask(spec.name, data, train, val, test))
    return tasks
