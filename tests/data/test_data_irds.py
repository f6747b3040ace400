"""``irds:`` sources on a local ir_datasets dataset (no network), and the missing-package error."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from data_helpers import write_lines

from selectsearch.data import load_qrels, load_queries, open_corpus
from selectsearch.errors import DataFormatError, DataNotFoundError, DependencyError
from selectsearch.types import Document


class TitledDoc(NamedTuple):
    doc_id: str
    title: str
    text: str

    def default_text(self) -> str:
        return f"{self.title} {self.text}"


@pytest.fixture(autouse=True)
def _irds_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep ir_datasets' cache folder out of the home directory."""
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path_factory.mktemp("ir_datasets_home")))


def _register(tmp_path: Path, *, titled: bool) -> str:
    ir_datasets = pytest.importorskip("ir_datasets")
    from ir_datasets.formats import TrecQrels, TrecQueries, TsvDocs
    from ir_datasets.util import LocalDownload

    docs = write_lines(
        tmp_path / "docs.tsv",
        ["d1\tVitamin D\tbones", "d2\tMice\tgenes"] if titled else ["d1\tbones", "d2\tgenes"],
    )
    topics = write_lines(
        tmp_path / "topics.txt",
        [
            "<top>",
            "<num> Number: 1",
            "<title> vitamin d",
            "<desc> Description: effects of vitamin d on bones",
            "<narr> Narrative: anything",
            "</top>",
        ],
    )
    qrels = write_lines(tmp_path / "qrels.txt", ["1 0 d1 2", "1 0 d2 0"])
    dataset_id = f"selectsearch-test/{uuid.uuid4().hex}"
    components: list[Any] = [
        TsvDocs(LocalDownload(docs), doc_cls=TitledDoc) if titled else TsvDocs(LocalDownload(docs)),
        TrecQueries(LocalDownload(topics), namespace="test"),
        TrecQrels(LocalDownload(qrels), {0: "not relevant", 2: "relevant"}),
    ]
    ir_datasets.registry.register(dataset_id, ir_datasets.Dataset(*components))
    return dataset_id


@pytest.mark.parametrize("titled", [False, True])
def test_irds_corpus(tmp_path: Path, titled: bool) -> None:
    dataset_id = _register(tmp_path, titled=titled)
    corpus = open_corpus(f"irds:{dataset_id}")
    expected = (
        [Document("d1", "Vitamin D", "bones"), Document("d2", "Mice", "genes")]
        if titled
        else [Document("d1", "", "bones"), Document("d2", "", "genes")]
    )
    assert list(corpus) == expected
    assert [(w, n) for _, w, n in corpus.iter_with_positions()] == [
        (f"irds:{dataset_id}", 1),
        (f"irds:{dataset_id}", 2),
    ]
    assert corpus.describe() == {
        "sources": [f"irds:{dataset_id}"],
        "formats": ["irds"],
        "files": [],
    }


def test_irds_queries_and_qrels(tmp_path: Path) -> None:
    dataset_id = _register(tmp_path, titled=False)
    source = f"irds:{dataset_id}"
    assert load_queries(source) == {"1": "vitamin d"}
    assert load_queries(source, field="description") == {"1": "effects of vitamin d on bones"}
    assert load_queries(source, field="title+description") == {
        "1": "vitamin d effects of vitamin d on bones"
    }
    assert load_qrels(source) == {"1": {"d1": 2, "d2": 0}}


def test_irds_errors(tmp_path: Path) -> None:
    ir_datasets = pytest.importorskip("ir_datasets")
    with pytest.raises(DataNotFoundError, match="unknown ir_datasets id"):
        open_corpus("irds:selectsearch-test/does-not-exist")
    from ir_datasets.formats import TsvQueries
    from ir_datasets.util import LocalDownload

    queries = write_lines(tmp_path / "q.tsv", ["1\tx"])
    dataset_id = f"selectsearch-test/{uuid.uuid4().hex}"
    dataset = ir_datasets.Dataset(TsvQueries(LocalDownload(queries)))
    ir_datasets.registry.register(dataset_id, dataset)
    with pytest.raises(DataNotFoundError, match="this dataset has no docs"):
        open_corpus(f"irds:{dataset_id}")
    with pytest.raises(DataNotFoundError, match="this dataset has no qrels"):
        load_qrels(f"irds:{dataset_id}")
    with pytest.raises(DataFormatError, match="no 'description' field"):
        load_queries(f"irds:{dataset_id}", field="description")
    assert load_queries(f"irds:{dataset_id}") == {"1": "x"}


def test_irds_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ir_datasets", None)  # import now raises ImportError
    for call in (
        lambda: open_corpus("irds:beir/scifact"),
        lambda: load_queries("irds:beir/scifact/test"),
        lambda: load_qrels("irds:beir/scifact/test"),
    ):
        with pytest.raises(DependencyError, match=r"pip install 'selectsearch\[irds\]'"):
            call()
