"""Spatial relations derived from boxes.

The rule (image coordinates, x to the right, y *down*):

* Take the vector from b's centre to a's centre. ``relation_of(a, b)`` says where a is relative to b.
* If the centres coincide (distance < 1e-6 px), or the boxes overlap so much that a direction means
  nothing (``a.overlap_fraction(b) > max_overlap``, default 0.5), there is no relation: ``None``.
* If the direction is within ``tolerance_deg`` (inclusive) of an axis, the relation is cardinal:
  "right" (+x), "left" (-x), "above" (-y), "below" (+y).
* Otherwise it is the diagonal of the quadrant: "above_left", "above_right", "below_left",
  "below_right".

With ``tolerance_deg`` = 45 every direction is cardinal; at exactly 45 degrees the horizontal axis
wins, so the rule stays antisymmetric and mirror symmetric. The test is done on slopes
(``|dy| <= tan(tolerance) * |dx|``), not on angles, so it is exact under translation, negation and
scaling of the coordinates.

``relation_of(a, b) == INVERSE[relation_of(b, a)]`` for every pair (antisymmetry).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .model import SPATIAL_RELATIONS, Box, RelationTriple, SceneObject

#: centres closer than this (pixels) have no direction
MIN_DISTANCE = 1e-6


def _slope_limit(tolerance_deg: float) -> float:
    if not 0.0 <= tolerance_deg <= 45.0:
        raise ValueError(f"tolerance_deg must be within [0, 45], got {tolerance_deg}")
    return 1.0 if tolerance_deg == 45.0 else math.tan(math.radians(tolerance_deg))


def relation_of(a: Box, b: Box, tolerance_deg: float = 22.5, max_overlap: float = 0.5) -> str | None:
    """The relation of box `a` relative to box `b` (see the module docstring), or None."""
    limit = _slope_limit(tolerance_deg)
    (ax, ay), (bx, by) = a.center, b.center
    dx, dy = ax - bx, ay - by
    if math.hypot(dx, dy) < MIN_DISTANCE or a.overlap_fraction(b) > max_overlap:
        return None
    horizontal = "right" if dx > 0 else "left"
    vertical = "below" if dy > 0 else "above"
    if abs(dy) <= limit * abs(dx):
        return horizontal
    if abs(dx) <= limit * abs(dy):
        return vertical
    return f"{vertical}_{horizontal}"


def suggest_relations(
    objects: Sequence[SceneObject], relations: Sequence[str] = SPATIAL_RELATIONS, **kw: Any
) -> list[RelationTriple]:
    """Relation triples for every ordered pair of objects, derived from their boxes.

    These are suggestions for a person to confirm, not designed relations. A pair whose derived
    relation is not in `relations` is skipped (pass BASE_RELATIONS to drop diagonals). Keyword
    arguments go to `relation_of` (tolerance_deg, max_overlap).
    """
    wanted = set(relations)
    out: list[RelationTriple] = []
    for i, a in enumerate(objects):
        for j, b in enumerate(objects):
            if i == j:
                continue
            rel = relation_of(a.box, b.box, **kw)
            if rel is not None and rel in wanted:
                out.append(RelationTriple(a.name, rel, b.name))
    return out
