"""Object stamps: the pictures a scene is made of.

Two kinds of stamp share one small interface (`Stamp`): `ProceduralStamp` draws one of the built-in
kinds (`KINDS`) with Pillow, and `CutoutStamp` uses a person's own cut-out (a PNG with a transparent
background). A stamp renders as an RGBA image with a transparent background whose pixels (alpha > 0)
fill it exactly: its tight box is the whole image, and its long side is the requested length.

The built-in kinds are drawn for a model that sees an 800 px canvas at 224 px (or less): bold
silhouettes, one dominant colour each, no thin detail. Every kind is drawn once at high resolution
(a "master", cached) and scaled down with a Lanczos filter for clean edges.

Long thin kinds (`ELONGATED`) are drawn upright, long axis vertical; ``rotate90`` lays them flat.

Object names go into prompts ("Q:{anchor}. A:{target}.") and the answer is scored on its first
token, so every name must be one plain word and one token for the model in use: `validate_name`
checks the syntax, `check_single_token` the tokenizer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from .model import SceneError

Point = tuple[float, float]
Colour = str

#: resolution (pixels, long side of the drawing square) at which procedural kinds are drawn
MASTER_SIZE = 1024

# -- names ----------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"[^\W\d_][\w-]*")
MAX_NAME_LENGTH = 40


def validate_name(name: str) -> str:
    """Return `name` if it can stand in the prompt "Q:{anchor}. A:{target}."; else SceneError.

    A name is one word: it starts with a letter and holds only letters, digits, "_" and "-"
    (no spaces, no punctuation such as "." or ":" that would break the prompt).
    """
    if not isinstance(name, str) or not name:
        raise SceneError("an object name must be a non-empty word, e.g. 'cup'")
    if len(name) > MAX_NAME_LENGTH:
        raise SceneError(f"object name {name!r} is too long: use one short word (at most {MAX_NAME_LENGTH} characters)")
    if not _NAME_RE.fullmatch(name):
        raise SceneError(
            f"object name {name!r} cannot be used in a prompt: use one word that starts with a letter and has "
            "no spaces or punctuation (letters, digits, '_' and '-' only), e.g. 'cup'"
        )
    return name


def check_single_token(names: Iterable[str], count_tokens: Callable[[str], int], model_name: str) -> None:
    """Raise SceneError naming every name that is not exactly one token for `model_name`.

    `count_tokens(name)` must count the tokens of the name as it appears in the prompt (right after
    "Q:" or "A:", so without a leading space). The answer is scored on its first token, so a name of
    several tokens makes the score ambiguous.
    """
    bad = []
    for name in dict.fromkeys(names):
        n = count_tokens(name)
        if n != 1:
            bad.append(f"{name!r} ({n} tokens)")
    if bad:
        raise SceneError(
            f"object names must be one token for {model_name}, because the answer is scored on its first token; "
            f"these are not: {', '.join(bad)}. Rename each object to a one-token word (a shorter, more common "
            "word) or leave it out."
        )


# -- rendering --------------------------------------------------------------------------------------


def _alpha_bbox(img: Image.Image) -> tuple[int, int, int, int] | None:
    return img.getchannel("A").getbbox()


def _make_tight(img: Image.Image) -> Image.Image:
    """Make sure every border row and column has a pixel with alpha > 0.

    Scaling down can fade a one-pixel tip to alpha 0; such a border line gets alpha 1 (invisible)
    wherever its nearest non-empty line is drawn, so the tight box stays the whole image.
    """
    arr = np.asarray(img).copy()
    alpha = arr[..., 3]
    if alpha[0].any() and alpha[-1].any() and alpha[:, 0].any() and alpha[:, -1].any():
        return img
    for axis in (0, 1):
        lines = np.moveaxis(arr, axis, 0)  # a view: writes go to arr
        filled = np.flatnonzero(lines[..., 3].any(axis=1))
        if filled.size == 0:
            raise SceneError("stamp rendered empty: the object is too small to draw")
        for edge, nearest in ((0, filled[0]), (lines.shape[0] - 1, filled[-1])):
            if nearest != edge:
                src = lines[nearest]
                mask = src[:, 3] > 0
                lines[edge, mask, :3] = src[mask, :3]
                lines[edge, mask, 3] = 1
    return Image.fromarray(arr, "RGBA")


def fit_long_side(img: Image.Image, long_side: int) -> Image.Image:
    """Scale a tight RGBA (or premultiplied RGBa) image so its long side is `long_side` pixels.

    The result is RGBA and stays tight (`_make_tight`).
    """
    if long_side < 1:
        raise SceneError(f"long side must be at least 1 px, got {long_side}")
    w, h = img.size
    scale = long_side / max(w, h)
    size = (long_side, max(1, round(h * scale))) if w >= h else (max(1, round(w * scale)), long_side)
    src = img if img.mode == "RGBa" else img.convert("RGBa")  # scale with premultiplied alpha
    out = src.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0) if size != src.size else src
    return _make_tight(out.convert("RGBA"))


class Stamp:
    """An object picture that can be drawn at any size (base of the procedural and cut-out stamps).

    `name` is the word used in prompts, `id` says how to get the stamp back (`stamp_from_id`),
    `elongated` marks long thin objects (laid flat above/below an anchor by the generator), `size`
    is the nominal size in [0, 1] between a generator's smallest and largest long side.
    """

    name: str
    id: str
    elongated: bool
    size: float

    def master(self, long_side: int) -> Image.Image:
        """An RGBA (or premultiplied RGBa) image of the object cropped to its pixels (alpha > 0),
        to be scaled to `long_side` (procedural stamps draw it at least 4x larger)."""
        raise NotImplementedError

    def render(self, long_side: int, rotate90: bool = False) -> Image.Image:
        """RGBA image on a transparent background, tight, with its long side == `long_side`."""
        img = fit_long_side(self.master(long_side), long_side)
        return img.transpose(Image.Transpose.ROTATE_90) if rotate90 else img

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"


# -- the procedural kinds ----------------------------------------------------------------------------


class _Pen:
    """Draws in unit coordinates (0..1, y down) on a transparent square of `size` pixels."""

    CLEAR = (0, 0, 0, 0)

    def __init__(self, size: int) -> None:
        self.size = size
        self.image = Image.new("RGBA", (size, size), self.CLEAR)
        self.draw = ImageDraw.Draw(self.image)

    def _pts(self, pts: Sequence[Point]) -> list[tuple[float, float]]:
        return [(x * self.size, y * self.size) for x, y in pts]

    def _box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x0 * self.size, y0 * self.size, x1 * self.size, y1 * self.size]

    def poly(self, pts: Sequence[Point], fill: Colour | tuple[int, ...]) -> None:
        self.draw.polygon(self._pts(pts), fill=fill)

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, fill: Colour | tuple[int, ...]) -> None:
        self.draw.ellipse(self._box(x0, y0, x1, y1), fill=fill)

    def circle(self, cx: float, cy: float, r: float, fill: Colour | tuple[int, ...]) -> None:
        self.ellipse(cx - r, cy - r, cx + r, cy + r, fill)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: Colour | tuple[int, ...], r: float = 0) -> None:
        if r > 0:
            self.draw.rounded_rectangle(self._box(x0, y0, x1, y1), radius=r * self.size, fill=fill)
        else:
            self.draw.rectangle(self._box(x0, y0, x1, y1), fill=fill)

    def line(self, pts: Sequence[Point], fill: Colour, width: float) -> None:
        w = max(1, round(width * self.size))
        self.draw.line(self._pts(pts), fill=fill, width=w, joint="curve")
        for x, y in (pts[0], pts[-1]):  # round caps
            self.circle(x, y, width / 2, fill)

    def arc(self, box: tuple[float, float, float, float], start: float, end: float, fill: Colour, width: float) -> None:
        self.draw.arc(self._box(*box), start, end, fill=fill, width=max(1, round(width * self.size)))

    def erase_ellipse(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.ellipse(x0, y0, x1, y1, self.CLEAR)

    def inside(self, paint: Callable[[_Pen], None]) -> None:
        """Paint details on a separate layer and keep them only where something is drawn already."""
        layer = _Pen(self.size)
        paint(layer)
        alpha = np.minimum(np.asarray(layer.image.getchannel("A")), np.asarray(self.image.getchannel("A")))
        layer.image.putalpha(Image.fromarray(alpha, "L"))
        self.image.alpha_composite(layer.image)


def _almond(p0: Point, p1: Point, width: float, n: int = 24) -> list[Point]:
    """A lens (leaf) shape from p0 to p1, `width` at its widest (unit coordinates)."""
    (x0, y0), (x1, y1) = p0, p1
    length = math.hypot(x1 - x0, y1 - y0)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    nx, ny = -uy, ux
    side1, side2 = [], []
    for k in range(n + 1):
        t = k / n
        off = width / 2 * math.sin(math.pi * t)
        cx, cy = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
        side1.append((cx + nx * off, cy + ny * off))
        side2.append((cx - nx * off, cy - ny * off))
    return side1 + side2[::-1]


def _star_points(cx: float, cy: float, r_out: float, r_in: float, points: int, rot: float = -90) -> list[Point]:
    pts = []
    for k in range(2 * points):
        r = r_out if k % 2 == 0 else r_in
        a = math.radians(rot + 180 * k / points)
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def _apple(p: _Pen) -> None:
    red = "#d7191f"
    p.ellipse(0.08, 0.22, 0.56, 0.94, red)
    p.ellipse(0.44, 0.22, 0.92, 0.94, red)
    p.ellipse(0.16, 0.36, 0.84, 0.97, red)
    p.line([(0.5, 0.34), (0.55, 0.08)], "#6b3a12", 0.06)
    p.poly(_almond((0.56, 0.2), (0.86, 0.06), 0.13), "#2e9e2e")
    p.inside(lambda q: q.ellipse(0.2, 0.34, 0.34, 0.52, "#f07a7a"))


def _ball(p: _Pen) -> None:
    p.circle(0.5, 0.5, 0.47, "#1f5fe0")

    def seams(q: _Pen) -> None:
        q.arc((-0.55, 0.05, 0.55, 1.15), -60, 60, "#ffffff", 0.08)
        q.arc((0.45, -0.15, 1.55, 0.95), 120, 240, "#ffffff", 0.08)

    p.inside(seams)


def _bell(p: _Pen) -> None:
    gold = "#e0a810"
    p.circle(0.5, 0.08, 0.06, "#8a5a00")
    p.ellipse(0.26, 0.1, 0.74, 0.5, gold)
    p.poly([(0.26, 0.3), (0.74, 0.3), (0.8, 0.66), (0.94, 0.8), (0.06, 0.8), (0.2, 0.66)], gold)
    p.rect(0.04, 0.76, 0.96, 0.88, "#c48a00", r=0.05)
    p.circle(0.5, 0.9, 0.08, "#6b4400")


def _bird(p: _Pen) -> None:
    blue = "#2aa7e8"
    p.poly([(0.3, 0.55), (0.02, 0.38), (0.08, 0.72)], "#1877b0")
    p.ellipse(0.18, 0.36, 0.78, 0.86, blue)
    p.circle(0.72, 0.36, 0.17, blue)
    p.poly([(0.86, 0.3), (1.0, 0.4), (0.86, 0.46)], "#ff8c00")
    p.poly(_almond((0.32, 0.55), (0.62, 0.72), 0.18), "#1877b0")
    p.circle(0.76, 0.32, 0.04, "#111111")


def _boat(p: _Pen) -> None:
    p.rect(0.47, 0.04, 0.53, 0.7, "#4a2a10")
    p.poly([(0.56, 0.06), (0.56, 0.62), (0.92, 0.62)], "#e02828")
    p.poly([(0.44, 0.16), (0.44, 0.62), (0.16, 0.62)], "#e02828")
    p.poly([(0.02, 0.66), (0.98, 0.66), (0.82, 0.9), (0.18, 0.9)], "#8a4b1c")


def _book(p: _Pen) -> None:
    p.rect(0.16, 0.1, 0.86, 0.92, "#f3e6c0", r=0.02)  # pages
    p.rect(0.12, 0.06, 0.8, 0.94, "#7a2fb8", r=0.03)  # cover
    p.rect(0.12, 0.06, 0.22, 0.94, "#4e1680")  # spine
    p.rect(0.34, 0.24, 0.7, 0.38, "#f3e6c0")  # label
    p.rect(0.8, 0.12, 0.86, 0.9, "#f3e6c0")


def _bottle(p: _Pen) -> None:
    green = "#1e8c46"
    p.rect(0.3, 0.36, 0.7, 0.98, green, r=0.07)
    p.poly([(0.3, 0.44), (0.42, 0.22), (0.58, 0.22), (0.7, 0.44)], green)
    p.rect(0.42, 0.08, 0.58, 0.26, green)
    p.rect(0.39, 0.02, 0.61, 0.1, "#c81e1e", r=0.02)
    p.rect(0.3, 0.56, 0.7, 0.76, "#f5f0d0")


def _car(p: _Pen) -> None:
    body = "#e8641a"
    p.poly([(0.2, 0.46), (0.32, 0.2), (0.68, 0.2), (0.82, 0.46)], body)
    p.rect(0.02, 0.42, 0.98, 0.74, body, r=0.08)
    p.poly([(0.28, 0.44), (0.36, 0.26), (0.48, 0.26), (0.48, 0.44)], "#aee0ff")
    p.poly([(0.53, 0.44), (0.53, 0.26), (0.64, 0.26), (0.74, 0.44)], "#aee0ff")
    for x in (0.25, 0.75):
        p.circle(x, 0.76, 0.13, "#1a1a1a")
        p.circle(x, 0.76, 0.05, "#9a9a9a")


def _clock(p: _Pen) -> None:
    p.circle(0.5, 0.5, 0.48, "#202020")
    p.circle(0.5, 0.5, 0.38, "#fffef2")
    for a in range(0, 360, 30):
        r0, r1 = (0.27, 0.36) if a % 90 == 0 else (0.31, 0.36)
        c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
        p.line([(0.5 + r0 * c, 0.5 + r0 * s), (0.5 + r1 * c, 0.5 + r1 * s)], "#202020", 0.04)
    p.line([(0.5, 0.5), (0.5, 0.2)], "#202020", 0.07)
    p.line([(0.5, 0.5), (0.72, 0.6)], "#202020", 0.07)
    p.circle(0.5, 0.5, 0.05, "#d01010")


def _cup(p: _Pen) -> None:
    teal = "#00a0a0"
    p.ellipse(0.52, 0.32, 0.94, 0.76, teal)
    p.erase_ellipse(0.62, 0.44, 0.84, 0.64)
    p.rect(0.08, 0.18, 0.72, 0.92, teal, r=0.08)
    p.rect(0.08, 0.18, 0.72, 0.28, "#006f6f", r=0.04)


def _fish(p: _Pen) -> None:
    orange = "#ff7f1e"
    p.poly([(0.68, 0.5), (0.98, 0.22), (0.9, 0.5), (0.98, 0.78)], "#e05a00")
    p.poly([(0.3, 0.3), (0.5, 0.14), (0.56, 0.32)], "#e05a00")
    p.poly(_almond((0.02, 0.52), (0.78, 0.5), 0.5), orange)
    p.circle(0.2, 0.45, 0.06, "#ffffff")
    p.circle(0.2, 0.45, 0.03, "#111111")


def _flower(p: _Pen) -> None:
    green = "#2e9e2e"
    p.line([(0.5, 0.4), (0.5, 0.98)], green, 0.07)
    p.poly(_almond((0.5, 0.82), (0.8, 0.62), 0.15), green)
    p.poly(_almond((0.5, 0.88), (0.22, 0.7), 0.14), green)
    for k in range(6):
        a = math.radians(90 + 60 * k)
        p.circle(0.5 + 0.2 * math.cos(a), 0.32 + 0.2 * math.sin(a), 0.14, "#e8409a")
    p.circle(0.5, 0.32, 0.12, "#ffd000")


def _hat(p: _Pen) -> None:
    p.ellipse(0.02, 0.72, 0.98, 0.9, "#151515")
    p.rect(0.22, 0.1, 0.78, 0.82, "#151515", r=0.03)
    p.rect(0.22, 0.6, 0.78, 0.72, "#d01c1c")


def _heart(p: _Pen) -> None:
    pts = []
    for k in range(120):
        t = 2 * math.pi * k / 120
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((0.5 + x / 34, 0.45 - y / 34))
    p.poly(pts, "#f0287d")


def _house(p: _Pen) -> None:
    p.rect(0.68, 0.12, 0.8, 0.4, "#7a2a1a")
    p.rect(0.14, 0.46, 0.86, 0.96, "#f2c46d")
    p.poly([(0.02, 0.52), (0.5, 0.06), (0.98, 0.52)], "#b3261e")
    p.rect(0.43, 0.66, 0.57, 0.96, "#6b3a12")
    p.rect(0.2, 0.58, 0.34, 0.72, "#5bb8f0")
    p.rect(0.66, 0.58, 0.8, 0.72, "#5bb8f0")


def _key(p: _Pen) -> None:
    steel = "#56627a"
    p.circle(0.5, 0.2, 0.18, steel)
    p.erase_ellipse(0.43, 0.13, 0.57, 0.27)
    p.rect(0.45, 0.34, 0.55, 0.98, steel)
    p.rect(0.55, 0.72, 0.68, 0.8, steel)
    p.rect(0.55, 0.86, 0.66, 0.94, steel)


def _kite(p: _Pen) -> None:
    top, right, bottom, left, mid = (0.5, 0.02), (0.86, 0.34), (0.5, 0.8), (0.14, 0.34), (0.5, 0.34)
    p.line([(0.5, 0.78), (0.58, 0.86), (0.46, 0.92), (0.56, 0.98)], "#333333", 0.025)
    for k, (a, b) in enumerate(((top, right), (right, bottom), (bottom, left), (left, top))):
        p.poly([a, b, mid], "#d6007e" if k % 2 == 0 else "#00b4c8")
    p.poly(_almond((0.5, 0.86), (0.64, 0.84), 0.06), "#d6007e")


def _lamp(p: _Pen) -> None:
    p.rect(0.46, 0.46, 0.54, 0.88, "#444444")
    p.ellipse(0.24, 0.84, 0.76, 0.98, "#333333")
    p.poly([(0.28, 0.06), (0.72, 0.06), (0.92, 0.5), (0.08, 0.5)], "#ffd23c")


def _leaf(p: _Pen) -> None:
    p.line([(0.14, 0.86), (0.04, 0.96)], "#4f7a12", 0.05)
    p.poly(_almond((0.12, 0.88), (0.94, 0.06), 0.5), "#5cb82a")
    p.line([(0.16, 0.84), (0.84, 0.16)], "#3a7d14", 0.03)


def _moon(p: _Pen) -> None:
    p.circle(0.5, 0.5, 0.46, "#f0d24a")
    p.erase_ellipse(0.3, -0.02, 1.14, 0.82)


def _pen(p: _Pen) -> None:
    p.poly([(0.4, 0.78), (0.6, 0.78), (0.5, 0.98)], "#f0d9a8")
    p.circle(0.5, 0.96, 0.025, "#111111")
    p.rect(0.4, 0.2, 0.6, 0.8, "#2040c0")
    p.rect(0.39, 0.02, 0.61, 0.34, "#101f70", r=0.05)
    p.rect(0.58, 0.08, 0.64, 0.28, "#101f70", r=0.02)


def _shoe(p: _Pen) -> None:
    brown = "#8c4a1e"
    p.poly([(0.04, 0.8), (0.06, 0.28), (0.36, 0.28), (0.46, 0.48), (0.8, 0.56), (0.96, 0.7), (0.96, 0.8)], brown)
    p.rect(0.02, 0.76, 0.98, 0.88, "#3a2010", r=0.04)
    p.rect(0.06, 0.24, 0.36, 0.34, "#5a2c0c", r=0.02)


def _spoon(p: _Pen) -> None:
    silver = "#a9b1c2"
    p.ellipse(0.33, 0.02, 0.67, 0.42, silver)
    p.poly([(0.46, 0.36), (0.54, 0.36), (0.575, 0.94), (0.425, 0.94)], silver)
    p.circle(0.5, 0.93, 0.075, silver)
    p.inside(lambda q: q.ellipse(0.39, 0.08, 0.52, 0.28, "#d7dce6"))


def _star(p: _Pen) -> None:
    p.poly(_star_points(0.5, 0.53, 0.5, 0.21, 5), "#ffa600")


def _sun(p: _Pen) -> None:
    for k in range(10):
        a, da = math.radians(36 * k), math.radians(14)
        tip = (0.5 + 0.5 * math.cos(a), 0.5 + 0.5 * math.sin(a))
        base = [(0.5 + 0.28 * math.cos(a + s * da), 0.5 + 0.28 * math.sin(a + s * da)) for s in (1, -1)]
        p.poly([tip, *base], "#ff9a00")
    p.circle(0.5, 0.5, 0.31, "#ffdc00")


def _tree(p: _Pen) -> None:
    p.rect(0.41, 0.55, 0.59, 0.98, "#7a4a1a")
    green = "#1f8a2a"
    p.circle(0.5, 0.27, 0.24, green)
    p.circle(0.3, 0.47, 0.22, green)
    p.circle(0.7, 0.47, 0.22, green)
    p.circle(0.5, 0.55, 0.2, green)


@dataclass(frozen=True)
class _Kind:
    draw: Callable[[_Pen], None]
    #: nominal size in [0, 1] between a generator's smallest and largest long side
    size: float
    elongated: bool = False


_KIND_TABLE: dict[str, _Kind] = {
    "apple": _Kind(_apple, 0.3),
    "ball": _Kind(_ball, 0.35),
    "bell": _Kind(_bell, 0.35),
    "bird": _Kind(_bird, 0.5),
    "boat": _Kind(_boat, 0.85),
    "book": _Kind(_book, 0.6),
    "bottle": _Kind(_bottle, 0.7, elongated=True),
    "car": _Kind(_car, 0.9),
    "clock": _Kind(_clock, 0.5),
    "cup": _Kind(_cup, 0.35),
    "fish": _Kind(_fish, 0.55),
    "flower": _Kind(_flower, 0.55),
    "hat": _Kind(_hat, 0.5),
    "heart": _Kind(_heart, 0.35),
    "house": _Kind(_house, 1.0),
    "key": _Kind(_key, 0.3, elongated=True),
    "kite": _Kind(_kite, 0.7),
    "lamp": _Kind(_lamp, 0.75),
    "leaf": _Kind(_leaf, 0.4),
    "moon": _Kind(_moon, 0.5),
    "pen": _Kind(_pen, 0.45, elongated=True),
    "shoe": _Kind(_shoe, 0.6),
    "spoon": _Kind(_spoon, 0.45, elongated=True),
    "star": _Kind(_star, 0.45),
    "sun": _Kind(_sun, 0.65),
    "tree": _Kind(_tree, 1.0),
}

#: the built-in procedural kinds; each name is also the object's name in prompts
KINDS: tuple[str, ...] = tuple(_KIND_TABLE)
#: long thin kinds, drawn upright and laid flat (rotate90) above/below an anchor
ELONGATED: frozenset[str] = frozenset(k for k, v in _KIND_TABLE.items() if v.elongated)


def _kind(kind: str) -> _Kind:
    try:
        return _KIND_TABLE[kind]
    except KeyError:
        raise SceneError(f"unknown object kind {kind!r}; the built-in kinds are: {', '.join(KINDS)}") from None


@lru_cache(maxsize=64)  # about 3 MB each at MASTER_SIZE
def _master(kind: str, size: int) -> Image.Image:
    pen = _Pen(size)
    _kind(kind).draw(pen)
    bbox = _alpha_bbox(pen.image)
    assert bbox is not None, kind
    return pen.image.crop(bbox).convert("RGBa")


def _master_size(long_side: int) -> int:
    """Drawing resolution: at least 4x supersampled, a power of two from MASTER_SIZE up."""
    size = MASTER_SIZE
    while size < 4 * long_side:
        size *= 2
    return size


def render_kind(kind: str, long_side: int, rotate90: bool = False) -> Image.Image:
    """Draw a built-in kind: RGBA, transparent background, tight, long side == `long_side`."""
    return ProceduralStamp(kind).render(long_side, rotate90)


class ProceduralStamp(Stamp):
    """One of the built-in kinds, drawn with Pillow."""

    def __init__(self, kind: str) -> None:
        spec = _kind(kind)
        self.kind = kind
        self.name = kind
        self.id = f"procedural:{kind}"
        self.elongated = spec.elongated
        self.size = spec.size

    def master(self, long_side: int) -> Image.Image:
        return _master(self.kind, _master_size(long_side))


# -- cut-outs ---------------------------------------------------------------------------------------

_CUTOUT_FIX = "export it as PNG with a transparent background"
#: a cut-out whose long side is at least this many times its short side counts as elongated
ELONGATED_ASPECT = 2.2


class CutoutStamp(Stamp):
    """A person's own object picture: a PNG (or other format) with an alpha channel.

    The picture is cropped to its pixels (alpha > 0). `name` defaults to the file name without its
    extension, lower-cased; `elongated` defaults to long side >= ELONGATED_ASPECT x short side.
    """

    def __init__(
        self, path: str | Path, name: str | None = None, elongated: bool | None = None, size: float = 0.5
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        self.name = validate_name(name if name is not None else self.path.stem.lower())
        self.id = f"cutout:{self.path}"
        self._image = _load_cutout(self.path)
        w, h = self._image.size
        self.elongated = max(w, h) >= ELONGATED_ASPECT * min(w, h) if elongated is None else elongated
        if not 0.0 <= size <= 1.0:
            raise SceneError(f"cut-out {self.path}: nominal size must be within [0, 1], got {size}")
        self.size = size

    def master(self, long_side: int) -> Image.Image:
        return self._image


def _load_cutout(path: Path) -> Image.Image:
    if not path.is_file():
        raise SceneError(f"cut-out {path} does not exist: choose an existing image file")
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
            img = im.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise SceneError(f"cut-out {path} is not a readable image ({e}): {_CUTOUT_FIX}") from e
    if not has_alpha:
        raise SceneError(
            f"cut-out {path} has no alpha channel (transparency), so the object cannot be cut out: {_CUTOUT_FIX}"
        )
    bbox = _alpha_bbox(img)
    if bbox is None:
        raise SceneError(f"cut-out {path} is fully transparent, there is no object in it: {_CUTOUT_FIX}")
    return img.crop(bbox).convert("RGBa")


# -- ids ------------------------------------------------------------------------------------------


def stamp_from_id(stamp_id: str) -> Stamp:
    """The stamp for an id ("procedural:apple", "cutout:/abs/path.png") or a built-in kind name."""
    prefix, sep, rest = stamp_id.partition(":")
    if not sep:
        return ProceduralStamp(stamp_id)
    if prefix == "procedural":
        return ProceduralStamp(rest)
    if prefix == "cutout":
        return CutoutStamp(rest)
    raise SceneError(
        f"unknown stamp {stamp_id!r}: use a built-in kind ({', '.join(KINDS)}), 'procedural:<kind>' "
        "or 'cutout:<path to PNG>'"
    )


def procedural_stamps(kinds: Iterable[str] | None = None) -> list[ProceduralStamp]:
    """Stamps for the given built-in kinds (all of them by default)."""
    return [ProceduralStamp(k) for k in (KINDS if kinds is None else kinds)]
