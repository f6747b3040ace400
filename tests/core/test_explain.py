"""`selectsearch explain` and the router scores in search traces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selectsearch.cli import main


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


def test_explain_lists_every_shard_with_each_routers_scores(tiny_index: Path, tiny_beir: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import make_router
    from selectsearch.types import Query

    assert main(["-q", "explain", str(tiny_index), "--data", str(tiny_beir), "--qid", "q-space", "--route",
                 "centroid", "--route", "cori", "--route", "random", "--route", "ranks", "--budgets", "1,2,9",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    index = ShardedIndex.open(tiny_index)
    assert [s["shard_id"] for s in out["shards"]] == [0, 1, 2, 3]
    assert [s["size"] for s in out["shards"]] == index.shard_sizes.tolist()
    assert out["budgets"] == [1, 2]  # 9 > 4 shards: left out
    # the relevant documents of q-space are the 30 space-* documents: where they lie, shard by shard
    where = np.bincount([index.shard_of_doc[f"space-{i}"] for i in range(30)], minlength=4)
    assert [s["relevant"] for s in out["shards"]] == where.tolist()
    assert out["relevant"]["judged_relevant"] == 30 and out["relevant"]["in_index"] == 30
    query = Query("q-space", "rocket orbit planet")
    for name in ("centroid", "cori"):
        router = make_router(f"{name}@1", index)
        expected = router.scores([query])[0]
        ranking = router.rank([query])[0].tolist()
        got = [s["routers"][name] for s in out["shards"]]
        assert [g["score"] for g in got] == pytest.approx(expected.tolist())
        assert [g["rank"] for g in got] == [ranking.index(s) + 1 for s in range(4)]
        entry = next(r for r in out["routers"] if r["name"] == name)
        assert entry["chosen"] == {"1": sorted(ranking[:1]), "2": sorted(ranking[:2])}
        assert entry["relevant_found"]["2"] == int(where[ranking[:2]].sum())
    # random ranks without scores; ranks (Rank-S) has its own cut-off
    assert {s["routers"]["random"]["score"] for s in out["shards"]} == {None}
    assert "own_cutoff" in next(r for r in out["routers"] if r["name"] == "ranks")
    # the text report names every shard and router too
    assert main(["-q", "explain", str(tiny_index), "--query", "rocket orbit", "--route", "centroid"]) == 0
    text = capsys.readouterr().out.splitlines()
    table = text[text.index("") + 1:]
    assert table[0].split()[:3] == ["shard", "docs", "frac"] and [line.split()[0] for line in table[1:5]] == \
        ["0", "1", "2", "3"]


def test_explain_default_routers_leave_out_what_the_index_cannot_serve(tiny_index: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "explain", str(tiny_index), "--query", "rocket orbit", "--json"]) == 0
    captured = capsys.readouterr()
    names = [r["name"] for r in json.loads(captured.out)["routers"]]
    assert {"centroid", "redde", "ranks", "taily", "cori"} <= set(names) and "mico" not in names
    assert "mico left out" in captured.err


@pytest.mark.parametrize("argv, needle", [
    ([], "pass --query TEXT, or --qid Q"),
    (["--qid", "q-space"], "--qid needs --data"),
    (["--query", "x", "--budgets", "a,b"], "--budgets"),
    (["--query", "x", "--route", "nosuch"], "unknown router"),
    (["--query", "x", "--route", "centroid@1:2"], "one router per --route"),
])
def test_explain_bad_input(argv: list[str], needle: str, tiny_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "explain", str(tiny_index), *argv]) == 2
    assert needle in _err(capsys)


def test_explain_unknown_qid(tiny_index: Path, tiny_beir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "explain", str(tiny_index), "--data", str(tiny_beir), "--qid", "nope"]) == 2
    assert "'nope' is not in" in _err(capsys)


def test_search_trace_records_the_scores_of_the_selected_shards(tiny_index: Path, tiny_beir: Path,
                                                                tmp_path: Path) -> None:
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import make_router
    from selectsearch.types import Query

    trace = tmp_path / "trace.jsonl"
    assert main(["-q", "search", str(tiny_index), "--queries", str(tiny_beir), "--split", "test", "--route",
                 "cori@2", "--output", str(tmp_path / "run.trec"), "--trace", str(trace)]) == 0
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    router = make_router("cori@2", ShardedIndex.open(tiny_index))
    texts = {"q-space": "rocket orbit planet", "q-cooking": "recipe oven flour"}
    for line in lines:
        recorded = line["extra"]["router_scores"]
        assert sorted(int(s) for s in recorded) == line["shards"]  # exactly the selected shards
        if line["query_id"] in texts:
            scores = router.scores([Query(line["query_id"], texts[line["query_id"]])])[0]
            assert recorded == {str(s): pytest.approx(scores[s]) for s in line["shards"]}
            assert list(recorded.values()) == sorted(recorded.values(), reverse=True)  # best first
    # routers without scores record none
    assert main(["-q", "search", str(tiny_index), "--queries", str(tiny_beir), "--split", "test", "--route",
                 "random@2", "--output", str(tmp_path / "run.trec"), "--trace", str(trace)]) == 0
    assert all("router_scores" not in json.loads(x).get("extra", {}) for x in trace.read_text().splitlines())


def test_last_scores_are_those_of_the_last_batch(tiny_index: Path) -> None:
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import make_router
    from selectsearch.types import Query

    router = make_router("centroid@1", ShardedIndex.open(tiny_index))
    a, b = [Query("a", "rocket orbit")], [Query("b", "flour sugar")]
    assert router.last_scores(a) is None
    router.rank(a)
    assert np.array_equal(router.last_scores(a), router.scores(a))
    router.rank(b)
    assert router.last_scores(a) is None and router.last_scores(b) is not None


def test_explain_shows_the_components_of_a_fused_router(tiny_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from selectsearch.index.sharded import ShardedIndex
    from selectsearch.route import make_router
    from selectsearch.types import Query

    assert main(["-q", "explain", str(tiny_index), "--query", "rocket orbit", "--route", "hybrid", "--router-option",
                 "hybrid.routers=centroid,cori", "--router-option", "hybrid.weights=0.25,0.75", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    entries = {r["name"]: r for r in out["routers"]}
    assert set(entries) == {"hybrid", "hybrid/centroid", "hybrid/cori"}
    assert entries["hybrid/cori"]["weight"] == 0.75 and entries["hybrid/cori"]["component_of"] == "hybrid"
    cori = make_router("cori@1", ShardedIndex.open(tiny_index)).scores([Query("q", "rocket orbit")])[0]
    assert [s["routers"]["hybrid/cori"]["score"] for s in out["shards"]] == pytest.approx(cori.tolist())
