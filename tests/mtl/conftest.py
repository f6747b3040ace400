"""Fixtures for the multi-task tests: tiny random encoders and tasks generated in code."""

from __future__ import annotations

from pathlib import Path

import pytest
from mtl_fixtures import make_task

from selectsearch.mtl.tasks import MTLTask


@pytest.fixture(scope="session")
def tiny() -> tuple[object, object]:
    """Tokenizer + a tiny random BERT (built once; tests deep-copy the model)."""
    from selectsearch.models.encoder import tiny_encoder

    return tiny_encoder(hidden_size=32, layers=2, heads=2, seed=0)


@pytest.fixture()
def two_tasks() -> list[MTLTask]:
    """A classification task and a regression pair task."""
    return [make_task("cls", "classification", seed=1), make_task("reg", "regression", seed=2,
                                                                   pair=True)]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny: tuple[object, object]) -> Path:
    """The tiny encoder saved as a local model folder (for the CLI)."""
    tok, enc = tiny
    folder = tmp_path_factory.mktemp("tiny-encoder")
    enc.save_pretrained(str(folder))  # type: ignore[attr-defined]
    tok.save_pretrained(str(folder))  # type: ignore[attr-defined]
    return folder
