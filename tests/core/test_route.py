"""Route specs and router rankings (no index needed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selectsearch.errors import RouteSpecError
from selectsearch.route import options_for, parse_route, rank_by_scores
from selectsearch.route.simple import ExhaustiveRouter, OracleRouter, RandomRouter
from selectsearch.types import Query


@pytest.mark.parametrize("spec,name,budget", [("all", "all", None), ("centroid@2", "centroid", 2),
                                              ("Random@16", "random", 16), ("oracle@1", "oracle", 1)])
def test_parse_valid(spec: str, name: str, budget: int | None) -> None:
    parsed = parse_route(spec)
    assert (parsed.name, parsed.budget) == (name, budget)


def test_parse_range_expands_and_caps() -> None:
    assert [s.budget for s in parse_route("random@2:5").expand()] == [2, 3, 4, 5]
    assert [s.budget for s in parse_route("random@1:8").expand(n_shards=3)] == [1, 2, 3]


@pytest.mark.parametrize("spec", ["centroid", "centroid@0", "foo@2", "all@3", "centroid@x", "random@4:2", ""])
def test_parse_invalid(spec: str) -> None:
    with pytest.raises(RouteSpecError):
        parse_route(spec)


def test_rank_ties_broken_by_shard_id() -> None:
    ranking = rank_by_scores(np.array([[0.5, 1.0, 0.5, 1.0]]))
    assert ranking.tolist() == [[1, 3, 0, 2]]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=10), st.integers(1, 20), st.integers(0, 5))
def test_random_router_is_a_permutation_and_nested(texts: list[str], k: int, seed: int) -> None:
    queries = [Query(str(i), t) for i, t in enumerate(texts)]
    router = RandomRouter(k, seed=seed)
    ranking = router.rank(queries)
    assert all(sorted(r) == list(range(k)) for r in ranking.tolist())
    for m in range(1, k):
        small, large = router.select(queries, m), router.select(queries, m + 1)
        assert all(set(a) <= set(b) and len(a) == m for a, b in zip(small, large, strict=True))
    # deterministic, and independent of the batch a query is in
    assert np.array_equal(router.rank(queries[:1]), ranking[:1])


def test_exhaustive_router_selects_every_shard() -> None:
    assert ExhaustiveRouter(3).select([Query("a", "x")], None) == [[0, 1, 2]]


def test_oracle_prefers_shards_with_relevant_docs() -> None:
    qrels = {"q": {"d1": 1, "d2": 2, "d3": 0, "d4": 1}}
    shard_of = {"d1": 2, "d2": 2, "d3": 0, "d4": 1}
    ranking = OracleRouter(qrels, shard_of, np.array([10, 5, 5])).rank([Query("q", "x"), Query("u", "y")])
    assert ranking[0].tolist() == [2, 1, 0]
    assert ranking[1].tolist() == [0, 1, 2]  # unjudged: largest shard first, then id


def test_router_options_namespaced_per_router() -> None:
    options = {"distilled.model": "m/", "mico.mico_model": "x/", "depth": 30}
    assert options_for("distilled", options) == {"model": "m/", "depth": 30}
    assert options_for("mico", options) == {"mico_model": "x/", "depth": 30}
    assert options_for("redde", options) == {"depth": 30}
