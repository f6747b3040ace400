"""Fixtures for the data reader tests: tiny files written under ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import make_beir

from selectsearch.data import resolve_data_dir
from selectsearch.errors import DataNotFoundError


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    """Three docs, three queries, a test and a train split."""
    return make_beir(
        tmp_path / "tiny",
        [
            {"_id": "d1", "title": "Vitamin D", "text": "Vitamin D and bone fractures."},
            {"_id": "d2", "title": "", "text": "Gene expression in mice."},
            {"_id": 3, "title": "Numbers", "text": "An integer id."},
        ],
        [
            {"_id": "q1", "text": "vitamin d fractures"},
            {"_id": "q2", "text": "mouse genes"},
            {"_id": "q3", "text": "integers"},
        ],
        {
            "test": [("q3", "3", 1), ("q1", "d1", 2), ("q1", "d2", 0)],
            "train": [("q2", "d2", 1)],
        },
    )


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    """The real SciFact BEIR folder (skips when the shared data is absent)."""
    try:
        folder = resolve_data_dir() / "scifact"
    except DataNotFoundError as e:
        pytest.skip(str(e))
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"{folder} has no corpus.jsonl")
    return folder


@pytest.fixture(scope="session")
def wikipedia_dir() -> Path:
    """The real Wikipedia passages folder (skips when absent)."""
    try:
        folder = resolve_data_dir() / "wikipedia"
    except DataNotFoundError as e:
        pytest.skip(str(e))
    if not any(folder.glob("passages-*.jsonl.gz")):
        pytest.skip(f"{folder} has no passages-*.jsonl.gz")
    return folder
