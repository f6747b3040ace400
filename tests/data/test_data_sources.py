"""resolve_data_dir, transparent gzip, and the cost of importing selectsearch.data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from data_helpers import write_lines

from selectsearch.data import resolve_data_dir
from selectsearch.data._io import iter_lines, xopen
from selectsearch.errors import DataNotFoundError


def test_resolve_explicit_env_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_data_dir(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv("SELECTSEARCH_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path.resolve()
    monkeypatch.delenv("SELECTSEARCH_DATA")
    repo = Path(__file__).resolve().parents[2]
    assert resolve_data_dir(must_exist=False) == (repo.parent / "shared" / "data").resolve()


def test_resolve_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELECTSEARCH_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataNotFoundError, match=r"from \$SELECTSEARCH_DATA\) does not exist; set"):
        resolve_data_dir()
    assert resolve_data_dir(must_exist=False) == (tmp_path / "nope").resolve()


def test_xopen_sniffs_gzip_not_name(tmp_path: Path) -> None:
    gz = write_lines(tmp_path / "a.gz", ["x", "y"])
    renamed = gz.rename(tmp_path / "a.tsv")
    with xopen(renamed) as f:
        assert f.read() == "x\ny\n"
    assert list(iter_lines(renamed)) == [(1, "x"), (2, "y")]
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"a\r\nb\r\n")
    assert list(iter_lines(crlf)) == [(1, "a"), (2, "b")]
    with pytest.raises(DataNotFoundError, match="no such file"):
        xopen(tmp_path / "missing")
    with pytest.raises(DataNotFoundError, match="folder, not a file"):
        xopen(tmp_path)


def test_import_is_cheap() -> None:
    code = (
        "import sys, selectsearch.data; "
        "heavy = [m for m in ('pandas', 'torch', 'numpy', 'ir_datasets', 'jnius', 'faiss') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
