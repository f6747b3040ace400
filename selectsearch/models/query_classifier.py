"""Query understanding with a trained classifier: label queries and record it in their traces."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from selectsearch.errors import ModelError
from selectsearch.models.text_classifier import TextClassifier

__all__ = ["QueryClassifier"]


class QueryClassifier:
    """Labels queries with a trained classifier and records the label in their traces.

    Example:
        >>> qc = QueryClassifier(TextClassifier.load("models/trec-dynamar"))  # doctest: +SKIP
        >>> qc.annotate(["how far is the moon ?"], [result.trace])  # doctest: +SKIP
        ['NUM']
    """

    def __init__(self, model: TextClassifier, *, key: str = "query_class") -> None:
        if model.config.kind != "classification" or len(model.config.slots) != 1:
            raise ModelError("a query classifier needs a single-text classification model")
        self.model = model
        self.key = key

    def classify(self, queries: Sequence[str]) -> list[str]:
        """Predicted label name of each query."""
        names = self.model.config.label_names
        return [names[int(i)] for i in self.model.predict(list(queries))]

    def annotate(self, queries: Sequence[str], traces: Sequence[Any]) -> list[str]:
        """Classify and store ``trace.extra[key]`` and ``timings_ms[key]`` on each trace."""
        if len(queries) != len(traces):
            raise ModelError(f"{len(queries)} queries but {len(traces)} traces")
        start = time.perf_counter()
        labels = self.classify(queries)
        per_query_ms = (time.perf_counter() - start) * 1000 / max(1, len(queries))
        for label, trace in zip(labels, traces, strict=True):
            trace.extra[self.key] = label
            trace.timings_ms[self.key] = per_query_ms
        return labels

    def keep(self, queries: Sequence[str], allowed: Sequence[str]) -> list[bool]:
        """Filter mask: whether each query's predicted label is in ``allowed``."""
        ok = set(allowed)
        return [label in ok for label in self.classify(queries)]
