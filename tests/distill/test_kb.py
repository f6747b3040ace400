"""The knowledge base: exact inner-product search, self-exclusion, aggregation, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selectsearch.distill.kb import KnowledgeBase, mix
from selectsearch.errors import ModelError


def _kb(n: int = 20, d: int = 8, seed: int = 0) -> tuple[KnowledgeBase, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, d)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return KnowledgeBase(emb, np.eye(n, dtype=np.float32)), emb


def test_search_finds_itself_without_exclusion() -> None:
    kb, emb = _kb()
    scores, ids = kb.search(emb, 3)
    assert (ids[:, 0] == np.arange(len(emb))).all()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_exclusion_drops_the_query_example_itself() -> None:
    kb, emb = _kb()
    _, plain = kb.search(emb, 4)
    _, ids = kb.search(emb, 3, exclude=np.arange(len(emb)))
    assert ids.shape == (20, 3)
    assert not (ids == np.arange(20)[:, None]).any()
    # the remaining neighbours are the next ones of the plain search, in order
    assert (ids == plain[:, 1:4]).all()
    # -1 means: exclude nothing for that row
    _, mixed = kb.search(emb[:2], 2, exclude=[0, -1])
    assert mixed[0, 0] != 0 and mixed[1, 0] == 1


def test_exclusion_with_duplicates_keeps_the_twin() -> None:
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    kb = KnowledgeBase(emb, np.eye(3, dtype=np.float32))
    _, ids = kb.search(emb[:2], 1, exclude=[0, 1])
    assert ids[:, 0].tolist() == [1, 0]


def test_aggregate_and_mix() -> None:
    labels = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    kb = KnowledgeBase(np.eye(2, dtype=np.float32), labels)
    scores = np.array([[0.9, 0.1]], dtype=np.float32)
    ids = np.array([[0, 1]])
    w0 = np.exp(0.9 / 0.2) / (np.exp(0.9 / 0.2) + np.exp(0.1 / 0.2))
    got = kb.aggregate(scores, ids, tau=0.2)
    assert got[0] == pytest.approx([w0, 1 - w0], abs=1e-6)
    out = mix(np.array([[0.0, 1.0]], np.float32), got, 0.25)
    assert out[0] == pytest.approx([0.75 * w0, 0.25 + 0.75 * (1 - w0)], abs=1e-6)


def test_save_load_roundtrip(tmp_path: Path) -> None:
    kb, emb = _kb()
    kb.save(tmp_path)
    back = KnowledgeBase.load(tmp_path)
    assert len(back) == 20 and back.dim == 8
    a = kb.search(emb, 5, exclude=np.arange(20))
    b = back.search(emb, 5, exclude=np.arange(20))
    assert (a[1] == b[1]).all() and np.allclose(a[0], b[0])
    assert (back.labels == kb.labels).all()


def test_bad_inputs_raise() -> None:
    kb, emb = _kb()
    with pytest.raises(ModelError):
        kb.search(emb[:, :4], 2)
    with pytest.raises(ModelError):
        kb.search(emb, 2, exclude=[0])
    with pytest.raises(ModelError):
        KnowledgeBase.load("/nonexistent-kb-folder")
