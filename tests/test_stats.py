"""The 95% Wilson interval against published values, and the stated rule for a sweep's best point."""

from __future__ import annotations

import pytest

from mfv_desktop.stats import BEST_RULE, best_point, count_of, wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (14, 20, 0.4810, 0.8545),  # the example the Layer sweep tab shows: 14/20 = 70% (48–85%)
        (50, 100, 0.4038, 0.5962),
        (81, 263, 0.2553, 0.3662),  # Newcombe (1998), example: 81/263
        (0, 10, 0.0, 0.2775),  # not empty at 0/n, as p ± z·se would be
        (10, 10, 0.7225, 1.0),
        (1, 1, 0.2065, 1.0),
    ],
)
def test_wilson_matches_known_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)
    assert 0.0 <= got[0] <= k / n <= got[1] <= 1.0


def test_wilson_without_trials_knows_nothing_and_refuses_impossible_counts():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


def test_counts_come_back_from_accuracies():
    assert count_of(0.7, 20) == 14 and count_of(1 / 3, 3) == 1


def test_best_point_breaks_ties_by_the_smaller_strength_then_the_earlier_layer():
    layers, strengths = [0, 1, 2, 3], [4.0, 1.0, 2.0]  # strengths as given, not sorted
    acc = [
        [0.2, 0.8, 0.5, 0.8],  # x4: the best accuracy at layers 1 and 3
        [0.1, 0.3, 0.8, 0.8],  # x1: the same accuracy at layers 2 and 3: the smaller strength wins
        [0.8, 0.1, 0.1, 0.1],  # x2
    ]
    assert best_point(layers, strengths, acc) == (2, 1.0)
    assert best_point(layers, strengths, [[0.5, 0.9, 0.9, 0.2], [0.1] * 4, [0.1] * 4]) == (1, 4.0)
    assert "smaller strength" in BEST_RULE and "earlier layer" in BEST_RULE
    assert best_point([], [], []) == (0, 1.0)
