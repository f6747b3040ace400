"""Convergence detection on scripted validation-metric sequences."""

from __future__ import annotations

import pytest

from selectsearch.mtl.convergence import ConvergenceTracker


def run(values: list[float], **kw: float) -> tuple[ConvergenceTracker, list[bool]]:
    tracker = ConvergenceTracker(**kw)  # type: ignore[arg-type]
    flags = [tracker.update(step, v) for step, v in enumerate(values, 1)]
    return tracker, flags


def test_rising_curve_never_converges() -> None:
    tracker, flags = run([50, 60, 70, 80, 90, 95], patience=2)
    assert not any(flags)
    assert tracker.best_step == 6 and not tracker.converged


def test_peak_then_decline_converges_after_patience() -> None:
    tracker, flags = run([50, 70, 80, 79, 78, 77, 90], patience=3)
    assert flags == [False, False, False, False, False, True, False]
    assert tracker.converged_step == 6
    # The best point keeps following the curve even after convergence is declared.
    assert tracker.best_step == 7 and tracker.best_value == 90


def test_reported_exactly_once() -> None:
    _, flags = run([80, 70, 70, 70, 70, 70], patience=1)
    assert flags.count(True) == 1 and flags[1]


def test_min_delta_small_gains_do_not_reset_patience() -> None:
    tracker, flags = run([80.0, 80.1, 80.2, 80.3], patience=3, min_delta=0.5)
    assert flags == [False, False, False, True]
    # ... but the best snapshot still moves to the highest value.
    assert tracker.best_step == 4 and tracker.best_value == pytest.approx(80.3)


def test_min_delta_large_gain_resets() -> None:
    _, flags = run([80.0, 80.2, 81.0, 81.1, 81.2], patience=3, min_delta=0.5)
    assert not any(flags)


def test_ties_keep_earliest_best() -> None:
    tracker, _ = run([70, 80, 80, 80], patience=5)
    assert tracker.best_step == 2


def test_min_evals_delays_declaration() -> None:
    _, flags = run([90, 80, 80, 80, 80], patience=1, min_evals=4)
    assert flags.index(True) == 3


def test_state_round_trip() -> None:
    tracker, _ = run([50, 60, 55], patience=2)
    clone = ConvergenceTracker.from_state(tracker.state_dict())
    assert clone == tracker
    assert clone.update(4, 54) == tracker.update(4, 54) is True


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ConvergenceTracker(patience=0)
    with pytest.raises(ValueError):
        ConvergenceTracker(min_delta=-1)
