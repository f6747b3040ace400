"""Run a trained classifier (from `selectsearch train-classifier`) over texts.

Input: JSON lines with "text" (or "text_a"/"text_b", or "query"/"doc"; an optional "id" is
copied through), or plain text with one input per line (files not ending in .jsonl, or "-"
for stdin). Output: one JSON line per input with "label" and "scores" (classification) or
"score" (regression), to --output or stdout.

Examples:
  selectsearch classify models/trec-dynamar --input questions.txt
  selectsearch classify models/qrel-dynamar --input pairs.jsonl --output scored.jsonl \\
      --inference single
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from selectsearch.errors import DataFormatError, DataNotFoundError

_KEYS = (("query", "doc"), ("text_a", "text_b"), ("text",))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``classify``."""
    parser.add_argument("model", type=Path, help="model folder written by train-classifier")
    parser.add_argument("--input", required=True, help="JSON lines, text lines, or - for stdin")
    parser.add_argument("--output", type=Path, help="JSON lines to write (default stdout)")
    parser.add_argument(
        "--inference",
        choices=("pool", "single"),
        help="DynaMaR: mean over the template pool or the first template (default: as trained)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, help="torch threads")


def _read(source: str) -> tuple[list[tuple[str, ...]], list[Any]]:
    stream: TextIO
    if source == "-":
        stream, jsonl = sys.stdin, False
    else:
        path = Path(source)
        if not path.exists():
            raise DataNotFoundError(f"{path} not found")
        stream, jsonl = path.open(encoding="utf-8"), path.suffix == ".jsonl"
    rows: list[tuple[str, ...]] = []
    ids: list[Any] = []
    with stream:
        for n, line in enumerate(stream, 1):
            if not line.strip():
                continue
            if not jsonl:
                rows.append((line.rstrip("\n"),))
                ids.append(len(ids))
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(source, n, f"not JSON ({exc})") from exc
            keys = next((k for k in _KEYS if all(x in obj for x in k)), None)
            if keys is None:
                raise DataFormatError(source, n, "needs 'text' (or text_a/text_b, or query/doc)")
            rows.append(tuple(str(obj[k]) for k in keys))
            ids.append(obj.get("id", len(ids)))
    return rows, ids


def execute(args: argparse.Namespace) -> int:
    """Predict and write one JSON line per input."""
    import torch

    from selectsearch.errors import ModelError
    from selectsearch.models.text_classifier import TextClassifier

    if args.threads:
        torch.set_num_threads(args.threads)
    clf = TextClassifier.load(args.model)
    rows, ids = _read(args.input)
    if rows and len(rows[0]) != len(clf.config.slots):
        raise ModelError(
            f"the model reads {len(clf.config.slots)} field(s) {clf.config.slots}, "
            f"the input has {len(rows[0])}"
        )
    mode = args.inference or clf.config.inference
    outs = clf.view_outputs(
        rows,
        batch_size=args.batch_size,
        views=[0] if mode == "single" else None,
        progress=not args.quiet,
    )
    mean = outs.mean(axis=0)
    preds = clf.decide(mean)
    out: TextIO = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    try:
        for i, rid in enumerate(ids):
            if clf.config.kind == "regression":
                rec: dict[str, Any] = {"id": rid, "score": float(preds[i])}
            else:
                probs = torch.softmax(torch.from_numpy(mean[i]), dim=0).tolist()
                rec = {
                    "id": rid,
                    "label": clf.config.label_names[int(preds[i])],
                    "label_id": int(preds[i]),
                    "scores": dict(
                        zip(clf.config.label_names, (round(p, 6) for p in probs), strict=True)
                    ),
                }
            out.write(json.dumps(rec) + "\n")
    finally:
        if args.output:
            out.close()
    return 0
