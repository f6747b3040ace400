"""iter_logs: click logs in TSV and JSONL, unknown documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import write_jsonl, write_lines

from selectsearch.data import iter_logs
from selectsearch.errors import DataFormatError


def test_tsv_logs(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "clicks.tsv.gz",
        ["query\tdoc_id\tclicks", "red drill\td1\t3", "saw\td2", "", "red drill\td2\t0.5"],
    )
    assert list(iter_logs(path)) == [
        ("red drill", "d1", 3.0),
        ("saw", "d2", 1.0),
        ("red drill", "d2", 0.5),
    ]


def test_jsonl_logs(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "clicks.jsonl",
        [{"query": "a", "doc_id": "d1", "clicks": 2}, {"query": "b", "doc_id": 5}],
    )
    assert list(iter_logs(path)) == [("a", "d1", 2.0), ("b", "5", 1.0)]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["q\td\t1", "only-one-column"], r":2: expected 'query<TAB>doc_id\[<TAB>clicks\]'"),
        (["q\td\tmany"], r":1: clicks 'many' is not a non-negative number"),
        (["q\td\t-1"], r":1: clicks '-1'"),
    ],
)
def test_malformed_logs(tmp_path: Path, lines: list[str], message: str) -> None:
    path = write_lines(tmp_path / "clicks.tsv", lines)
    with pytest.raises(DataFormatError, match=message):
        list(iter_logs(path))


def test_unknown_documents(tmp_path: Path) -> None:
    rows = ["q\td0"] + [f"q{i}\tx{i}" for i in range(7)] + ["q\tx1"]
    path = write_lines(tmp_path / "clicks.tsv", rows)
    logs = iter_logs(path, corpus_ids={"d0"})
    with pytest.raises(DataFormatError) as e:
        next(logs)  # checked before anything is yielded
    message = str(e.value)
    assert message.startswith(f"{path}:2: 8 log records name 7 doc ids that are not in the corpus")
    assert "'x0', 'x1', 'x2', 'x3', 'x4' and 2 more" in message
    assert "filter the log to the corpus or index those documents" in message
    assert list(iter_logs(path, corpus_ids={"d0", *(f"x{i}" for i in range(7))}))[-1] == (
        "q",
        "x1",
        1.0,
    )
