"""The paper's synthetic scene generator, re-created (reference/method.md §2).

A scene is a white square canvas with six objects of six different kinds:

* the *anchor*, its centre within ``anchor_jitter`` px of the canvas centre;
* four *neighbours* whose boxes touch the anchor's box: above and below centred on the anchor's x
  (bottom / top edge on the anchor's top / bottom edge), left and right centred on its y. In
  ``diagonal`` mode they sit at the anchor's four corners instead, touching corner to corner
  (above_left, above_right, below_left, below_right);
* one *distractor* at least ``distractor_gap`` px from every other object, in no designed relation.

``anchor_jitter`` and ``distractor_gap`` default to the paper's 200 and 300 px scaled to the canvas
(canvas / 4 and 3/8 canvas), so a small canvas works without setting them.

Objects are scaled so their long side lies in [min_size, max_size]: a kind's nominal size
(``Stamp.size``, 0..1 between the two) plus Gaussian jitter of ``size_jitter`` px, clipped, as the
authors' code gives each object a long side of 130-230 px with a jitter of 10 px. Long thin kinds
(``Stamp.elongated``, drawn upright) are rotated 90 degrees when they sit above or below the anchor,
so they lie flat against it with their thin side towards it (as the authors rotate long objects
for above/below); in diagonal mode nothing is rotated.

Rejection sampling, with at most ``max_tries`` tries per scene: a layout is redrawn (new kinds,
sizes and position) when it does not fit inside the canvas with the anchor near the centre, when two
boxes overlap by more than ``max_overlap`` of the smaller one's area (large neighbours can clash at
the anchor's corners), when a neighbour's box-derived relation (`geometry.relation_of`) is not the
designed one (possible for diagonal neighbours of extreme aspect), or when there is no room for the
distractor. The distractor's position is drawn uniformly among all positions that satisfy the rules.

The distance of the distractor is measured between box centres by default (``distractor_metric =
"centre"``), as in the authors' code (300 px between centres). ``"gap"`` measures it between the
boxes (`Box.gap`), which is much stricter: at 800 px with 130-230 px objects such room rarely exists.

Stored boxes are the tight boxes of the drawn pixels (alpha > 0), on whole pixels, so neighbours
touch the anchor exactly (gap 0, no overlap). Relation triples are the designed ones: (neighbour,
relation, anchor) for each neighbour and the inverse (anchor, INVERSE[relation], neighbour).

Scene i draws from its own random generator, seeded with (seed, split, i): the same spec gives
the same images and JSON, chunks can be generated separately, and splits with the same seed differ.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mfv_desktop.codec import to_dict

from .geometry import relation_of
from .model import (
    BASE_RELATIONS,
    COMPOSITE_PARTS,
    DIAGONAL_RELATIONS,
    INVERSE,
    Box,
    RelationTriple,
    Scene,
    SceneError,
    SceneObject,
)
from .objects import KINDS, Stamp, check_single_token, stamp_from_id, validate_name

#: objects per scene: anchor, four neighbours, distractor
OBJECTS_PER_SCENE = 6
DISTRACTOR_METRICS = ("centre", "gap")
IMAGES_DIR = "images"
#: random distractor positions tried before searching every position
_QUICK_CANDIDATES = 64
_SAFE_ID = re.compile(r"^[\w.-]*$")


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything that decides a generated scene set (recorded in every scene's meta)."""

    n_scenes: int = 100
    seed: int = 0
    canvas: int = 800
    min_size: int = 130
    max_size: int = 230
    size_jitter: float = 10.0
    #: the anchor's centre lies within +- this many px of the canvas centre (both axes);
    #: None: canvas / 4 (200 px on the paper's 800 px canvas)
    anchor_jitter: int | None = None
    #: the distractor's least distance to every other object (see distractor_metric);
    #: None: canvas * 3 / 8 (300 px on the paper's 800 px canvas)
    distractor_gap: float | None = None
    #: "centre": between box centres (authors' code); "gap": between boxes (Box.gap)
    distractor_metric: str = "centre"
    #: reject layouts where two boxes overlap by more than this fraction of the smaller box
    max_overlap: float = 0.05
    #: neighbours at the anchor's corners (diagonal relations) instead of its sides
    diagonal: bool = False
    #: kind names or stamp ids ("procedural:apple", "cutout:/path/cup.png") to draw objects from
    kinds: tuple[str, ...] = KINDS
    split: str = "train"
    #: scene ids are f"{id_prefix}{i:06d}"; empty: f"{split}_"
    id_prefix: str = ""
    max_tries: int = 500

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(self.kinds))
        if self.anchor_jitter is None:
            object.__setattr__(self, "anchor_jitter", round(self.canvas / 4))
        if self.distractor_gap is None:
            object.__setattr__(self, "distractor_gap", self.canvas * 3 / 8)
        problems = []
        if self.n_scenes < 0:
            problems.append("n_scenes must be >= 0")
        if self.seed < 0:
            problems.append("seed must be >= 0")
        if self.canvas < 16:
            problems.append("canvas must be at least 16 px")
        if not 1 <= self.min_size <= self.max_size:
            problems.append("need 1 <= min_size <= max_size")
        if self.size_jitter < 0 or self.anchor_jitter_px < 0 or self.distractor_gap_px < 0:
            problems.append("size_jitter, anchor_jitter and distractor_gap must be >= 0")
        if self.distractor_metric not in DISTRACTOR_METRICS:
            problems.append(f"distractor_metric must be one of {DISTRACTOR_METRICS}")
        if not 0 <= self.max_overlap <= 1:
            problems.append("max_overlap must be within [0, 1]")
        if len(set(self.kinds)) != len(self.kinds):
            problems.append("kinds must not repeat")
        if len(self.kinds) < OBJECTS_PER_SCENE:
            problems.append(f"need at least {OBJECTS_PER_SCENE} kinds (a scene shows six different objects)")
        if not self.split or not _SAFE_ID.match(self.split) or not _SAFE_ID.match(self.id_prefix):
            problems.append("split (non-empty) and id_prefix may hold only letters, digits, '_', '-' and '.'")
        if self.max_tries < 1:
            problems.append("max_tries must be >= 1")
        if problems:
            raise SceneError("generator settings: " + "; ".join(problems))

    @property
    def anchor_jitter_px(self) -> int:
        """`anchor_jitter`, its None resolved (as `__post_init__` stores it)."""
        return self.anchor_jitter if self.anchor_jitter is not None else round(self.canvas / 4)

    @property
    def distractor_gap_px(self) -> float:
        """`distractor_gap`, its None resolved (as `__post_init__` stores it)."""
        return self.distractor_gap if self.distractor_gap is not None else self.canvas * 3 / 8

    @property
    def relations(self) -> tuple[str, ...]:
        """The neighbours' relations to the anchor, in the order they are placed."""
        return DIAGONAL_RELATIONS if self.diagonal else BASE_RELATIONS

    def scene_id(self, i: int) -> str:
        return f"{self.id_prefix or self.split + '_'}{i:06d}"

    def to_json(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> GeneratorSpec:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise SceneError(f"generator settings: unknown fields {unknown}; known: {sorted(names)}")
        try:
            kw: dict[str, Any] = {k: (tuple(v) if k == "kinds" else v) for k, v in d.items()}
            return cls(**kw)
        except TypeError as e:
            raise SceneError(f"generator settings: {e}") from e


@dataclass(frozen=True)
class _Placed:
    stamp: Stamp
    image: Image.Image
    box: Box
    rotated: bool = False

    @property
    def origin(self) -> tuple[int, int]:
        return int(self.box.x0), int(self.box.y0)


@dataclass
class _Rejections:
    canvas: int = 0
    overlap: int = 0
    relation: int = 0
    distractor: int = 0

    def describe(self) -> str:
        return (
            f"{self.canvas} did not fit the canvas with the anchor near its centre, {self.overlap} overlapped, "
            f"{self.relation} had a neighbour in another relation, {self.distractor} had no room for the distractor"
        )


def resolve_stamps(kinds: Sequence[str], stamps: Mapping[str, Stamp] | None = None) -> list[Stamp]:
    """The stamps for kind names / stamp ids; `stamps` supplies ones already loaded (by the same key)."""
    pool = [stamps[k] if stamps is not None and k in stamps else stamp_from_id(k) for k in kinds]
    names = [validate_name(s.name) for s in pool]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SceneError(f"object names must differ between kinds; repeated: {dup}. Rename the cut-outs.")
    return pool


def _rng(spec: GeneratorSpec, i: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, zlib.crc32(spec.split.encode("utf-8")), i])


def _long_side(stamp: Stamp, spec: GeneratorSpec, rng: np.random.Generator) -> int:
    size = spec.min_size + stamp.size * (spec.max_size - spec.min_size)
    if spec.size_jitter > 0:
        size += rng.normal(0.0, spec.size_jitter)
    return int(round(min(max(size, spec.min_size), spec.max_size)))


def _neighbour_origin(relation: str, anchor: tuple[int, int], w: int, h: int) -> tuple[int, int]:
    """Top-left corner of a w x h neighbour touching an anchor of size `anchor` placed at (0, 0)."""
    aw, ah = anchor
    parts = COMPOSITE_PARTS.get(relation, (relation,))
    x = -w if "left" in parts else aw if "right" in parts else (aw - w) // 2
    y = -h if "above" in parts else ah if "below" in parts else (ah - h) // 2
    return x, y


def _offsets(lo_bound: float, hi_bound: float, size: int, spec: GeneratorSpec) -> tuple[int, int]:
    """Integer range of the anchor's offset t along one axis: the group spans [lo_bound, hi_bound]
    relative to the anchor's corner and must stay on the canvas, and the anchor's centre t + size/2
    must be within anchor_jitter of the canvas centre."""
    c, jitter = spec.canvas, spec.anchor_jitter_px
    lo = max(math.ceil(-lo_bound), math.ceil(c / 2 - jitter - size / 2))
    hi = min(math.floor(c - hi_bound), math.floor(c / 2 + jitter - size / 2))
    return lo, hi


def _distractor_origin(
    w: int, h: int, boxes: Sequence[Box], spec: GeneratorSpec, rng: np.random.Generator
) -> tuple[int, int] | None:
    """A uniformly drawn top-left corner for the distractor that keeps every rule, or None."""
    c = spec.canvas
    if w > c or h > c:
        return None

    def ok(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Whether each (xs[k], ys[l]) corner is allowed: a len(xs) x len(ys) boolean array."""
        good = np.ones((len(xs), len(ys)), dtype=bool)
        for b in boxes:
            if spec.distractor_metric == "centre":
                bx, by = b.center
                dx, dy = xs + w / 2 - bx, ys + h / 2 - by
            else:
                dx = np.maximum.reduce([b.x0 - (xs + w), xs - b.x1, np.zeros(len(xs))])
                dy = np.maximum.reduce([b.y0 - (ys + h), ys - b.y1, np.zeros(len(ys))])
            good &= dx[:, None] ** 2 + dy[None, :] ** 2 >= spec.distractor_gap_px**2
            iw = np.clip(np.minimum(xs + w, b.x1) - np.maximum(xs, b.x0), 0, None)
            ih = np.clip(np.minimum(ys + h, b.y1) - np.maximum(ys, b.y0), 0, None)
            good &= iw[:, None] * ih[None, :] <= spec.max_overlap * min(w * h, b.area)
        return good

    # quick path: a few random corners (rejection sampling is uniform over the allowed ones)
    xs = rng.integers(0, c - w + 1, _QUICK_CANDIDATES)
    ys = rng.integers(0, c - h + 1, _QUICK_CANDIDATES)
    hits = np.flatnonzero(np.diagonal(ok(xs, ys)))  # the pairs (xs[k], ys[k])
    if hits.size:
        return int(xs[hits[0]]), int(ys[hits[0]])
    # exhaustive: every corner on the canvas
    xs, ys = np.arange(c - w + 1), np.arange(c - h + 1)
    allowed = np.flatnonzero(ok(xs, ys))
    if allowed.size == 0:
        return None
    ix, iy = divmod(int(allowed[rng.integers(allowed.size)]), len(ys))
    return int(xs[ix]), int(ys[iy])


def _layout(spec: GeneratorSpec, pool: Sequence[Stamp], i: int) -> tuple[list[_Placed], int]:
    """Anchor, the four neighbours (in spec.relations order) and the distractor of scene i."""
    rng = _rng(spec, i)
    why = _Rejections()
    for attempt in range(1, spec.max_tries + 1):
        chosen = [pool[k] for k in rng.choice(len(pool), OBJECTS_PER_SCENE, replace=False)]
        sizes = [_long_side(s, spec, rng) for s in chosen]
        anchor_img = chosen[0].render(sizes[0])
        aw, ah = anchor_img.size
        # first relative to the anchor's top-left corner at (0, 0)
        local = [_Placed(chosen[0], anchor_img, Box(0, 0, aw, ah))]
        for rel, stamp, size in zip(spec.relations, chosen[1:5], sizes[1:5]):
            rotate = stamp.elongated and rel in ("above", "below")
            img = stamp.render(size, rotate)
            x, y = _neighbour_origin(rel, (aw, ah), *img.size)
            local.append(_Placed(stamp, img, Box(x, y, x + img.width, y + img.height), rotate))
        x_lo, x_hi = _offsets(min(p.box.x0 for p in local), max(p.box.x1 for p in local), aw, spec)
        y_lo, y_hi = _offsets(min(p.box.y0 for p in local), max(p.box.y1 for p in local), ah, spec)
        if x_lo > x_hi or y_lo > y_hi:
            why.canvas += 1
            continue
        tx, ty = int(rng.integers(x_lo, x_hi + 1)), int(rng.integers(y_lo, y_hi + 1))
        placed = [replace(p, box=p.box.translate(tx, ty)) for p in local]
        boxes = [p.box for p in placed]
        if any(a.overlap_fraction(b) > spec.max_overlap for k, a in enumerate(boxes) for b in boxes[k + 1 :]):
            why.overlap += 1
            continue
        if any(relation_of(p.box, boxes[0]) != rel for rel, p in zip(spec.relations, placed[1:])):
            why.relation += 1
            continue
        d_img = chosen[5].render(sizes[5])
        origin = _distractor_origin(d_img.width, d_img.height, boxes, spec, rng)
        if origin is None:
            why.distractor += 1
            continue
        x, y = origin
        placed.append(_Placed(chosen[5], d_img, Box(x, y, x + d_img.width, y + d_img.height)))
        return placed, attempt
    raise SceneError(
        f"scene {i}: no layout found in {spec.max_tries} tries ({why.describe()}). Objects of "
        f"{spec.min_size}-{spec.max_size} px with the anchor within {spec.anchor_jitter} px of the centre, the "
        f"distractor {spec.distractor_gap:g} px away ({spec.distractor_metric}) and overlap <= {spec.max_overlap:g} "
        f"do not fit a {spec.canvas} px canvas: enlarge the canvas, or lower the object sizes, distractor_gap or "
        "anchor_jitter, or raise max_overlap."
    )


def _compose(size: int, items: Sequence[tuple[Image.Image, tuple[int, int]]]) -> Image.Image:
    """Paste RGBA images (in order) at their top-left corners on a white size x size canvas."""
    canvas = Image.new("RGB", (size, size), "white")
    for img, xy in items:
        canvas.paste(img, xy, img)
    return canvas


def make_scene(spec: GeneratorSpec, pool: Sequence[Stamp], i: int) -> tuple[Scene, Image.Image]:
    """Scene i of a spec and its image (not written anywhere)."""
    placed, tries = _layout(spec, pool, i)
    anchor, neighbours, distractor = placed[0], placed[1:5], placed[5]
    relations = [RelationTriple(p.stamp.name, rel, anchor.stamp.name) for rel, p in zip(spec.relations, neighbours)]
    relations += [RelationTriple(t.object, INVERSE[t.relation], t.subject) for t in list(relations)]
    sid = spec.scene_id(i)
    scene = Scene(
        id=sid,
        image=f"{IMAGES_DIR}/{sid}.png",
        width=spec.canvas,
        height=spec.canvas,
        objects=tuple(SceneObject(p.stamp.name, p.box, p.stamp.id) for p in placed),
        relations=tuple(relations),
        anchor=anchor.stamp.name,
        split=spec.split,
        meta={
            "generator": spec.to_json(),
            "index": i,
            "layout": "diagonal" if spec.diagonal else "base",
            "distractor": distractor.stamp.name,
            "rotated": [p.stamp.name for p in placed if p.rotated],
            "tries": tries,
        },
    )
    return scene, _compose(spec.canvas, [(p.image, p.origin) for p in placed])


def generate_scenes(
    spec: GeneratorSpec,
    out_folder: str | Path,
    stamps: Mapping[str, Stamp] | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    start: int = 0,
    stop: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    model_name: str = "the model",
) -> Iterator[Scene]:
    """Generate scenes start..stop-1 (default: all of spec.n_scenes), one at a time.

    Each scene's image is written to ``out_folder/images/{id}.png`` before the scene is yielded;
    collect the scenes and save them with `model.save_scene_set(out_folder, scenes)`.
    `stamps` supplies stamps already loaded, keyed like spec.kinds; the others are made with
    `stamp_from_id`. With `count_tokens`, every object name is first checked to be one token for
    `model_name` (`objects.check_single_token`). `progress(done, total)` is called after each scene.
    """
    stop = spec.n_scenes if stop is None else stop
    if not 0 <= start <= stop <= spec.n_scenes:
        raise SceneError(f"scene range {start}..{stop} is outside 0..{spec.n_scenes}")
    pool = resolve_stamps(spec.kinds, stamps)
    if count_tokens is not None:
        check_single_token([s.name for s in pool], count_tokens, model_name)
    folder = Path(out_folder)
    (folder / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    total = stop - start
    for done, i in enumerate(range(start, stop), 1):
        scene, image = make_scene(spec, pool, i)
        image.save(folder / scene.image, "PNG", compress_level=1)
        if progress is not None:
            progress(done, total)
        yield scene


def render_scene(scene: Scene, stamps: Mapping[str, Stamp] | None = None) -> Image.Image:
    """Draw a scene from its objects' stamps and boxes (e.g. after a person moved an object).

    Every object needs a stamp id; `stamps` supplies stamps already loaded, keyed by id. Objects
    named in ``scene.meta["rotated"]`` are drawn rotated 90 degrees. A generated scene is redrawn
    pixel for pixel.
    """
    rotated = set(scene.meta.get("rotated", ()))
    items = []
    for o in scene.objects:
        if o.stamp is None:
            raise SceneError(f"scene {scene.id!r}: object {o.name!r} has no stamp to draw it with (an imported photo?)")
        stamp = stamps[o.stamp] if stamps is not None and o.stamp in stamps else stamp_from_id(o.stamp)
        w, h = max(1, round(o.box.width)), max(1, round(o.box.height))
        img = stamp.render(max(w, h), o.name in rotated)
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.LANCZOS)
        items.append((img, (round(o.box.x0), round(o.box.y0))))
    if scene.width != scene.height:
        raise SceneError(f"scene {scene.id!r}: only square canvases can be drawn, got {scene.width}x{scene.height}")
    return _compose(scene.width, items)
