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


#: how a GQA scene's anchor is chosen among the objects with a relation to exactly one object
ANCHOR_RULES: Mapping[str, str] = {
    "most_relations": "the one with the most such relations",
    "largest": "the largest of them",
    "central": "the one nearest the image centre",
}
#: example ids kept per reason in a GQAReport
EXAMPLES = 5


@dataclass
class Tally:
    """How often one reason applied, what it says ("had no object between 5% and 50% of the image"),
    and the first few examples (image ids, or where a relation was)."""

    text: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES and example not in self.examples:
            self.examples.append(example)


@dataclass
class GQAReport:
    """What a GQA import kept and why it dropped the rest, made once here and shown by the CLI and
    the app alike (`lines`); `to_dict`/`from_dict` carry it through a run record or a worker."""

    #: scene graphs read
    read: int = 0
    #: scenes kept
    kept: int = 0
    #: why scenes were dropped: reason key -> Tally (examples: image ids)
    scenes: dict[str, Tally] = field(default_factory=dict)
    #: why relations were dropped, in every scene graph read: reason key -> Tally
    relations: dict[str, Tally] = field(default_factory=dict)

    def drop_scene(self, key: str, text: str, image_id: str) -> None:
        self.scenes.setdefault(key, Tally(text)).add(image_id)

    def drop_relation(self, key: str, text: str, example: str) -> None:
        self.relations.setdefault(key, Tally(text)).add(example)

    def headline(self) -> str:
        """ "kept 12 of 40 scenes: 28 had no object between 5% and 50% of the image"."""
        why = "; ".join(f"{t.count} {t.text}" for t in self.scenes.values())
        return f"kept {self.kept} of {self.read} scene{'s' if self.read != 1 else ''}" + (f": {why}" if why else "")

    def lines(self) -> list[str]:
        """The headline, each reason's examples, then the relations dropped and why."""
        out = [self.headline()]
        out += [f"  {t.text}: e.g. {', '.join(t.examples)}" for t in self.scenes.values() if t.examples]
        if self.relations:
            n = sum(t.count for t in self.relations.values())
            out.append(
                f"dropped {n} relation{'s' if n != 1 else ''}: "
                + "; ".join(f"{t.count} {t.text}" for t in self.relations.values())
            )
            out += [f"  {t.text}: e.g. {'; '.join(t.examples)}" for t in self.relations.values() if t.examples]
        return out

    def text(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "kept": self.kept,
            "scenes": {k: vars(t) for k, t in self.scenes.items()},
            "relations": {k: vars(t) for k, t in self.relations.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GQAReport:
        return cls(
            int(d.get("read", 0)),
            int(d.get("kept", 0)),
            {k: Tally(**v) for k, v in d.get("scenes", {}).items()},
            {k: Tally(**v) for k, v in d.get("relations", {}).items()},
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
    #: which object is the scene's anchor, among those with a relation to exactly one object (ANCHOR_RULES)
    anchor_rule: str = "most_relations"

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
        if self.anchor_rule not in ANCHOR_RULES:
            raise SceneError(f"GQAOptions: anchor_rule {self.anchor_rule!r} is not one of {', '.join(ANCHOR_RULES)}")

    def size_text(self) -> str:
        """The size bounds as a reader says them: "between 5% and 50% of the image"."""
        return f"between {self.min_area_ratio:.0%} and {self.max_area_ratio:.0%} of the image"


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
    graph: Any, opt: GQAOptions, image_id: str = "", report: GQAReport | None = None
) -> tuple[int, int, tuple[SceneObject, ...], tuple[RelationTriple, ...]] | None:
    """Validate one scene graph in full, then filter it; None if the filter drops it (the reason,
    and every relation dropped, counted in `report`)."""
    report = report if report is not None else GQAReport()
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

    def in_size(box: Box) -> bool:
        return opt.min_area_ratio <= box.area / (width * height) <= opt.max_area_ratio

    def keep(name: str, box: Box) -> bool:
        if name in opt.excluded_names:
            return False
        if opt.word_names_only:
            try:
                validate_name(name)
            except SceneError:
                return False
        return in_size(box)

    valid = {oid: (name, box) for oid, (name, box, _) in parsed.items() if box is not None and keep(name, box)}
    _count_dropped_relations(parsed, valid, opt, image_id, report)
    size, drop = opt.size_text(), report.drop_scene
    if not any(box is not None and in_size(box) for _, box, _ in parsed.values()):
        return drop("no_object_in_size", f"had no object {size}", image_id)
    if len(valid) < opt.min_objects:
        return drop("too_few_objects", f"had fewer than {opt.min_objects} usable objects {size}", image_id)
    if len(valid) > opt.max_objects:
        return drop("too_many_objects", f"had more than {opt.max_objects} objects {size}", image_id)
    if any(n > opt.max_same_name for n in Counter(name for name, _ in valid.values()).values()):
        times = "once" if opt.max_same_name == 1 else f"{opt.max_same_name} times"
        return drop("repeated_name", f"had an object name more than {times}", image_id)
    rels = [(s, p, o) for s in valid for p, o in parsed[s][2] if o in valid and o != s and p in opt.relations]
    if len(rels) < opt.min_relations:
        return drop("too_few_relations", f"had fewer than {opt.min_relations} of the chosen relations", image_id)
    if len(rels) > opt.max_relations:
        return drop("too_many_relations", f"had more than {opt.max_relations} of the chosen relations", image_id)
    if len({p for _, p, _ in rels}) < opt.min_distinct_relations:
        text = f"had fewer than {opt.min_distinct_relations} different relations"
        return drop("too_few_distinct_relations", text, image_id)
    if opt.one_object_per_predicate and any(n > 1 for n in Counter((valid[s][0], p) for s, p, _ in rels).values()):
        return drop("one_relation_many_objects", "had an object in one relation to several objects", image_id)
    names = dict(zip(valid, _unique([name for name, _ in valid.values()])))
    objects = tuple(SceneObject(names[oid], box) for oid, (_, box) in valid.items())
    triples = [RelationTriple(names[s], opt.relations[p], names[o]) for s, p, o in rels]
    return width, height, objects, _with_inverses(triples, RELATION_INVERSE if opt.add_inverses else {})


def _count_dropped_relations(
    parsed: Mapping[str, tuple[str, Box | None, list[tuple[str, str]]]],
    valid: Mapping[str, tuple[str, Box]],
    opt: GQAOptions,
    image_id: str,
    report: GQAReport,
) -> None:
    """Every relation of a scene graph that is not kept, counted by why (the first reason that applies)."""
    for s, (name, box, pairs) in parsed.items():
        for p, o in pairs:
            if o not in parsed:
                where = f"image {image_id}: {name} {p} object {o[:40]}"
                report.drop_relation("unknown_object", "named an object id that does not exist", where)
                continue
            where = f"image {image_id}: {name} {p} {parsed[o][0]}"
            if box is None or parsed[o][1] is None:
                report.drop_relation("box_outside", "had an object whose box is outside the image", where)
            elif o == s:
                report.drop_relation("self", "related an object to itself", where)
            elif p not in opt.relations:
                report.drop_relation("other_relation", "were not among the chosen relations", repr(p))
            elif s not in valid or o not in valid:
                report.drop_relation("object_filtered", "had an object left out (its size or name)", where)


def _anchor(
    objects: tuple[SceneObject, ...], relations: tuple[RelationTriple, ...], rule: str, width: int, height: int
) -> str | None:
    """The scene's anchor by `rule` (ANCHOR_RULES), among the objects with a relation to exactly one object."""
    if rule == "most_relations":
        return _best_anchor(objects, relations)
    per = Counter((t.object, t.relation) for t in relations)
    able = {obj for (obj, _), n in per.items() if n == 1}
    boxes = [o for o in objects if o.name in able]
    if not boxes:
        return None
    if rule == "largest":
        return max(boxes, key=lambda o: o.box.area).name
    cx, cy = width / 2, height / 2
    return min(boxes, key=lambda o: ((o.box.x0 + o.box.x1) / 2 - cx) ** 2 + ((o.box.y0 + o.box.y1) / 2 - cy) ** 2).name


def read_gqa_scene_graphs(
    json_path: StrPath, images_folder: StrPath, options: GQAOptions = GQAOptions()
) -> list[Scene]:
    """Scenes from a GQA scene-graph file, filtered by `options`; images are {images_folder}/{image_id}.jpg."""
    return read_gqa(json_path, images_folder, options)[0]


def read_gqa(
    json_path: StrPath, images_folder: StrPath, options: GQAOptions = GQAOptions()
) -> tuple[list[Scene], GQAReport]:
    """`read_gqa_scene_graphs` with its report: how many scene graphs were read and kept, why the
    others were dropped, and which relations were dropped and why."""
    report = GQAReport()
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
                parts = _gqa_scene_parts(graph, options, image_id, report)
                if parts is None:
                    continue
                if not image.exists():
                    missing.append(image.name)
                    report.drop_scene("missing_image", "had no image in the images folder", image_id)
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
                        anchor=_anchor(objects, relations, options.anchor_rule, width, height),
                        split="imported",
                        meta=_meta(info, "gqa", file=path.name),
                    )
                )
    if not seen:
        raise BadImport(f"{path} holds no scene graphs; {_GQA_FIX}")
    _report_missing(missing, len(scenes), folder, "the GQA images (<image_id>.jpg)")
    report.read, report.kept = len(seen), len(scenes)
    log.info("%s: %s", path, report.text())
    return scenes, report
