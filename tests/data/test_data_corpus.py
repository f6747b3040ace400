"""open_corpus: BEIR folders, JSONL(.gz), TREC SGML, folders, lists, duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_helpers import make_beir, write_jsonl, write_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selectsearch.data import (
    Corpus,
    CorpusSource,
    DocIdRegistry,
    DuplicateDocIdError,
    check_unique_ids,
    corpus_fingerprint,
    open_corpus,
)
from selectsearch.errors import DataFormatError, DataNotFoundError
from selectsearch.types import Document


def test_beir_folder(tiny_beir: Path) -> None:
    corpus = open_corpus(tiny_beir)
    docs = list(corpus)
    assert docs == [
        Document("d1", "Vitamin D", "Vitamin D and bone fractures."),
        Document("d2", "", "Gene expression in mice."),
        Document("3", "Numbers", "An integer id."),  # non-string id coerced
    ]
    assert docs[0].contents == "Vitamin D\nVitamin D and bone fractures."
    assert docs[1].contents == "Gene expression in mice."
    described = corpus.describe()
    assert described["sources"] == [str(tiny_beir.resolve())]
    assert described["formats"] == ["beir"]
    assert described["files"] == [
        {"path": str((tiny_beir / "corpus.jsonl").resolve()), "format": "jsonl"}
    ]
    json.dumps(described)


def test_reiterable_and_streaming(tiny_beir: Path) -> None:
    corpus = open_corpus(tiny_beir)
    assert list(corpus) == list(corpus)
    first = iter(corpus)
    assert next(first).doc_id == "d1"
    assert corpus.count() == 3


def test_gzipped_beir_and_files(tmp_path: Path) -> None:
    rows = [{"_id": "a", "title": "T", "text": "x"}, {"_id": "b", "text": "y"}]
    folder = make_beir(tmp_path / "gzbeir", rows, [], {}, gz=True)
    assert [d.doc_id for d in open_corpus(folder)] == ["a", "b"]
    gz = write_jsonl(tmp_path / "c.jsonl.gz", rows)
    plain = write_jsonl(tmp_path / "c.jsonl", rows)
    assert list(open_corpus(gz)) == list(open_corpus(plain)) == list(open_corpus(str(plain)))


def test_id_and_text_fields(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "fields.jsonl",
        [
            {"_id": "a", "doc_id": "ignored", "text": "one"},
            {"doc_id": "b", "title": "B", "text": "two"},
            {"id": 7, "contents": "pyserini style"},
            {"id": "c", "title": None, "text": "null title"},
        ],
    )
    assert list(open_corpus(path)) == [
        Document("a", "", "one"),
        Document("b", "B", "two"),
        Document("7", "", "pyserini style"),
        Document("c", "", "null title"),
    ]


def test_blank_lines_skipped_but_counted(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", ['{"_id": "a", "text": "x"}', "", "{bad"])
    with pytest.raises(DataFormatError) as e:
        list(open_corpus(path))
    assert e.value.line == 3


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_malformed_json_names_file_and_line(tmp_path: Path, suffix: str) -> None:
    path = write_lines(
        tmp_path / f"c{suffix}",
        ['{"_id": "a", "text": "x"}', '{"_id": "b", "text": "y"}', '{"_id": "c", "text": '],
    )
    corpus = open_corpus(path)
    with pytest.raises(DataFormatError) as e:
        list(corpus)
    assert e.value.path == str(path.resolve())
    assert e.value.line == 3
    assert str(e.value).startswith(f"{path.resolve()}:3: malformed JSON")
    assert "fix or delete this line" in str(e.value)


def test_not_an_object(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", ['["a", "b"]'])
    with pytest.raises(DataFormatError, match=r":1: expected a JSON object"):
        list(open_corpus(path))


def test_missing_id(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"_id": "a", "text": "x"}, {"text": "no id"}])
    with pytest.raises(DataFormatError, match=r"c\.jsonl:2: no id field: expected one of '_id'"):
        list(open_corpus(path))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"_id": "a", "title": "only a title"}, "has no text"),
        ({"_id": "a"}, "has no text"),
        ({"_id": "a", "text": 5}, "'text' must be a string"),
        ({"_id": "", "text": "x"}, "is empty"),
        ({"_id": ["x"], "text": "x"}, "must be a string or number"),
    ],
)
def test_bad_records(tmp_path: Path, row: dict[str, object], message: str) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [row])
    with pytest.raises(DataFormatError, match=message) as e:
        list(open_corpus(path))
    assert e.value.line == 1


def test_list_of_sources_and_positions(tiny_beir: Path, tmp_path: Path) -> None:
    extra = write_jsonl(tmp_path / "wiki" / "passages-00.jsonl.gz", [{"_id": "w1", "text": "p"}])
    write_jsonl(tmp_path / "wiki" / "passages-01.jsonl.gz", [{"_id": "w2", "text": "q"}])
    (tmp_path / "wiki" / "README.md").write_text("not a corpus file\n")
    corpus = open_corpus([tiny_beir, tmp_path / "wiki"])
    positions = [(d.doc_id, Path(f).name, line) for d, f, line in corpus.iter_with_positions()]
    assert positions == [
        ("d1", "corpus.jsonl", 1),
        ("d2", "corpus.jsonl", 2),
        ("3", "corpus.jsonl", 3),
        ("w1", "passages-00.jsonl.gz", 1),
        ("w2", "passages-01.jsonl.gz", 1),
    ]
    assert corpus.describe()["formats"] == ["beir", "folder"]
    assert [f["path"] for f in corpus.describe()["files"]][1] == str(extra.resolve())
    assert isinstance(corpus, Corpus)
    assert all(isinstance(s, CorpusSource) for s in corpus.sources)


def test_duplicate_ids_name_both_positions(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"_id": "x", "text": "1"}, {"_id": "y", "text": "2"}])
    b = write_jsonl(tmp_path / "b.jsonl.gz", [{"_id": "z", "text": "3"}, {"_id": "y", "text": "4"}])
    corpus = open_corpus([a, b])
    assert len(list(corpus)) == 4  # plain iteration does not check
    with pytest.raises(DuplicateDocIdError) as e:
        list(corpus.iter_checked())
    err = e.value
    assert isinstance(err, DataFormatError)
    assert err.doc_id == "y"
    assert err.first == (str(a.resolve()), 2)
    assert err.second == (str(b.resolve()), 2)
    message = str(err)
    assert f"{a.resolve()}:2" in message and f"{b.resolve()}:2" in message
    assert "remove the duplicate or pass --dedupe first|last" in message
    with pytest.raises(DuplicateDocIdError):
        check_unique_ids((d.doc_id, f, n) for d, f, n in corpus.iter_with_positions())


def test_registry() -> None:
    reg = DocIdRegistry()
    reg.add("a", "f.jsonl", 1)
    reg.add("b", "g.jsonl", 1)
    assert "a" in reg and len(reg) == 2
    assert reg.first_position("b") == ("g.jsonl", 1)
    assert reg.first_position("c") is None
    with pytest.raises(DuplicateDocIdError, match=r"g\.jsonl:9: duplicate doc id 'a' \(first at f"):
        reg.add("a", "g.jsonl", 9)
    assert check_unique_ids([("a", "f", 1), ("b", "f", 2)]) == 2


def test_trec_sgml(tmp_path: Path) -> None:
    lines = [
        "<DOC>",
        "<DOCNO> FBIS3-1 </DOCNO>",
        "<HEADLINE> Big &amp; News </HEADLINE>",
        "<TEXT>",
        "Body <B>bold</B> text.",
        "</TEXT>",
        "</DOC>",
        "<DOC><DOCNO>d2</DOCNO><TEXT>one line</TEXT></DOC><DOC><DOCNO>d3</DOCNO>x</DOC>",
    ]
    for name in ("docs.trec", "docs.sgml.gz", "docs.txt", "la010189.gz"):
        path = write_lines(tmp_path / name, lines)
        got = [(d, n) for d, _, n in open_corpus(path).iter_with_positions()]
        assert got == [
            (Document("FBIS3-1", "Big & News", "Body bold text."), 1),
            (Document("d2", "", "one line"), 8),
            (Document("d3", "", "x"), 8),
        ], name
        assert open_corpus(path).describe()["files"][0]["format"] == "trec"


def test_trec_errors(tmp_path: Path) -> None:
    no_docno = write_lines(tmp_path / "a.trec", ["<DOC>", "<TEXT>x</TEXT>", "</DOC>"])
    with pytest.raises(DataFormatError, match=r"a\.trec:1: document has no <DOCNO>"):
        list(open_corpus(no_docno))
    unclosed = write_lines(tmp_path / "b.trec", ["<DOC>", "<DOCNO>1</DOCNO>", "<DOC>"])
    with pytest.raises(DataFormatError, match=r"b\.trec:1: <DOC> is never closed"):
        list(open_corpus(unclosed))


def test_folder_of_mixed_files(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_lines(folder / "b" / "x.trec", ["<DOC><DOCNO>t1</DOCNO>trec</DOC>"])
    write_jsonl(folder / "a.jsonl", [{"_id": "j1", "text": "json"}])
    write_lines(folder / "notes.tsv", ["a\tb"])
    write_lines(folder / ".hidden.jsonl", ['{"_id": "h", "text": "hidden"}'])
    write_jsonl(folder / "queries.jsonl", [{"_id": "q", "text": "a query, not a document"}])
    assert [d.doc_id for d in open_corpus(folder)] == ["j1", "t1"]


def test_nested_beir_folder_reads_only_corpus(tmp_path: Path, tiny_beir: Path) -> None:
    assert [d.doc_id for d in open_corpus(tmp_path)] == ["d1", "d2", "3"]


def test_missing_and_unknown_sources(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="no such file or folder"):
        open_corpus(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match="no corpus files found"):
        open_corpus(empty)
    odd = write_lines(tmp_path / "weird.csv", ["a,b"])
    with pytest.raises(DataFormatError, match="cannot tell the corpus format"):
        open_corpus(odd)
    with pytest.raises(DataNotFoundError, match="no corpus source"):
        open_corpus([])


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "caf\xe9"}\n')
    with pytest.raises(DataFormatError, match="not valid UTF-8"):
        list(open_corpus(path))


def test_truncated_gzip(tmp_path: Path) -> None:
    rows = [{"_id": str(i), "text": "x" * 50} for i in range(50)]
    good = write_jsonl(tmp_path / "c.jsonl.gz", rows)
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(DataFormatError, match="may be truncated"):
        list(open_corpus(bad))


def test_fingerprint(tiny_beir: Path) -> None:
    import hashlib

    corpus = open_corpus(tiny_beir)
    expected = hashlib.sha256(b"d1\nd2\n3").hexdigest()
    assert corpus.fingerprint() == corpus_fingerprint(corpus.doc_ids()) == expected
    assert corpus_fingerprint([]) == hashlib.sha256(b"").hexdigest()


_ids = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8).filter(
    lambda s: s.strip() == s and s != ""
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(_ids, st.text(max_size=20), st.text(max_size=40)),
        max_size=8,
        unique_by=lambda r: r[0],
    )
)
def test_jsonl_round_trip(tmp_path: Path, rows: list[tuple[str, str, str]]) -> None:
    path = write_jsonl(
        tmp_path / "rt.jsonl.gz", [{"_id": i, "title": t, "text": x} for i, t, x in rows]
    )
    assert list(open_corpus(path).iter_checked()) == [Document(*r) for r in rows]
    assert corpus_fingerprint(i for i, _, _ in rows) == open_corpus(path).fingerprint()
