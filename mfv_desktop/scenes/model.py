"""What an image says: named objects with boxes and relation triples between them.

Coordinates are pixels of the scene's image, x to the right and y *down* (image convention).
A relation triple (subject, relation, object) reads "subject is <relation> of object":
("cup", "above", "car") says the cup is above the car. In a task, the *anchor* is the object
and the answer (the *target*) is the subject.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mfv_desktop.files import atomic_path

BASE_RELATIONS: tuple[str, ...] = ("above", "below", "left", "right")
DIAGONAL_RELATIONS: tuple[str, ...] = ("above_left", "above_right", "below_left", "below_right")
SPATIAL_RELATIONS: tuple[str, ...] = BASE_RELATIONS + DIAGONAL_RELATIONS

INVERSE: dict[str, str] = {
    "above": "below",
    "below": "above",
    "left": "right",
    "right": "left",
    "above_left": "below_right",
    "below_right": "above_left",
    "above_right": "below_left",
    "below_left": "above_right",
}

#: the base relations a composite (diagonal) relation is made of
COMPOSITE_PARTS: dict[str, tuple[str, str]] = {
    "above_left": ("above", "left"),
    "above_right": ("above", "right"),
    "below_left": ("below", "left"),
    "below_right": ("below", "right"),
}


class SceneError(ValueError):
    """A scene, scene file or object name that cannot be used; the message names the fix."""


#: longest scene id, object name or relation name taken from outside
MAX_TEXT: int = 200


def _short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def check_text(value: Any, what: str) -> str:
    """`value` stripped, if it is printable text of 1 to MAX_TEXT characters; else SceneError naming `what`."""
    if not isinstance(value, str):
        raise SceneError(f"{what} must be text, got {_short(value)}")
    s = value.strip()
    if not s or len(s) > MAX_TEXT:
        raise SceneError(f"{what} must be 1 to {MAX_TEXT} characters, got {_short(value)}")
    if not s.isprintable():  # control, format (e.g. right-to-left), surrogate, unassigned, odd spaces
        bad = next(c for c in s if not c.isprintable())
        raise SceneError(f"{what} {_short(s)} holds the unprintable character U+{ord(bad):04X}")
    return s


def check_name(value: Any, what: str) -> str:
    """An object or relation name: `check_text`, and no path separators and not only dots."""
    s = check_text(value, what)
    if "/" in s or "\\" in s or not s.strip("."):
        raise SceneError(f"{what} {_short(s)} must not hold '/' or '\\' or be only dots; rename it")
    return s


_PLAIN_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def path_part(name: str) -> str:
    """A file or folder name for a relation (or other user text): the name itself when it is a plain
    word ("above", "next_to"), else a plain slug of it plus a hash, so user text never becomes a path."""
    if _PLAIN_PART.fullmatch(name) and name.split(".")[0].upper() not in _WINDOWS_RESERVED:
        return name
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")[:32] or "name"
    return f"{slug}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        vals = (self.x0, self.y0, self.x1, self.y1)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
            raise SceneError(f"box coordinates must be finite numbers, got {vals}")
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise SceneError(f"box {vals} is empty: need x1 > x0 and y1 > y0")

    @classmethod
    def from_center(cls, cx: float, cy: float, w: float, h: float) -> Box:
        return cls(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def intersection(self, other: Box) -> float:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return max(w, 0.0) * max(h, 0.0)

    def overlap_fraction(self, other: Box) -> float:
        """Intersection over the smaller box's area (1.0: one box inside the other)."""
        return self.intersection(other) / min(self.area, other.area)

    def gap(self, other: Box) -> float:
        """Euclidean distance between the two boxes (0 when they touch or overlap)."""
        dx = max(other.x0 - self.x1, self.x0 - other.x1, 0.0)
        dy = max(other.y0 - self.y1, self.y0 - other.y1, 0.0)
        return math.hypot(dx, dy)

    def translate(self, dx: float, dy: float) -> Box:
        return Box(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)

    def scale(self, s: float) -> Box:
        return Box(self.x0 * s, self.y0 * s, self.x1 * s, self.y1 * s)

    def inside(self, width: float, height: float) -> bool:
        return self.x0 >= 0 and self.y0 >= 0 and self.x1 <= width and self.y1 <= height

    def as_list(self) -> list[float]:
        return [round(v, 3) for v in (self.x0, self.y0, self.x1, self.y1)]


@dataclass(frozen=True)
class SceneObject:
    name: str
    box: Box
    #: the stamp that drew it ("procedural:apple", "cutout:/path/x.png"), None for imported photos
    stamp: str | None = None


@dataclass(frozen=True)
class RelationTriple:
    subject: str
    relation: str
    object: str

    def as_list(self) -> list[str]:
        return [self.subject, self.relation, self.object]


@dataclass(frozen=True)
class Scene:
    id: str
    #: image file; relative paths are relative to the scene set's folder
    image: str
    width: int
    height: int
    objects: tuple[SceneObject, ...]
    relations: tuple[RelationTriple, ...]
    anchor: str | None = None
    split: str = "train"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise SceneError(f"scene {self.id!r}: object names must be unique, repeated: {dup}")
        known = set(names)
        for t in self.relations:
            for n in (t.subject, t.object):
                if n not in known:
                    raise SceneError(f"scene {self.id!r}: relation {t.as_list()} names unknown object {n!r}")
        if self.anchor is not None and self.anchor not in known:
            raise SceneError(f"scene {self.id!r}: anchor {self.anchor!r} is not one of its objects")

    def object(self, name: str) -> SceneObject:
        for o in self.objects:
            if o.name == name:
                return o
        raise KeyError(name)

    def target(self, anchor: str, relation: str) -> str | None:
        """The one object in `relation` to `anchor`, or None if there is none or more than one."""
        found = [t.subject for t in self.relations if t.object == anchor and t.relation == relation]
        return found[0] if len(found) == 1 else None

    def relation_names(self) -> set[str]:
        return {t.relation for t in self.relations}

    def with_(self, **changes: Any) -> Scene:
        return replace(self, **changes)

    # -- serialisation ---------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "image": self.image,
            "width": self.width,
            "height": self.height,
            "objects": [
                {"name": o.name, "box": o.box.as_list(), **({"stamp": o.stamp} if o.stamp else {})}
                for o in self.objects
            ],
            "relations": [t.as_list() for t in self.relations],
            "anchor": self.anchor,
            "split": self.split,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Scene:
        """A scene record read from a file: ids and names are checked (`check_text`, `check_name`), and
        every box must lie inside the image; a SceneError names the field."""
        try:
            sid = check_text(str(d["id"]), "the scene id")
            width, height = (_size(d[k], k) for k in ("width", "height"))
            objects = []
            for i, o in enumerate(d["objects"]):
                name = check_name(o["name"], f"object {i} name")
                box = Box(*map(float, o["box"]))
                if not box.inside(width, height):
                    raise SceneError(f"object {name!r} box {box.as_list()} lies outside the {width}x{height} image")
                stamp = o.get("stamp")
                if not isinstance(stamp, (str, type(None))):
                    raise SceneError(f"object {i} stamp must be text, got {_short(stamp)}")
                objects.append(SceneObject(name, box, stamp))
            relations = tuple(
                RelationTriple(
                    check_name(s, "relation subject"), check_name(r, "relation name"), check_name(o, "relation object")
                )
                for s, r, o in d.get("relations", [])
            )
            anchor = d.get("anchor")
            return cls(
                id=sid,
                image=str(d["image"]),
                width=width,
                height=height,
                objects=tuple(objects),
                relations=relations,
                anchor=None if anchor is None else check_name(anchor, "anchor"),
                split=check_text(str(d.get("split", "train")), "split"),
                meta=dict(d.get("meta") or {}),
            )
        except SceneError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
            raise SceneError(f"malformed scene record ({type(e).__name__}: {e})") from e


def _size(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1_000_000:
        raise SceneError(f"{what} must be a whole number of pixels from 1 to 1000000, got {_short(value)}")
    return value


SCENES_FILE = "scenes.jsonl"


def save_scene_set(folder: str | Path, scenes: Iterable[Scene], meta: dict[str, Any] | None = None) -> Path:
    """Write scenes as JSON lines (images are files beside it, never inside the JSON)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SCENES_FILE
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for s in scenes:
            f.write(json.dumps(s.to_json(), sort_keys=True) + "\n")
    if meta is not None:
        (folder / "scene_set.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return path


def load_scene_set(folder: str | Path) -> list[Scene]:
    """Read a scene set written by `save_scene_set`; a bad line is named with its number."""
    folder = Path(folder)
    path = folder / SCENES_FILE if folder.is_dir() else folder
    if not path.is_file():
        raise SceneError(f"no scene set at {folder}: expected {SCENES_FILE} (make one with `mfv generate`)")
    scenes = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            scenes.append(Scene.from_json(json.loads(line)))
        except (json.JSONDecodeError, SceneError) as e:
            raise SceneError(f"{path}, line {i}: {e}") from e
    return scenes


def resolve_image(folder: str | Path, scene: Scene) -> Path:
    p = Path(scene.image)
    return p if p.is_absolute() else Path(folder) / p


def split_scenes(scenes: Sequence[Scene], split: str | None) -> list[Scene]:
    return [s for s in scenes if split is None or s.split == split]
