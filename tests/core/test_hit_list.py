"""HitList: a query's hits as columns, read as a list of Hit (issue 20: no Python object per hit
until it is read)."""

from __future__ import annotations

import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from selectsearch.types import Hit, HitList


def _columns(n_docs: int, picks: list[int], scores: list[float]) -> tuple[HitList, list[Hit]]:
    ids = np.array([f"doc-{i:03d}" for i in range(n_docs)], dtype=object)
    shards = np.arange(n_docs, dtype=np.int32) % 3
    rows = np.array(picks, dtype=np.int64)
    sc = np.array(scores, dtype=np.float32)
    expected = [Hit(str(ids[r]), float(s), int(shards[r])) for r, s in zip(picks, sc.tolist(), strict=True)]
    return HitList(ids, rows, sc, shards), expected


@settings(max_examples=80, deadline=None)
@given(data=st.data(), n_docs=st.integers(1, 30))
def test_reads_exactly_as_the_list_of_hits(data: st.DataObject, n_docs: int) -> None:
    picks = data.draw(st.lists(st.integers(0, n_docs - 1), max_size=20))
    scores = data.draw(st.lists(st.floats(-5, 5, width=32), min_size=len(picks), max_size=len(picks)))
    hits, expected = _columns(n_docs, picks, scores)
    # element access before anything is made, then after
    assert [hits[i] for i in range(-len(expected), len(expected))] == expected + expected
    start, stop, step = data.draw(st.tuples(st.integers(-25, 25), st.integers(-25, 25), st.sampled_from([1, 2, -1])))
    assert list(hits[start:stop:step]) == expected[start:stop:step]
    assert hits[start:stop] == expected[start:stop] and expected[start:stop] == hits[start:stop]
    assert len(hits) == len(expected) and list(hits) == expected and hits == expected
    assert (hits.doc_ids, hits.scores, hits.shard_ids) == ([h.doc_id for h in expected], [h.score for h in expected],
                                                           [h.shard_id for h in expected])
    assert hits + [Hit("x", 0.0, 0)] == [*expected, Hit("x", 0.0, 0)]  # noqa: RUF005 - HitList.__add__ is tested
    assert [Hit("x", 0.0, 0)] + hits == [Hit("x", 0.0, 0), *expected]  # noqa: RUF005 - and __radd__
    assert repr(hits) == repr(expected)
    back = pickle.loads(pickle.dumps(hits))
    assert isinstance(back, HitList) and back == expected


def test_pickles_only_its_own_hits_and_refuses_misaligned_columns() -> None:
    ids = np.array([f"document-{i:06d}" for i in range(100_000)], dtype=object)
    hits = HitList(ids, np.array([5, 7]), np.array([2.0, 1.0], np.float32), np.zeros(100_000, np.int32))
    assert len(pickle.dumps(hits)) < 2_000  # not the index-wide id column
    assert hits[1] == Hit("document-000007", 1.0, 0)
    try:
        HitList(ids, np.array([1, 2]), np.array([1.0]), ids)
    except ValueError as exc:
        assert "2 rows but 1 scores" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("misaligned columns accepted")
    assert hits != "not hits" and hits != 3
