"""Bad index-build input is named precisely and early (issue 17, item 16)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from selectsearch.cli import main


def _write(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("gzip", [False, True])
def test_non_utf8_byte_is_reported_on_its_own_line(tmp_path: Path, gzip: bool) -> None:
    import gzip as gz

    from selectsearch.data._io import iter_lines
    from selectsearch.errors import DataFormatError

    lines = [json.dumps({"_id": f"d{i}", "text": f"text {i} " + "x" * 40}).encode() for i in range(1, 301)]
    lines[249] = lines[249].replace(b"text", b"te\xffxt")  # line 250
    body = b"\n".join(lines) + b"\n"
    path = tmp_path / ("c.jsonl.gz" if gzip else "c.jsonl")
    path.write_bytes(gz.compress(body) if gzip else body)
    seen = []
    with pytest.raises(DataFormatError) as info:
        for line_no, _ in iter_lines(path):
            seen.append(line_no)
    assert info.value.line == 250, str(info.value)
    assert seen == list(range(1, 250))


def test_whitespace_only_document_is_named_before_indexing(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _write(tmp_path / "c.jsonl", [{"_id": f"d{i}", "title": "", "text": "   \t" if i == 7 else f"w{i} x"}
                                           for i in range(1, 21)])
    for partitioner in ("random", "kmeans"):
        assert main(["-q", "index", str(corpus), "--out", str(tmp_path / "o"), "--shards", "2", "--threads", "1",
                     "--partitioner", partitioner]) == 2
        err = _one_line(capsys)
        assert f"{corpus}:7" in err and "'d7'" in err, err
        assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


def test_dedupe_first_says_what_it_dropped_with_the_random_partitioner(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _write(tmp_path / "c.jsonl", [{"_id": f"d{i % 15}", "text": f"w{i} x"} for i in range(1, 21)])
    with caplog.at_level(logging.WARNING):
        assert main(["index", str(corpus), "--out", str(tmp_path / "o"), "--shards", "2", "--threads", "1",
                     "--partitioner", "random", "--dedupe", "first"]) == 0
    assert any("dropped 5 repeated doc ids" in r.getMessage() for r in caplog.records)
    assert json.loads(capsys.readouterr().out)["duplicates_dropped"] == 5


def test_random_partitioner_refuses_more_shards_than_documents(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _write(tmp_path / "c.jsonl", [{"_id": f"d{i}", "text": f"w{i} x"} for i in range(10)])
    assert main(["-q", "index", str(corpus), "--out", str(tmp_path / "o"), "--shards", "30", "--threads", "1",
                 "--partitioner", "random"]) == 2
    assert "10 documents cannot fill 30 shards" in _one_line(capsys)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()
