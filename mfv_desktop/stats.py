"""Small statistics the app shows beside its numbers (no torch, no Qt): the 95% Wilson interval of an
accuracy, and the best point of a layer sweep by a stated rule for ties."""

from __future__ import annotations

import math
from collections.abc import Sequence

#: z for a two-sided 95% interval
Z95 = 1.959963984540054

#: how the best layer and strength of a sweep are chosen, in words (the app shows it)
BEST_RULE = "highest accuracy; on a tie the smaller strength, then the earlier layer"


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion successes/n (95% by default): unlike p ± z·se it stays
    inside [0, 1] and is not empty at 0/n or n/n. n = 0 knows nothing: (0, 1)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n} trials")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return (0.0 if successes == 0 else lo), (1.0 if successes == n else hi)


def count_of(accuracy: float, n: int) -> int:
    """The number of correct answers behind an accuracy over n prompts."""
    return int(round(accuracy * n))


def best_point(
    layers: Sequence[int], strengths: Sequence[float], accuracy: Sequence[Sequence[float]]
) -> tuple[int, float]:
    """(layer, strength) of a sweep's accuracy[strength][layer] by BEST_RULE: the highest accuracy; on
    a tie the smaller strength, then the earlier layer (accuracies equal to 1e-9 are a tie)."""
    points = [
        (-round(acc, 9), strengths[i], layers[j])
        for i, row in enumerate(accuracy)
        for j, acc in enumerate(row)
        if i < len(strengths) and j < len(layers)
    ]
    if not points:
        return (layers[0] if layers else 0), (strengths[0] if strengths else 1.0)
    _, strength, layer = min(points)
    return layer, strength
