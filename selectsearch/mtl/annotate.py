"""Serve a trained multi-task model in the search stack: every head's output in each trace.

One encoder pass per batch of queries produces all task outputs (issue 8, part 4); they are
stored in ``trace.extra["tasks"]`` (label names for classification heads, floats for
regression heads) and the stage's time in ``trace.timings_ms["tasks"]``.

Example:
    >>> from selectsearch.search import SelectiveSearcher
    >>> annotator = MultiTaskAnnotator(MultiTaskModel.load("models/query-mtl/model"))  # doctest: +SKIP
    >>> searcher = SelectiveSearcher.open("indexes/hd", route="mico@2", annotators=[annotator])  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from selectsearch.mtl.model import MultiTaskModel

__all__ = ["MultiTaskAnnotator"]


class MultiTaskAnnotator:
    """A :class:`selectsearch.search.QueryAnnotator` backed by a :class:`MultiTaskModel`."""

    def __init__(self, model: MultiTaskModel, *, key: str = "tasks", tasks: Sequence[str] | None = None) -> None:
        self.model = model
        self.key = key
        self.tasks = list(tasks) if tasks is not None else list(model.task_names)

    def outputs(self, queries: Sequence[str]) -> list[dict[str, Any]]:
        """Per query, ``{task: label name or float}``."""
        raw = self.model.predict(list(queries), tasks=self.tasks)
        out: list[dict[str, Any]] = [{} for _ in queries]
        for task, values in raw.items():
            spec = self.model.specs[task]
            for i, v in enumerate(values):
                if spec.kind == "classification":
                    index = int(v.argmax())
                    out[i][task] = spec.label_names[index] if spec.label_names else index
                else:
                    out[i][task] = float(v)
        return out

    def annotate(self, queries: Sequence[str], traces: Sequence[Any]) -> list[dict[str, Any]]:
        """Store every task's output for each query in its trace."""
        start = time.perf_counter()
        outputs = self.outputs(queries)
        per_query_ms = (time.perf_counter() - start) * 1000 / max(1, len(queries))
        for output, trace in zip(outputs, traces, strict=True):
            trace.extra[self.key] = output
            trace.timings_ms[self.key] = per_query_ms
        return outputs
