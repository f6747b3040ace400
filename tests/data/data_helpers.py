"""Helpers for the data reader tests: write tiny files (always under a tmp folder)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """Write lines (newline-terminated) to ``path``; gzip when the name ends in ``.gz``."""
    text = "".join(f"{line}\n" for line in lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write one JSON object per line."""
    return write_lines(path, (json.dumps(r) for r in rows))


def make_beir(
    folder: Path,
    docs: list[dict[str, Any]],
    queries: list[dict[str, Any]],
    qrels: dict[str, list[tuple[str, str, int]]],
    *,
    gz: bool = False,
) -> Path:
    """A BEIR folder with ``corpus.jsonl[.gz]``, ``queries.jsonl`` and ``qrels/<split>.tsv``."""
    write_jsonl(folder / ("corpus.jsonl.gz" if gz else "corpus.jsonl"), docs)
    write_jsonl(folder / "queries.jsonl", queries)
    for split, rows in qrels.items():
        write_lines(
            folder / "qrels" / f"{split}.tsv",
            ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t{r}" for q, d, r in rows)],
        )
    return folder
