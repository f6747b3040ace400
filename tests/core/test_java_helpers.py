"""The compiled Java hit helper returns exactly what reading hits one by one returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selectsearch.lucene import java_helpers


@pytest.mark.integration
def test_bulk_hits_equal_hit_by_hit(tiny_index: Path) -> None:
    from selectsearch.index.sharded import ShardedIndex

    lucene = ShardedIndex.open(tiny_index).lucene()
    bulk = lucene._hits
    if bulk is None:
        pytest.skip("no javac on this machine: the helper is optional")
    for text, shards in [("rocket orbit bank", None), ("protein cell oven", [0]), ("stock market recipe gene", [1, 2])]:
        fast = lucene.search(text, 50, shards)
        lucene._hits = None
        try:
            slow = lucene.search(text, 50, shards)
        finally:
            lucene._hits = bulk
        if shards is None:
            assert len(fast[0]) == 50
        assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])
        assert fast[0].dtype == np.int64 and fast[1].dtype == np.float32


def test_no_javac_means_no_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path))
    monkeypatch.setattr(java_helpers, "_javac", lambda: None)
    assert java_helpers.helper_classpath(tmp_path / "anserini.jar") is None
    assert not (tmp_path / "java").exists() or not any((tmp_path / "java").rglob("Hits.class"))
