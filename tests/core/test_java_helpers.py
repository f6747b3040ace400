"""The compiled Java helpers change speed, never results: bulk hits equal hits read one by one, and
a subset searcher with global statistics equals filtering the all-shards index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selectsearch.lucene import java_helpers


@pytest.mark.integration
def test_bulk_hits_equal_hit_by_hit(tiny_index: Path) -> None:
    from selectsearch.index.sharded import ShardedIndex

    lucene = ShardedIndex.open(tiny_index).lucene()
    bulk, subsets = lucene._hits, lucene._global_stats
    if bulk is None or subsets is None:
        pytest.skip("no javac on this machine: the helpers are optional")
    cases = [("rocket orbit bank", None), ("protein cell oven", [0]), ("stock market recipe gene", [1, 2]),
             ("rocket recipe protein bank the study", [0, 1, 3]), ("galaxy dna loan", [3, 2])]
    for text, shards in cases:
        fast = lucene.search(text, 50, shards)
        lucene._global_stats = None
        try:
            filtered = lucene.search(text, 50, shards)  # all-shards index with a shard filter
            lucene._hits = None
            slow = lucene.search(text, 50, shards)  # and hits read one by one
        finally:
            lucene._hits, lucene._global_stats = bulk, subsets
        if shards is None:
            assert len(fast[0]) == 50
        else:
            assert len(fast[0]) > 0
        for other in (filtered, slow):
            assert np.array_equal(fast[0], other[0]) and np.array_equal(fast[1], other[1])
        assert fast[0].dtype == np.int64 and fast[1].dtype == np.float32


def test_no_javac_means_no_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path))
    monkeypatch.setattr(java_helpers, "_javac", lambda: None)
    assert java_helpers.helper_classpath(tmp_path / "anserini.jar") is None
    assert not (tmp_path / "java").exists() or not any((tmp_path / "java").rglob("Hits.class"))


@pytest.mark.integration
def test_joined_terms_equal_anserini_analysis() -> None:
    from selectsearch.index.termstats import Analyzer

    analyzer = Analyzer()
    if analyzer._terms is None:
        pytest.skip("no javac on this machine: the helpers are optional")
    texts = ["Vitamin D deficiency and fractures", "", "the and of", "0-dimensional biomaterials show "
             "inductive properties.", "Ωmega-3 fatty acids; 50% risk (CI 1.2–3.4)", "  spaced\tout\nlines  ",
             "p53 U.S. e-mail C++ don't"]
    for text in texts:
        slow = [str(t) for t in analyzer._utils.analyze(analyzer._analyzer, text).toArray()]
        assert analyzer(text) == slow
