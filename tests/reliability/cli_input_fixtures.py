"""Helpers of the bad-input tests (the fixtures are in this folder's ``conftest.py``)."""

from __future__ import annotations

import pytest


def last_err(capsys: pytest.CaptureFixture[str]) -> str:
    """The last line written to stderr (the CLI's one-line error)."""
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""
