"""load_queries, load_qrels and splits over BEIR folders, JSONL, TSV and TREC files."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import write_jsonl, write_lines

from selectsearch.data import load_qrels, load_queries, splits
from selectsearch.errors import DataFormatError, DataNotFoundError

TOPICS = [
    "<top>",
    "<num> Number: 301",
    "<title> International Organized Crime",
    "",
    "<desc> Description:",
    "Identify organizations that participate in",
    "international criminal activity.",
    "",
    "<narr> Narrative:",
    "A relevant document must ...",
    "</top>",
    "",
    "<top>",
    "<num> Number: 302 </num>",
    "<title> Topic: Poliomyelitis and Post-Polio </title>",
    "<desc> Description: Is the disease under control? </desc>",
    "</top>",
]


def test_beir_queries_all_and_split(tiny_beir: Path) -> None:
    assert load_queries(tiny_beir) == {
        "q1": "vitamin d fractures",
        "q2": "mouse genes",
        "q3": "integers",
    }
    test = load_queries(tiny_beir, split="test")
    assert list(test) == ["q1", "q3"]  # file order, not qrels order
    assert load_queries(tiny_beir, split="train") == {"q2": "mouse genes"}


def test_splits(tiny_beir: Path, tmp_path: Path) -> None:
    assert splits(tiny_beir) == ["test", "train"]
    (tmp_path / "noqrels").mkdir()
    assert splits(tmp_path / "noqrels") == []
    with pytest.raises(DataNotFoundError, match="not a folder"):
        splits(tiny_beir / "corpus.jsonl")


def test_missing_split_lists_available(tiny_beir: Path) -> None:
    with pytest.raises(DataNotFoundError) as e:
        load_qrels(tiny_beir, split="dev")
    assert "no qrels for split 'dev'" in str(e.value)
    assert "available splits: test, train" in str(e.value)
    with pytest.raises(DataNotFoundError, match="available splits: test, train"):
        load_queries(tiny_beir, split="dev")
    with pytest.raises(DataNotFoundError, match="pass a split; available: test, train"):
        load_qrels(tiny_beir)


def test_single_split_is_default(tmp_path: Path) -> None:
    write_lines(tmp_path / "b" / "qrels" / "test.tsv", ["query-id\tcorpus-id\tscore", "q\td\t1"])
    assert load_qrels(tmp_path / "b") == {"q": {"d": 1}}


def test_beir_qrels_keep_zero_and_ints(tiny_beir: Path) -> None:
    qrels = load_qrels(tiny_beir, split="test")
    assert qrels == {"q3": {"3": 1}, "q1": {"d1": 2, "d2": 0}}
    assert all(type(r) is int for docs in qrels.values() for r in docs.values())


def test_trec_qrels_file(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "qrels.txt.gz", ["301 0 FBIS3-1 1", "301 0 FBIS3-2 0", "", "302  0  LA-1  2.0"]
    )
    assert load_qrels(path) == {"301": {"FBIS3-1": 1, "FBIS3-2": 0}, "302": {"LA-1": 2}}


def test_beir_tsv_file_with_and_without_header(tmp_path: Path) -> None:
    a = write_lines(tmp_path / "a.tsv", ["query-id\tcorpus-id\tscore", "q1\td 1\t1"])
    b = write_lines(tmp_path / "b.tsv", ["q1\td 1\t1"])
    assert load_qrels(a) == load_qrels(b) == {"q1": {"d 1": 1}}


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (["q 0 d 1", "q 0 d"], 2, "expected 4 columns"),
        (["q d"], 1, "got 2 columns"),
        (["q 0 d 0.5"], 1, "not an integer grade"),
        (["q 0 d high"], 1, "not an integer grade"),
    ],
)
def test_malformed_qrels(tmp_path: Path, lines: list[str], line: int, message: str) -> None:
    path = write_lines(tmp_path / "q.txt", lines)
    with pytest.raises(DataFormatError, match=message) as e:
        load_qrels(path)
    assert e.value.line == line


def test_split_on_a_file_is_an_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "q.txt", ["q 0 d 1"])
    with pytest.raises(DataFormatError, match="only applies to a BEIR folder"):
        load_qrels(path, split="test")
    with pytest.raises(DataFormatError, match="only applies to a BEIR folder"):
        load_queries(write_lines(tmp_path / "q.tsv", ["1\tx"]), split="test")


def test_jsonl_queries_field_names(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "q.jsonl.gz",
        [{"_id": "a", "text": " A "}, {"query_id": 2, "query": "B"}, {"id": "c", "title": "C"}],
    )
    assert load_queries(path) == {"a": "A", "2": "B", "c": "C"}


def test_jsonl_queries_errors(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [{"_id": "a", "text": "x"}, {"_id": "b"}])
    with pytest.raises(DataFormatError, match=r"q\.jsonl:2: no text field"):
        load_queries(path)
    dup = write_jsonl(tmp_path / "d.jsonl", [{"_id": "a", "text": "x"}, {"_id": "a", "text": "y"}])
    with pytest.raises(DataFormatError, match=r"d\.jsonl:2: query id 'a' appears twice"):
        load_queries(dup)


@pytest.mark.parametrize("header", [[], ["query_id\ttext"], ["qid\tquery"]])
def test_tsv_queries(tmp_path: Path, header: list[str]) -> None:
    path = write_lines(tmp_path / "q.tsv", [*header, "1\tfirst query", "2\twith\ttab", ""])
    assert load_queries(path) == {"1": "first query", "2": "with\ttab"}


def test_tsv_queries_missing_tab(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "q.tsv", ["1\tok", "2 no tab"])
    with pytest.raises(DataFormatError, match=r"q\.tsv:2: expected 'query_id<TAB>text'"):
        load_queries(path)


def test_trec_topics(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "topics.301-302.txt", TOPICS)
    assert load_queries(path) == {
        "301": "International Organized Crime",
        "302": "Poliomyelitis and Post-Polio",
    }
    desc = load_queries(path, field="description")
    assert desc["301"] == (
        "Identify organizations that participate in international criminal activity."
    )
    both = load_queries(path, field="title+description")
    assert both["302"] == "Poliomyelitis and Post-Polio Is the disease under control?"


def test_trec_topics_gz_and_xml(tmp_path: Path) -> None:
    gz = write_lines(tmp_path / "topics.gz", TOPICS)
    assert list(load_queries(gz)) == ["301", "302"]
    xml = write_lines(
        tmp_path / "topics.web.xml",
        [
            '<webtrack2009><topic number="1" type="faceted">',
            "<query>obama family tree</query>",
            "<description>Find information on President Obama's family.</description>",
            "</topic></webtrack2009>",
        ],
    )
    assert load_queries(xml) == {"1": "obama family tree"}
    assert load_queries(xml, field="description")["1"].startswith("Find information")


def test_topic_errors(tmp_path: Path) -> None:
    no_desc = write_lines(tmp_path / "t.txt", ["<top>", "<num> Number: 1", "<title> x", "</top>"])
    with pytest.raises(DataFormatError, match="topic has no description text"):
        load_queries(no_desc, field="description")
    no_num = write_lines(tmp_path / "n.txt", ["", "<top>", "<title> x", "</top>"])
    with pytest.raises(DataFormatError, match=r"n\.txt:2: topic has no <num>"):
        load_queries(no_num)
    with pytest.raises(ValueError, match="field must be one of"):
        load_queries(no_num, field="narrative")
    tsv = write_lines(tmp_path / "q.tsv", ["1\tx"])
    with pytest.raises(DataFormatError, match="needs a TREC topic file"):
        load_queries(tsv, field="description")


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="no such file or folder"):
        load_queries(tmp_path / "missing.tsv")
    with pytest.raises(DataNotFoundError, match="no such file or folder"):
        load_qrels(tmp_path / "missing.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match=r"no queries\.jsonl"):
        load_queries(tmp_path / "empty")
