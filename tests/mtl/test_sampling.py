"""Task sampling schemes and per-task epoch iteration."""

from __future__ import annotations

import pytest

from selectsearch.errors import SelectSearchError
from selectsearch.mtl.sampling import TaskSampler, allocate, sampling_probabilities

SIZES = {"big": 900, "mid": 90, "small": 10}


def test_probabilities() -> None:
    prop = sampling_probabilities(SIZES, "proportional")
    assert prop["big"] == pytest.approx(0.9)
    temp = sampling_probabilities(SIZES, "temperature", temperature=2.0)
    assert temp["small"] > prop["small"] and temp["big"] < prop["big"]
    assert sampling_probabilities(SIZES, "round-robin") == pytest.approx(
        {t: 1 / 3 for t in SIZES})
    with pytest.raises(SelectSearchError):
        sampling_probabilities(SIZES, "nope")


def test_allocation_sums_and_gives_every_task_one() -> None:
    for scheme in ("proportional", "temperature", "round-robin"):
        counts = allocate(sampling_probabilities(SIZES, scheme), 32)
        assert sum(counts.values()) == 32 and min(counts.values()) >= 1
    assert allocate(sampling_probabilities(SIZES, "round-robin"), 30) == {
        "big": 10, "mid": 10, "small": 10}
    with pytest.raises(SelectSearchError):
        allocate({"a": 0.5, "b": 0.5}, 1)


def test_each_epoch_visits_every_example_once() -> None:
    sampler = TaskSampler({"a": 7, "b": 5}, batch_size=4, scheme="round-robin", seed=3)
    seen: dict[str, list[int]] = {"a": [], "b": []}
    for _ in range(7):  # a: 14 draws = 2 epochs, b: 14 draws = 2.8 epochs
        for t, idx in sampler.next_batch().items():
            seen[t].extend(idx)
    assert sorted(seen["a"][:7]) == list(range(7)) and sorted(seen["a"][7:]) == list(range(7))
    assert sorted(seen["b"][:5]) == list(range(5)) and sorted(seen["b"][5:10]) == list(range(5))
    assert seen["a"][:7] != seen["a"][7:]  # reshuffled per epoch
    assert sampler.epochs()["a"] == pytest.approx(2.0)


def test_state_round_trip_continues_identically() -> None:
    a = TaskSampler(SIZES, batch_size=16, scheme="temperature", seed=1)
    for _ in range(5):
        a.next_batch()
    b = TaskSampler(SIZES, batch_size=16, scheme="temperature", seed=1)
    b.load_state_dict(a.state_dict())
    assert [a.next_batch() for _ in range(5)] == [b.next_batch() for _ in range(5)]
