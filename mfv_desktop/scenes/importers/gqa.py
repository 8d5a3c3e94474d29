"""GQA scene graphs, streamed record by record and filtered as the authors' prepare_gqa_dataset.py does."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import INVERSE, Box, RelationTriple, Scene, SceneError, SceneObject, _short, check_name, check_text
from ..objects import validate_name
from .images import BadImport, StrPath, _folder, _meta, _regular_file, check_image, safe_child
from .records import (
    _best_anchor,
    _clip,
    _dict,
    _dim,
    _key,
    _number,
    _record,
    _report_missing,
    _unique,
    _whole_file,
    _with_inverses,
)

#: one logger for the importers, as before they were split
log = logging.getLogger(__package__)

#: largest GQA scene-graph file read (the official train_sceneGraphs.json is well below)
MAX_JSON_BYTES: int = 2 * 1024**3
_GQA_FIX = (
    "expected a GQA scene-graph file such as train_sceneGraphs.json: {image_id: {width, height, "
    "objects: {object_id: {name, x, y, w, h, relations: [{name, object}]}}}}"
)


# -- GQA --------------------------------------------------------------------------------------------

#: the paper's GQA relations: GQA predicate -> project relation name ("s <predicate> o" = "s is <name> of o")
GQA_RELATIONS: Mapping[str, str] = {
    "above": "above",
    "below": "below",
    "to the left of": "left",
    "to the right of": "right",
    "next to": "next_to",
    "behind": "behind",
    "in front of": "in_front_of",
}
#: inverse names of every relation name the importers produce
RELATION_INVERSE: Mapping[str, str] = {
    **INVERSE,
    "next_to": "next_to",
    "behind": "in_front_of",
    "in_front_of": "behind",
}
#: the authors' blacklist of GQA object names (prepare_gqa_dataset.py, DEFAULT_NOT_ALLOWED_OBJECTS)
GQA_EXCLUDED_NAMES: frozenset[str] = frozenset(
    {
        "sky",
        "wall",
        "floor",
        "ceiling",
        "building",
        "trees",
        "grass",
        "ocean",
        "water",
        "fence",
        "bush",
        "neck",
        "hair",
        "legs",
        "rocks",
        "bushes",
        "clouds",
        "cloud",
        "sun",
        "stars",
        "cars",
        "leaves",
        "fingers",
        "hand",
        "arm",
    }
)


@dataclass(frozen=True)
class GQAOptions:
    """How GQA scene graphs are filtered; the defaults are the authors' (dataset/prepare_gqa_dataset.py)."""

    #: GQA predicate (any case) -> project relation; other predicates are dropped (authors: --relations)
    relations: Mapping[str, str] = field(default_factory=lambda: dict(GQA_RELATIONS))
    #: smallest object box, as a fraction of the image area (authors: --min_obj_ratio 0.05)
    min_area_ratio: float = 0.05
    #: largest object box, as a fraction of the image area (authors: --max_obj_ratio 0.5)
    max_area_ratio: float = 0.5
    #: fewest objects left after the size and name filters, else the image is dropped (authors: --min_objects 3)
    min_objects: int = 3
    #: most objects left after the size and name filters, else the image is dropped (authors: --max_objects 30)
    max_objects: int = 30
    #: fewest kept relations, else the image is dropped (authors: --min_relations 1)
    min_relations: int = 1
    #: most kept relations, else the image is dropped (authors: --max_relations 15)
    max_relations: int = 15
    #: fewest different predicates among the kept relations (authors: --min_different_relations 1)
    min_distinct_relations: int = 1
    #: an image with a kept name more often than this is dropped; allowed repeats become "cup_2" (authors: 1)
    max_same_name: int = 1
    #: drop an image where a subject has one predicate to several objects (authors: allow_multi_object_predicates off)
    one_object_per_predicate: bool = True
    #: object names never kept (authors: DEFAULT_NOT_ALLOWED_OBJECTS)
    excluded_names: frozenset[str] = GQA_EXCLUDED_NAMES
    #: drop objects whose name is not one prompt word (`validate_name`); not done by the authors
    word_names_only: bool = False
    #: also store each relation's inverse triple where RELATION_INVERSE names it (as the generator does)
    add_inverses: bool = True

    def __post_init__(self) -> None:
        if not self.relations or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in self.relations.items()
        ):
            raise SceneError("GQAOptions.relations must map GQA predicates to project relation names")
        object.__setattr__(self, "relations", {k.strip().lower(): v for k, v in self.relations.items()})
        object.__setattr__(self, "excluded_names", frozenset(n.lower() for n in self.excluded_names))
        if not (
            0 <= self.min_area_ratio <= self.max_area_ratio
            and 0 <= self.min_objects <= self.max_objects
            and 0 <= self.min_relations <= self.max_relations
            and self.max_same_name >= 1
        ):
            raise SceneError(
                "GQAOptions: need 0 <= min <= max for area ratio, objects and relations, and max_same_name >= 1"
            )


def _json_object_items(path: Path, fix: str, chunk: int = 1 << 20) -> Iterator[tuple[str, Any]]:
    """(key, value) pairs of the top-level JSON object in `path`, read in chunks (one value in memory)."""

    def no_constant(name: str) -> Any:
        raise SceneError(f"{name} is not a number JSON allows")

    decoder = json.JSONDecoder(parse_constant=no_constant)
    ws = re.compile(r"[ \t\n\r]*")
    with path.open(encoding="utf-8-sig") as f:
        buf, pos, done, eof = "", 0, 0, False

        def more() -> None:
            nonlocal buf, pos, done, eof
            data = f.read(max(chunk, len(buf) - pos))
            eof = not data
            done += pos
            buf, pos = buf[pos:] + data, 0

        def peek() -> str:  # the next non-space character, "" at the end
            nonlocal pos
            while True:
                pos = ws.match(buf, pos).end()  # type: ignore[union-attr]
                if pos < len(buf) or eof:
                    return buf[pos : pos + 1]
                more()

        def fail(at: int, msg: str) -> BadImport:
            return BadImport(f"{path}: not valid JSON near character {done + at:,} ({msg}); {fix}")

        def value() -> Any:
            nonlocal pos
            while True:
                try:
                    v, end = decoder.raw_decode(buf, pos)
                    if eof or len(buf) - end >= 3:  # a number ("-0.", "1e+") could go on in the next chunk
                        pos = end
                        return v
                except json.JSONDecodeError as e:
                    if eof or not (e.pos >= len(buf) - 8 or e.msg.startswith("Unterminated string")):
                        raise fail(e.pos, e.msg) from e
                except SceneError as e:
                    raise fail(pos, str(e)) from e
                more()

        def expect(char: str) -> None:
            nonlocal pos
            if peek() != char:
                raise fail(pos, f"expected {char!r}")
            pos += 1

        first = peek()
        if first == "[":
            raise BadImport(
                f"{path} holds a JSON list, perhaps an already filtered file (prepare_gqa_dataset.py "
                f"output); import the original scene graphs instead; {fix}"
            )
        expect("{")
        if peek() == "}":
            pos += 1
        else:
            while True:
                if peek() != '"':
                    raise fail(pos, "expected an image id in double quotes")
                key = value()
                expect(":")
                peek()
                yield key, value()
                if peek() == "}":
                    pos += 1
                    break
                expect(",")
        if peek():
            raise fail(pos, "extra data after the top-level object")


def _gqa_scene_parts(
    graph: Any, opt: GQAOptions
) -> tuple[int, int, tuple[SceneObject, ...], tuple[RelationTriple, ...]] | None:
    """Validate one scene graph in full, then filter it; None if the filter drops it."""
    g = _dict(graph, "the scene graph")
    width, height = (_dim(_key(g, k, "the scene graph"), k) for k in ("width", "height"))
    parsed: dict[str, tuple[str, Box | None, list[tuple[str, str]]]] = {}
    for oid, o in _dict(_key(g, "objects", "the scene graph"), "objects").items():
        what = f"object {_short(oid)}"
        o = _dict(o, what)
        name = check_name(_key(o, "name", what), f"{what} name").lower()
        x, y, w, h = (_number(_key(o, k, what), f"{what} {k}") for k in ("x", "y", "w", "h"))
        rels = o.get("relations", [])
        if not isinstance(rels, list):
            raise SceneError(f"{what} relations must be a list, got {_short(rels)}")
        pairs = []
        for r in rels:
            r = _dict(r, f"a relation of {what}")
            target = _key(r, "object", f"a relation of {what}")
            if not isinstance(target, str):
                raise SceneError(f"a relation of {what} must name its object by id (text), got {_short(target)}")
            pairs.append((check_name(_key(r, "name", f"a relation of {what}"), "relation name").lower(), target))
        parsed[oid] = (name, _clip(x, y, x + w, y + h, width, height), pairs)

    def keep(name: str, box: Box) -> bool:
        if name in opt.excluded_names:
            return False
        if opt.word_names_only:
            try:
                validate_name(name)
            except SceneError:
                return False
        return opt.min_area_ratio <= box.area / (width * height) <= opt.max_area_ratio

    valid = {oid: (name, box) for oid, (name, box, _) in parsed.items() if box is not None and keep(name, box)}
    if not opt.min_objects <= len(valid) <= opt.max_objects:
        return None
    if any(n > opt.max_same_name for n in Counter(name for name, _ in valid.values()).values()):
        return None
    rels = [(s, p, o) for s in valid for p, o in parsed[s][2] if o in valid and o != s and p in opt.relations]
    if not opt.min_relations <= len(rels) <= opt.max_relations:
        return None
    if len({p for _, p, _ in rels}) < opt.min_distinct_relations:
        return None
    if opt.one_object_per_predicate and any(n > 1 for n in Counter((valid[s][0], p) for s, p, _ in rels).values()):
        return None
    names = dict(zip(valid, _unique([name for name, _ in valid.values()])))
    objects = tuple(SceneObject(names[oid], box) for oid, (_, box) in valid.items())
    triples = [RelationTriple(names[s], opt.relations[p], names[o]) for s, p, o in rels]
    return width, height, objects, _with_inverses(triples, RELATION_INVERSE if opt.add_inverses else {})


def read_gqa_scene_graphs(
    json_path: StrPath, images_folder: StrPath, options: GQAOptions = GQAOptions()
) -> list[Scene]:
    """Scenes from a GQA scene-graph file, filtered by `options`; images are {images_folder}/{image_id}.jpg."""
    path = Path(json_path)
    _regular_file(path, _GQA_FIX, MAX_JSON_BYTES)
    folder = _folder(images_folder, "the folder of GQA images (<image_id>.jpg)")
    scenes: list[Scene] = []
    missing: list[str] = []
    seen: set[str] = set()
    with _whole_file(path, _GQA_FIX):
        for image_id, graph in _json_object_items(path, _GQA_FIX):
            with _record(f"{path}, image {_short(image_id)}", _GQA_FIX):
                image_id = check_text(image_id, "image id")
                if image_id in seen:
                    raise SceneError("the image id appears twice")
                seen.add(image_id)
                image = safe_child(folder, image_id + ".jpg")
                parts = _gqa_scene_parts(graph, options)
                if parts is None:
                    continue
                if not image.exists():
                    missing.append(image.name)
                    continue
                width, height, objects, relations = parts
                info = check_image(image)
                if (info.width, info.height) != (width, height):
                    raise SceneError(
                        f"the scene graph is {width}x{height} but {image} is "
                        f"{info.width}x{info.height}; use the GQA images of these scene graphs"
                    )
                scenes.append(
                    Scene(
                        image_id,
                        str(info.path),
                        width,
                        height,
                        objects,
                        relations,
                        anchor=_best_anchor(objects, relations),
                        split="imported",
                        meta=_meta(info, "gqa", file=path.name),
                    )
                )
    if not seen:
        raise BadImport(f"{path} holds no scene graphs; {_GQA_FIX}")
    _report_missing(missing, len(scenes), folder, "the GQA images (<image_id>.jpg)")
    log.info("%s: %d of %d scene graphs imported", path, len(scenes), len(seen))
    return scenes
