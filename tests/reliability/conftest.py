"""Fixtures of the reliability tests: a tiny judged collection and its 8-shard index, built once.

The collection is the core tests' planted-topic corpus (``tests/core/conftest.py``) with its test
judgements also written as the train split (tune-route and knn need logs). Everything is
generated under pytest's temporary folders, never in the working tree.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from core.conftest import make_docs, write_beir


@pytest.fixture(scope="session")
def beir8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-document BEIR folder with four judged queries (test and train splits)."""
    folder = write_beir(tmp_path_factory.mktemp("cli-input") / "beir", make_docs())
    shutil.copy(folder / "qrels" / "test.tsv", folder / "qrels" / "train.tsv")
    return folder


@pytest.fixture(scope="session")
def index8(tmp_path_factory: pytest.TempPathFactory, beir8: Path) -> Path:
    """A lexical k-means index of :func:`beir8` with 8 shards (read-only: copy it to change it)."""
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("cli-input-idx") / "tiny-k8"
    build_index(open_corpus(beir8), out, BuildConfig(n_shards=8, partitioner="kmeans", threads=1,
                                                     partitioner_options={"sample_size": 1000}))
    return out


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Embedding caches (knn's logged queries) go to a temporary folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SELECTSEARCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield
