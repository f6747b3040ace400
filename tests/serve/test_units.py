"""Serving pieces that need no Ray: placement, the exact merge, request parsing, the
admission queue, the client's decoding, the CLI's help."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selectsearch.serve.app import Admission, parse_search_request, result_to_json
from selectsearch.serve.client import result_from_json
from selectsearch.serve.config import RequestError, ServeConfig, ServeError
from selectsearch.serve.coordinator import merge_hits
from selectsearch.serve.placement import check_placement, plan_groups
from selectsearch.types import Hit, Query, SearchResult, SearchTrace


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(0, 1000), min_size=1, max_size=40), per_group=st.integers(1, 10))
def test_placement_covers_every_shard_once_within_capacity(sizes: list[int], per_group: int) -> None:
    shards = list(range(len(sizes)))
    groups = plan_groups(sizes, shards, per_group)
    flat = [s for g in groups for s in g]
    assert sorted(flat) == shards
    assert all(1 <= len(g) <= per_group for g in groups)
    assert len(groups) == -(-len(shards) // per_group)
    assert plan_groups(sizes, shards, per_group) == groups  # deterministic


def test_placement_balances_documents() -> None:
    sizes = [100, 90, 10, 5, 50, 45, 3, 2]
    groups = plan_groups(sizes, range(8), 4)
    loads = sorted(sum(sizes[s] for s in g) for g in groups)
    assert loads[1] - loads[0] <= 20  # contiguous halves would be 205 vs 100


def test_explicit_placement_is_checked() -> None:
    assert check_placement([[2, 0], [1]], [0, 1, 2]) == ((0, 2), (1,))
    with pytest.raises(ServeError, match="more than one group"):
        check_placement([[0, 1], [1, 2]], [0, 1, 2])
    with pytest.raises(ServeError, match="missing"):
        check_placement([[0]], [0, 1])
    with pytest.raises(ServeError, match="empty group"):
        check_placement([[0, 1], []], [0, 1])


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ServeError, match="replicas"):
        ServeConfig(replicas=0)
    with pytest.raises(ServeError, match="deadline"):
        ServeConfig(deadline_ms=0)
    with pytest.raises(ServeError, match="route_batch"):
        ServeConfig(route_batch=0)
    assert ServeConfig(placement=((0, 1),)).to_json()["placement"] == [[0, 1]]


@settings(max_examples=60, deadline=None)
@given(scores=st.lists(st.sampled_from([1.0, 1.5, 2.0, 2.5]), min_size=1, max_size=30), n_groups=st.integers(1, 4),
       depth=st.integers(1, 12), seed=st.integers(0, 1000), by_rank=st.booleans())
def test_merge_equals_one_search_over_the_union(scores: list[float], n_groups: int, depth: int, seed: int,
                                                by_rank: bool) -> None:
    """Each group returns its own top-depth cut by (-score, doc id) (engines with tie ranks) or
    by Lucene's (-score, docid); merging them must give the top-depth of the union cut the same
    way, ordered by (-score, doc_id)."""
    n = len(scores)
    rng = np.random.default_rng(seed)
    doc_ids = np.array([f"d{rng.integers(0, 10**6):07d}-{i}" for i in range(n)], dtype=object)
    ranks = np.empty(n, dtype=np.int32)
    ranks[sorted(range(n), key=doc_ids.__getitem__)] = np.arange(n)
    shard_ids = rng.integers(0, n_groups, size=n)
    all_scores = np.array(scores, dtype=np.float32)
    docids = np.arange(n)
    tie = ranks if by_rank else docids

    def engine_top(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = docids[mask]
        order = sorted(idx.tolist(), key=lambda d: (-all_scores[d], tie[d]))[:depth]
        return np.array(order, dtype=np.int64), all_scores[order]

    parts = [engine_top(shard_ids == g) for g in range(n_groups)]
    merged = merge_hits(parts, depth, doc_ids, shard_ids, ranks if by_rank else None)
    union_ids, union_scores = engine_top(np.ones(n, dtype=bool))
    expected = sorted(((doc_ids[d], float(s), int(shard_ids[d])) for d, s in zip(union_ids, union_scores,
                                                                                 strict=True)),
                      key=lambda h: (-h[1], h[0]))
    assert [tuple(h) for h in merged] == expected


def test_merge_of_nothing_is_empty() -> None:
    empty = (np.empty(0, np.int64), np.empty(0, np.float32))
    assert merge_hits([empty, empty], 10, np.array([], dtype=object), np.array([], dtype=np.int32)) == []


@pytest.mark.parametrize(("body", "status", "code"), [
    ([1, 2], 400, "invalid_body"),
    ("text", 400, "invalid_body"),
    ({}, 422, "empty_query"),
    ({"query": "a", "queries": ["b"]}, 422, "empty_query"),
    ({"query": 3}, 422, "empty_query"),
    ({"queries": "abc"}, 422, "empty_query"),
    ({"queries": [{"id": 1}]}, 422, "empty_query"),
    ({"query": "a", "k": "10"}, 422, "k_out_of_range"),
    ({"query": "a", "k": True}, 422, "k_out_of_range"),
    ({"query": "a", "route": 5}, 422, "unknown_route"),
    ({"query": "a", "kk": 5}, 422, "unknown_field"),
])
def test_malformed_bodies_are_refused(body: object, status: int, code: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_search_request(body)
    assert (info.value.status, info.value.code) == (status, code)
    assert info.value.to_json()["message"]


def test_request_shapes() -> None:
    qs, batch, opts = parse_search_request({"queries": {"a": "x y", "b": "z"}, "k": 3, "route": "all"})
    assert qs == [Query("a", "x y"), Query("b", "z")] and batch and opts["k"] == 3 and opts["route"] == "all"
    qs, batch, _ = parse_search_request({"queries": ["x", {"query_id": "q9", "text": "y"}]})
    assert qs == [Query("0", "x"), Query("q9", "y")] and batch


def test_result_json_round_trip() -> None:
    trace = SearchTrace("q", "centroid@2", [0, 3], 42, {"route": 0.1, "search": 2.0}, missing_shards=[3],
                        extra={"groups": [0, 1]})
    result = SearchResult([Hit("d1", 3.5, 0), Hit("d2", 1.25, 0)], trace)
    payload = result_to_json("q", result)
    assert payload["partial"] and payload["missing_shards"] == [3]
    back = result_from_json(payload)
    assert back.hits == result.hits and back.trace.missing_shards == [3] and back.trace.shards == [0, 3]


def test_admission_queue_is_bounded() -> None:
    async def scenario() -> tuple[int, int, dict[str, int]]:
        admission = Admission(max_inflight=2, max_queue=3)
        release = asyncio.Event()
        outcomes: list[str] = []

        async def request() -> None:
            try:
                await admission.acquire()
            except RequestError as err:
                outcomes.append(str(err.status))
                return
            await release.wait()
            admission.release()
            outcomes.append("ok")

        tasks = [asyncio.create_task(request()) for _ in range(10)]
        await asyncio.sleep(0.05)
        assert admission.inflight == 2 and admission.waiting == 3
        release.set()
        await asyncio.gather(*tasks)
        return outcomes.count("ok"), outcomes.count("503"), admission.to_json()

    ok, rejected, counters = asyncio.run(scenario())
    assert (ok, rejected) == (5, 5)
    assert counters["served"] == 5 and counters["rejected"] == 5 and counters["inflight"] == 0


def test_serve_verb_is_registered_with_help(capsys: pytest.CaptureFixture[str]) -> None:
    from selectsearch.cli import main

    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--ray-address" in out and "--replicas" in out and "POST /search" in out
    assert "--engine {serve,starlette}" in out and "--ship-index" in out and "multi-machine" not in out
    assert "Real cluster:" in out and "127.0.0.1" in out
