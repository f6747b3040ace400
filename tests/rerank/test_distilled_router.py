"""The distilled router: MICO teacher adapter, training, round trip, nesting, SelectiveSearcher, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from selectsearch.cli import main
from selectsearch.errors import ModelError, RouteSpecError
from selectsearch.index.sharded import ShardedIndex
from selectsearch.route import make_router, parse_route
from selectsearch.route.distilled import DistilledRouter, MicoTeacher
from selectsearch.types import Query

from .conftest import K


def test_mico_teacher_matches_the_query_head(mico_dir: Path) -> None:
    from selectsearch.route.mico import MicoRouter

    teacher = MicoTeacher(mico_dir)
    assert teacher.task == "classification" and teacher.num_outputs == K
    texts = ["rocket orbit", "flour sugar", "stock bond"]
    emb, dist = teacher.embed_predict(texts)
    assert emb.shape == (3, 32) and dist.shape == (3, K)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)  # the normalised MICO embedding
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, rtol=1e-5)
    logits = MicoRouter(mico_dir).scores([Query(str(i), t) for i, t in enumerate(texts)])
    np.testing.assert_array_equal(dist.argmax(axis=1), logits.argmax(axis=1))
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(dist, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    e2, _ = teacher.embed_predict([("rocket orbit",)])  # 1-tuples (as_rows form) work too
    np.testing.assert_allclose(e2[0], emb[0], rtol=1e-6)


def test_distilled_router_round_trip(router_dir: SimpleNamespace, mico_dir: Path) -> None:
    info = json.loads((router_dir.out / "router.json").read_text())
    assert info["n_shards"] == K and info["teacher"] == str(mico_dir)
    assert info["n_kb"] + info["n_dev"] == len(set(router_dir.queries))
    assert len(router_dir.student.kb) == info["n_kb"]
    qs = [Query(f"t{i}", t) for i, t in enumerate(["rocket orbit", "bake pasta", "gene dna", "bond bank"])]
    a, b = DistilledRouter(router_dir.out), DistilledRouter(router_dir.out)
    np.testing.assert_array_equal(a.scores(qs), b.scores(qs))
    np.testing.assert_array_equal(a.rank(qs), b.rank(qs))
    in_memory = router_dir.student.predict([q.text for q in qs])
    np.testing.assert_allclose(a.scores(qs), in_memory, rtol=1e-5, atol=1e-7)
    alone = DistilledRouter(router_dir.out, retrieval=False)
    np.testing.assert_allclose(alone.scores(qs), router_dir.student.predict([q.text for q in qs], retrieval=False),
                               rtol=1e-5, atol=1e-7)


def test_distilled_router_learns_the_teacher(router_dir: SimpleNamespace, mico_dir: Path) -> None:
    """On the logged (KB) queries the router agrees with the MICO teacher far above chance."""
    teacher = MicoTeacher(mico_dir)
    texts = list(dict.fromkeys(router_dir.queries))
    _, dist = teacher.embed_predict(texts)
    router = DistilledRouter(router_dir.out)
    top = router.rank([Query(str(i), t) for i, t in enumerate(texts)])[:, 0]
    agreement = float(np.mean(top == dist.argmax(axis=1)))
    assert agreement > 0.6, agreement  # chance: about 1/K


def test_router_plugs_into_searcher_and_is_nested(router_dir: SimpleNamespace, index_dir: Path) -> None:
    from selectsearch.search import SelectiveSearcher

    options = {"model": str(router_dir.out)}
    qs = [Query(f"t{i}", t) for i, t in enumerate(["rocket orbit", "bake pasta", "gene dna", "bond bank"])]
    index = ShardedIndex.open(index_dir)
    router = make_router(parse_route("distilled@2"), index, **options)
    ranking = router.rank(qs)
    assert ranking.shape == (4, K)
    assert all(sorted(r) == list(range(K)) for r in ranking.tolist())
    for m in range(1, K):  # nested: the shards at m are among those at m + 1
        for small, big in zip(router.select(qs, m), router.select(qs, m + 1), strict=True):
            assert set(small) < set(big)
    searcher = SelectiveSearcher.open(index_dir, "distilled@2", router_options=options)
    out = searcher.batch_search(qs, k=5)
    for q, sel in zip(qs, router.select(qs, 2), strict=True):
        trace = out[q.query_id].trace
        assert trace.route == "distilled@2" and sorted(trace.shards) == sorted(sel)
        assert trace.timings_ms["route"] > 0  # the student's cost shows in the trace
        assert all(h.shard_id in sel for h in out[q.query_id].hits)


def test_factory_finds_the_index_folder_and_checks_options(router_dir: SimpleNamespace, index_dir: Path,
                                                           tmp_path: Path) -> None:
    index_copy = tmp_path / "idx"
    shutil.copytree(index_dir, index_copy)
    index = ShardedIndex.open(index_copy)
    with pytest.raises(RouteSpecError, match="distill-router"):
        make_router("distilled@2", index)
    shutil.copytree(router_dir.out, index_copy / "distilled-router")
    router = make_router("distilled@2", index)
    alone = make_router("distilled@2", index, retrieval="0")
    assert isinstance(router, DistilledRouter) and router.retrieval and not alone.retrieval  # type: ignore[attr-defined]
    with pytest.raises(RouteSpecError, match="unknown options"):
        make_router("distilled@2", index, mico_model="x")
    with pytest.raises(ModelError):
        DistilledRouter(tmp_path)


def test_shard_count_mismatch(router_dir: SimpleNamespace, index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selectsearch.route import distilled

    router = DistilledRouter(router_dir.out)
    router.n_shards = K + 1  # what a student of a MICO model with another K reports
    monkeypatch.setattr(distilled, "DistilledRouter", lambda *a, **kw: router)
    with pytest.raises(RouteSpecError, match="shards"):
        make_router("distilled@2", ShardedIndex.open(index_dir), model=str(router_dir.out))


def test_cli_distill_router(mico_dir: Path, beir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-router"
    code = main(["-q", "distill-router", str(beir), "--logs", "train", "--mico-model", str(mico_dir), "--out",
                 str(out), "--layers", "1", "--epochs", "1", "--batch-size", "8"])
    assert code == 0
    assert DistilledRouter(out).n_shards == K
    assert main(["-q", "distill-router", str(beir), "--mico-model", str(mico_dir), "--out", str(out)]) == 2
    assert main(["-q", "distill-router", str(beir), "--out", str(out)]) == 2  # no teacher given
