"""Every SELECTSEARCH_* variable is read in selectsearch/settings.py, when asked for."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from selectsearch import settings

PACKAGE = Path(__file__).resolve().parents[2] / "selectsearch"
NAME = re.compile(r"SELECTSEARCH_[A-Z_]+")


def test_values_follow_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (settings.DATA_ENV, settings.CACHE_ENV, settings.PRECISION_ENV, settings.JAVA_HEAP_ENV,
                 settings.WORKER_HEAP_ENV, settings.JAVAC_HOME_ENV, settings.WORKER_PARENT_ENV,
                 settings.STATIC_ENCODERS_ENV):
        monkeypatch.delenv(name, raising=False)
    assert settings.data_root() is None and settings.default_data_root().parts[-2:] == ("shared", "data")
    assert settings.cache_dir() == Path.home() / ".cache" / "selectsearch"
    assert settings.static_encoders_dir() == settings.cache_dir() / "static-encoders"
    assert settings.encoder_precision() is None
    assert (settings.java_heap(), settings.worker_heap()) == ("2g", "1g")
    assert settings.javac_home() is None and settings.worker_parent() is None
    monkeypatch.setenv(settings.DATA_ENV, str(tmp_path))
    monkeypatch.setenv(settings.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(settings.JAVA_HEAP_ENV, "3g")
    monkeypatch.setenv(settings.WORKER_HEAP_ENV, "512m")
    monkeypatch.setenv(settings.WORKER_PARENT_ENV, "123")
    assert settings.data_root() == tmp_path and settings.cache_dir() == tmp_path / "cache"
    assert settings.static_encoders_dir() == tmp_path / "cache" / "static-encoders"  # follows the cache
    monkeypatch.setenv(settings.STATIC_ENCODERS_ENV, str(tmp_path / "shared-encoders"))
    assert settings.static_encoders_dir() == tmp_path / "shared-encoders"
    assert (settings.java_heap(), settings.worker_heap(), settings.worker_parent()) == ("3g", "512m", 123)


def test_use_encoder_precision_is_what_encoders_default_to(monkeypatch: pytest.MonkeyPatch) -> None:
    from selectsearch.encode import encoder_precision

    monkeypatch.delenv(settings.PRECISION_ENV, raising=False)
    assert encoder_precision() == "fp32"
    monkeypatch.setenv(settings.PRECISION_ENV, "fp32")  # restored by monkeypatch after the test
    settings.use_encoder_precision("bf16")
    assert encoder_precision() == "bf16" and encoder_precision("fp32") == "fp32"


def test_only_settings_names_a_selectsearch_variable() -> None:
    """A variable's name as a string of its own (not inside help text) appears only in settings.py."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value}")
    assert offenders == []
