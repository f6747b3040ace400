"""A multi-task model serves all its heads into search traces with one encoder pass."""

from __future__ import annotations

import copy

from selectsearch.mtl.annotate import MultiTaskAnnotator
from selectsearch.mtl.model import HeadSpec, MultiTaskModel, SharedEncoder
from selectsearch.types import SearchTrace


def test_annotator_writes_every_head_into_traces(tiny: tuple[object, object]) -> None:
    tok, enc = tiny
    shared = SharedEncoder(tok, copy.deepcopy(enc), max_length=16)
    model = MultiTaskModel(shared, [HeadSpec("qtype", "classification", 3, ("a", "b", "c")),
                                    HeadSpec("price", "regression", 1)])
    calls = []
    original = shared.forward

    def counting_forward(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)

    shared.forward = counting_forward  # type: ignore[method-assign]
    traces = [SearchTrace(q, "all", [0], 1) for q in ("q1", "q2")]
    outputs = MultiTaskAnnotator(model).annotate(["cheap drill", "how far is the moon"], traces)
    assert len(calls) == 1  # one encoder pass for both heads and both queries
    for out, trace in zip(outputs, traces, strict=True):
        assert trace.extra["tasks"] == out
        assert out["qtype"] in ("a", "b", "c") and isinstance(out["price"], float)
        assert "tasks" in trace.timings_ms
