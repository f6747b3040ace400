"""A damaged index fails loudly, never answers wrongly (issue 17, item 3).

Cheap checks on open (shard folders, doc_ids.txt rows, offsets), Lucene's exceptions as one-line
errors naming shard and file, and ``selectsearch verify`` (checksums, CheckIndex).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from selectsearch import errors
from selectsearch.cli import main

# (looked up so that this file also runs, and fails, on code from before the fix)
CorruptIndexError = getattr(errors, "CorruptIndexError", errors.ShardedIndexError)

TOPICS = ["rocket orbit planet launch", "oven flour sugar butter", "stock market bond loan", "cell protein gene dna"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    root = tmp_path_factory.mktemp("integrity")
    corpus = root / "c.jsonl"
    with corpus.open("w") as f:
        for i in range(80):
            words = TOPICS[i % 4].split()
            text = " ".join(words[(i + j) % 4] for j in range(3 + i % 5)) + f" note{i}"
            f.write(json.dumps({"_id": f"d{i:03d}", "title": "", "text": text}) + "\n")
    out = root / "idx"
    build_index(open_corpus(corpus), out, BuildConfig(n_shards=4, partitioner="random", threads=1))
    return out


@pytest.fixture()
def index(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "idx"
    shutil.copytree(built, copy)
    return copy


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "JavaException" not in err and "jnius" not in err
    return err


def _search(index: Path) -> int:
    return main(["search", str(index), "--query", "rocket orbit", "--route", "all", "--k", "5"])


def test_deleted_doc_ids_line_is_refused(index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from selectsearch.index.sharded import ShardedIndex

    ids = index / "shards" / "001" / "doc_ids.txt"
    lines = ids.read_text().splitlines(keepends=True)
    ids.write_text("".join(lines[:3] + lines[4:]))
    with pytest.raises(CorruptIndexError, match=r"shard 001 shards/001/doc_ids\.txt"):
        ShardedIndex.open(index)
    assert _search(index) == 2
    assert "doc_ids.txt" in _one_line(capsys)
    assert main(["info", str(index)]) == 2
    assert "doc_ids.txt" in _one_line(capsys)
    assert capsys.readouterr().out == ""  # no healthy summary


def test_shifted_offsets_are_refused(index: Path) -> None:
    from selectsearch.index.sharded import ShardedIndex

    path = index / "shards" / "002" / "docs.offsets.npy"
    np.save(path, np.roll(np.load(path), 1))
    with pytest.raises(CorruptIndexError, match=r"shard 002 shards/002/docs\.offsets\.npy"):
        ShardedIndex.open(index)


def test_missing_shard_folder_is_one_line(index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(index / "shards" / "003")
    assert _search(index) == 2
    assert "shard 003" in _one_line(capsys)
    assert not (index / "shards" / "003").exists()  # nothing is created by looking


def test_lucene_exception_names_shard_and_file(index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A truncated Lucene file passes the cheap checks; Lucene's exception becomes one line."""
    tim = next((index / "shards" / "000" / "lucene").glob("*.tim"))
    tim.write_bytes(tim.read_bytes()[:-16])
    assert _search(index) == 2
    err = _one_line(capsys)
    assert "shard 000" in err and tim.name in err and "CorruptIndexException" in err


def test_missing_segments_file_is_one_line(index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    next((index / "shards" / "000" / "lucene").glob("segments_*")).unlink()
    assert _search(index) == 2
    assert "shard 000" in _one_line(capsys)


def test_lucene_document_count_is_checked_when_readers_open(index: Path) -> None:
    """doc_ids.txt and the manifest agree with each other but not with Lucene."""
    from selectsearch.index.sharded import ShardedIndex

    manifest = json.loads((index / "manifest.json").read_text())
    manifest["shards"][1]["n_docs"] -= 1
    del manifest["checksums"]  # as an index built before checksums were recorded
    (index / "manifest.json").write_text(json.dumps(manifest))
    ids = index / "shards" / "001" / "doc_ids.txt"
    ids.write_text("".join(ids.read_text().splitlines(keepends=True)[:-1]))
    offsets = index / "shards" / "001" / "docs.offsets.npy"
    np.save(offsets, np.load(offsets)[:-1])
    opened = ShardedIndex.open(index)
    with pytest.raises(CorruptIndexError, match=r"shard 001 shards/001/lucene has 20 documents"):
        opened.lucene()


def test_verify_finds_flipped_bytes_in_a_norms_file(index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nvd = next((index / "shards" / "002" / "lucene").glob("*.nvd"))
    data = bytearray(nvd.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 8):
        data[i] ^= 0x5A
    nvd.write_bytes(bytes(data))
    assert main(["verify", str(index)]) == 2
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert any(line.startswith("shard 002 ") and nvd.name in line for line in lines), captured.out
    assert len(captured.err.strip().splitlines()) == 1


def test_verify_checksums_of_our_files(index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = index / "shards" / "000" / "doc_ids.txt"
    text = ids.read_text()
    ids.write_text(text.replace("d0", "e0", 1))  # same size, another id
    assert main(["verify", str(index), "--no-lucene", "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"]
    assert any(p["file"] == "shards/000/doc_ids.txt" and "sha256" in p["message"] for p in report["problems"])


def test_verify_healthy_and_old_index(index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(index)]) == 0
    assert "no problems" in capsys.readouterr().out
    manifest = json.loads((index / "manifest.json").read_text())
    assert "shards/000/doc_ids.txt" in manifest["checksums"]
    del manifest["checksums"]  # an index built before checksums were recorded still opens and verifies
    (index / "manifest.json").write_text(json.dumps(manifest))
    assert main(["verify", str(index), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and any("no checksums recorded" in n for n in report["notes"])
    assert main(["info", str(index)]) == 0
