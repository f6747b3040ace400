"""Fixtures of the distributed-build tests: SciFact, its single-machine reference index and
``--route all`` run. The local multi-node Ray cluster on loopback is ``ray_cluster`` of
``tests/conftest.py``, shared with the serving tests (when and where it runs is said there).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from selectsearch.data.sources import resolve_data_dir

#: what the reference and every distributed build of SciFact use (only the executor differs)
SHARDS = 16


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    path = resolve_data_dir() / "scifact"
    if not (path / "corpus.jsonl").exists():
        pytest.skip(f"SciFact not found at {path}")
    return path


def all_run(index: Path, scifact: Path, out: Path) -> bytes:
    """The bytes of the ``selectsearch search --route all`` run of SciFact's test queries on ``index``."""
    from selectsearch.cli import main

    assert main(["-q", "search", str(index), "--queries", str(scifact), "--split", "test", "--route", "all",
                 "--k", "1000", "--output", str(out)]) == 0
    return out.read_bytes()


@pytest.fixture(scope="module")
def reference(scifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The single-machine build of SciFact into 16 k-means shards, and its ``--route all`` run."""
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    root = tmp_path_factory.mktemp("reference")
    index = build_index(open_corpus(scifact_dir), root / "scifact-k16", BuildConfig(n_shards=SHARDS, threads=1))
    return index, all_run(index, scifact_dir, root / "all.run")


