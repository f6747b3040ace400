"""The per-shard term statistics read from the Lucene postings (Java helper) are the ones the
analysis of every stored document gives (the path without ``javac``): same terms, same document
frequencies, same BM25 score sums and sums of squares, same token counts; a shard Lucene cannot
read gives one clear error and leaves no statistics behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from selectsearch.errors import CorruptIndexError
from selectsearch.index.sharded import ShardedIndex
from selectsearch.index.termstats import TermStats, build_term_stats, ensure_term_stats


def _stats(tiny_index: Path, folder: Path, *, java: bool) -> TermStats:
    copy = shutil.copytree(tiny_index, folder, ignore=shutil.ignore_patterns("termstats", "csi"))
    index = ShardedIndex.open(copy)
    build_term_stats(index, java=java)
    return ensure_term_stats(index)


def test_postings_give_the_statistics_of_the_stored_documents(tiny_index: Path, tmp_path: Path) -> None:
    java = _stats(tiny_index, tmp_path / "java", java=True)
    python = _stats(tiny_index, tmp_path / "python", java=False)
    assert json.loads((tmp_path / "java" / "termstats" / "config.json").read_text())["source"] == "postings"
    assert set(java.vocabulary) == set(python.vocabulary) and len(java.vocabulary) > 50
    terms = sorted(java.vocabulary)
    cols_java = np.array([java.vocabulary[t] for t in terms])
    cols_python = np.array([python.vocabulary[t] for t in terms])
    for name in ("df", "score_sum", "score_sumsq"):
        got = getattr(java, name)[:, cols_java].toarray()
        want = getattr(python, name)[:, cols_python].toarray()
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=name)
    assert java.df.sum() > 0
    assert np.array_equal(java.shard_tokens, python.shard_tokens)
    assert java.config["avgdl"] == python.config["avgdl"] and java.config["n_terms"] == python.config["n_terms"]


def test_a_damaged_shard_gives_one_clear_error_and_no_statistics(tiny_index: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny_index, tmp_path / "idx", ignore=shutil.ignore_patterns("termstats", "csi"))
    index = ShardedIndex.open(copy)
    for segments in (index.shard_path(index.lucene_shards[0]) / "lucene").glob("segments_*"):
        segments.unlink()  # what a half-copied or damaged shard looks like to Lucene
    with pytest.raises(CorruptIndexError) as caught:
        build_term_stats(index)
    message = str(caught.value)
    assert "\n" not in message and "damaged" in message and "IndexNotFoundException" in message, message
    assert not (copy / "termstats").exists() and not (copy / "termstats.partial").exists()
