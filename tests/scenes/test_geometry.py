"""Relations derived from boxes: the rule and its symmetries."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfv_desktop.scenes import (
    BASE_RELATIONS,
    INVERSE,
    SPATIAL_RELATIONS,
    Box,
    SceneObject,
    relation_of,
    suggest_relations,
)

# Integer coordinates keep centres, translations and integer scalings exact in floating point.
coord = st.integers(-2000, 2000)
side = st.integers(1, 400)


@st.composite
def boxes(draw) -> Box:
    x, y = draw(coord), draw(coord)
    return Box(x, y, x + draw(side), y + draw(side))


tolerances = st.sampled_from([0.0, 10.0, 22.5, 30.0, 45.0])

MIRROR = {
    "left": "right",
    "right": "left",
    "above": "above",
    "below": "below",
    "above_left": "above_right",
    "above_right": "above_left",
    "below_left": "below_right",
    "below_right": "below_left",
}


def mirror_x(b: Box) -> Box:
    return Box(-b.x1, b.y0, -b.x0, b.y1)


@given(boxes(), boxes(), tolerances)
def test_antisymmetry(a, b, tol):
    r, s = relation_of(a, b, tol), relation_of(b, a, tol)
    assert (r is None) == (s is None)
    if r is not None:
        assert r == INVERSE[s]
        assert r in SPATIAL_RELATIONS


@given(boxes(), boxes(), tolerances, coord, coord)
def test_invariant_under_translation(a, b, tol, dx, dy):
    assert relation_of(a.translate(dx, dy), b.translate(dx, dy), tol) == relation_of(a, b, tol)


@given(boxes(), boxes(), tolerances, st.integers(1, 50) | st.sampled_from([0.5, 0.25, 0.125]))
def test_invariant_under_positive_scaling(a, b, tol, s):
    assert relation_of(a.scale(s), b.scale(s), tol) == relation_of(a, b, tol)


@given(boxes(), boxes(), tolerances)
def test_mirror_symmetry(a, b, tol):
    r = relation_of(a, b, tol)
    m = relation_of(mirror_x(a), mirror_x(b), tol)
    assert m == (None if r is None else MIRROR[r])


@given(boxes(), side, side, tolerances)
def test_touching_neighbours(anchor, w, h, tol):
    """Boxes touching the anchor's sides, centred on it, are above/below/left/right of it."""
    cx, cy = anchor.center
    neighbours = {
        "above": Box(cx - w / 2, anchor.y0 - h, cx + w / 2, anchor.y0),
        "below": Box(cx - w / 2, anchor.y1, cx + w / 2, anchor.y1 + h),
        "left": Box(anchor.x0 - w, cy - h / 2, anchor.x0, cy + h / 2),
        "right": Box(anchor.x1, cy - h / 2, anchor.x1 + w, cy + h / 2),
    }
    for rel, box in neighbours.items():
        assert box.gap(anchor) == 0
        assert relation_of(box, anchor, tol) == rel
        assert relation_of(anchor, box, tol) == INVERSE[rel]


def _at_angle(deg: float, r: float = 100.0) -> Box:
    """A unit box whose centre is at angle `deg` (counter-clockwise from +x, y up) from the origin."""
    return Box.from_center(r * math.cos(math.radians(deg)), -r * math.sin(math.radians(deg)), 1, 1)


ORIGIN = Box.from_center(0, 0, 1, 1)


@pytest.mark.parametrize("tol", [10.0, 22.5, 30.0])
def test_tolerance_boundary(tol):
    eps = 0.01
    cardinal = {0: "right", 90: "above", 180: "left", 270: "below"}
    for axis, rel in cardinal.items():
        for sign in (1, -1):
            assert relation_of(_at_angle(axis + sign * (tol - eps)), ORIGIN, tol) == rel
            outside = relation_of(_at_angle(axis + sign * (tol + eps)), ORIGIN, tol)
            assert outside not in cardinal.values() and outside is not None
    assert relation_of(_at_angle(45), ORIGIN, tol) == "above_right"
    assert relation_of(_at_angle(135), ORIGIN, tol) == "above_left"
    assert relation_of(_at_angle(225), ORIGIN, tol) == "below_left"
    assert relation_of(_at_angle(315), ORIGIN, tol) == "below_right"


def test_tolerance_limits():
    assert relation_of(_at_angle(44.9), ORIGIN, 45) == "right"
    assert relation_of(_at_angle(45.1), ORIGIN, 45) == "above"
    assert relation_of(Box.from_center(100, -100, 1, 1), ORIGIN, 45) == "right"  # exact tie: horizontal wins
    assert relation_of(Box.from_center(100, 0, 1, 1), ORIGIN, 0) == "right"
    assert relation_of(Box.from_center(100, -1, 1, 1), ORIGIN, 0) == "above_right"
    with pytest.raises(ValueError):
        relation_of(ORIGIN, ORIGIN, 46)


@given(boxes())
def test_coincident_centres_have_no_relation(a):
    cx, cy = a.center
    assert relation_of(a, a) is None
    assert relation_of(Box.from_center(cx, cy, 3, 7), a) is None


def test_heavy_overlap_has_no_relation():
    big = Box(0, 0, 100, 100)
    inner = Box(60, 10, 90, 40)  # inside big, off centre
    assert relation_of(inner, big) is None
    assert relation_of(inner, big, max_overlap=1.0) == "above_right"


def test_suggest_relations_filters_relations():
    objs = [
        SceneObject("cup", Box(0, 0, 10, 10)),
        SceneObject("car", Box(0, 20, 10, 30)),
        SceneObject("sun", Box(20, 20, 30, 30)),
    ]
    all_triples = {tuple(t.as_list()) for t in suggest_relations(objs)}
    assert ("cup", "above", "car") in all_triples and ("car", "below", "cup") in all_triples
    assert ("cup", "above_left", "sun") in all_triples and ("sun", "below_right", "cup") in all_triples
    assert len(all_triples) == 6
    base = suggest_relations(objs, BASE_RELATIONS)
    assert {t.relation for t in base} <= set(BASE_RELATIONS)
    assert len(base) == 4
