"""Queries with more distinct terms than Lucene's default clause limit (1,024) work, and a long
query in a batch leaves the other queries' answers untouched (issue 17, item 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selectsearch.cli import main
from selectsearch.search import SelectiveSearcher

TOPICS = {"space": "rocket orbit planet launch satellite", "cooking": "recipe oven flour sugar butter",
          "finance": "stock market bond interest inflation", "biology": "cell protein gene enzyme mutation"}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    root = tmp_path_factory.mktemp("long")
    corpus = root / "corpus.jsonl"
    with corpus.open("w") as f:
        for topic, words in TOPICS.items():
            for i in range(12):
                text = " ".join(words.split()[j % 5] for j in range(i, i + 7))
                f.write(json.dumps({"_id": f"{topic}-{i}", "title": topic, "text": text}) + "\n")
    out = root / "idx"
    build_index(open_corpus(corpus), out, BuildConfig(n_shards=4, partitioner="kmeans", threads=1,
                                                      partitioner_options={"sample_size": 1000}))
    return out


def _long_query(n_terms: int) -> str:
    return " ".join(f"zz{i}q" for i in range(n_terms)) + " rocket orbit"


@pytest.mark.parametrize("route", ["all", "cori@2", "redde@2", "taily@2", "centroid@2"])
def test_a_query_of_3000_distinct_terms_is_answered(index: Path, route: str) -> None:
    searcher = SelectiveSearcher.open(index, route)
    good = "flour sugar butter"
    alone = searcher.batch_search({"good": good}, k=5)["good"].hits
    both = searcher.batch_search({"long": _long_query(3000), "good": good}, k=5)
    assert both["good"].hits == alone  # one query never affects another
    long_hits = both["long"].hits
    assert long_hits and all(h.doc_id.startswith("space") for h in long_hits)
    # the unknown terms add nothing: the long query ranks like its two known words
    assert [h.doc_id for h in long_hits] == [h.doc_id for h in searcher.search("rocket orbit", k=5)]


def test_long_query_from_the_cli(index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "search", str(index), "--query", _long_query(1500), "--route", "all", "--k", "3"]) == 0
    assert "space-" in capsys.readouterr().out
