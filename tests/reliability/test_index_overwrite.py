"""``index --overwrite`` replaces only a selectsearch index, never a user's folder or a SOURCE (issue 17, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selectsearch.cli import main


def _corpus(path: Path, n: int = 12) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    words = ["rocket orbit", "oven flour", "stock bond", "cell gene"]
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"_id": f"d{i}", "title": f"t{i}", "text": f"{words[i % 4]} note {i}"}) + "\n")
    return path


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.strip()


def _index(*args: str) -> int:
    return main(["-q", "index", *args, "--shards", "2", "--threads", "1", "--partitioner", "random"])


def test_overwrite_refuses_a_folder_of_user_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("precious")
    assert _index(str(corpus), "--out", str(user), "--overwrite") == 2
    err = _err(capsys)
    assert len(err.splitlines()) == 1 and "not a selectsearch index" in err and "notes.txt" in err
    assert (user / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "mine"]


def test_overwrite_refuses_the_folder_holding_the_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _corpus(tmp_path / "srcdir" / "corpus.jsonl")
    before = corpus.read_bytes()
    assert _index(str(corpus), "--out", str(tmp_path / "srcdir"), "--overwrite") == 2
    err = _err(capsys)
    assert len(err.splitlines()) == 1 and "SOURCE" in err
    assert corpus.read_bytes() == before


def test_overwrite_refuses_an_index_holding_a_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Rebuilding an index from its own document store would delete the store being read."""
    corpus = _corpus(tmp_path / "c.jsonl")
    out = tmp_path / "idx"
    assert _index(str(corpus), "--out", str(out)) == 0
    capsys.readouterr()
    store = out / "shards" / "000" / "docs" / "docs.jsonl"
    before = store.read_bytes()
    assert _index(str(store), "--out", str(out), "--overwrite") == 2
    err = _err(capsys)
    assert len(err.splitlines()) == 1 and "SOURCE" in err
    assert store.read_bytes() == before


def test_overwrite_refuses_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    other = tmp_path / "report.txt"
    other.write_text("keep me")
    assert _index(str(corpus), "--out", str(other), "--overwrite") == 2
    assert "not a selectsearch index" in _err(capsys)
    assert other.read_text() == "keep me"


def test_overwrite_still_replaces_an_index_and_an_empty_folder(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    out = tmp_path / "idx"
    assert _index(str(corpus), "--out", str(out)) == 0
    assert _index(str(corpus), "--out", str(out), "--overwrite", "--seed", "3") == 0
    assert json.loads((out / "manifest.json").read_text())["build"]["seed"] == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _index(str(corpus), "--out", str(empty), "--overwrite") == 0
    assert (empty / "manifest.json").exists()


def test_library_refuses_too(tmp_path: Path) -> None:
    from selectsearch.data import open_corpus
    from selectsearch.errors import IndexExistsError
    from selectsearch.index.build import BuildConfig, build_index

    corpus = _corpus(tmp_path / "src" / "c.jsonl")
    with pytest.raises(IndexExistsError, match="SOURCE"):
        build_index(open_corpus(corpus), tmp_path / "src", BuildConfig(n_shards=2, partitioner="random",
                                                                       threads=1, overwrite=True))
    assert corpus.exists()
