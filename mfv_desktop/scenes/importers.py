"""Turn outside files into validated scenes: plain images, GQA scene graphs, the authors' metadata.csv.

Everything read here is treated as hostile: every failure is a `BadImport` (a `SceneError`) whose
message names the file, the record (image id or CSV row) where there is one, and the fix. Scenes
come back with absolute image paths; copying them into a managed folder is the store's job.

* Images are decoded in full with Pillow (`check_image`), after a pixel-count check on the header.
* GQA scene graphs (``{image_id: {"width", "height", "objects": {id: {"name", "x", "y", "w", "h",
  "relations": [{"name", "object"}]}}}}``) are streamed record by record (files up to
  `MAX_JSON_BYTES`) and filtered as the authors' ``dataset/prepare_gqa_dataset.py`` filters them
  (`GQAOptions`, with their defaults). Every record is validated in full before the filter;
  width, height and objects are required (GQA always has them; the authors skip records without).
  A GQA relation "s <predicate> o" becomes the triple (s, relation, o) and, where the project has a
  name for it, the inverse (o, inverse, s), as the generator stores both. The scene's anchor is
  the object with the most relations that have exactly one target; with the authors'
  one-object-per-predicate rule every GQA subject qualifies, so their query (given the subject,
  name the object) is the project task anchor = subject, inverse relation.
* The synthetic ``metadata.csv`` of the authors' ``dataset/generate_synthetic_images.py`` has the
  columns image_name, anchor, above_object, below_object, left_object, right_object, random_object1
  and, for each of those objects, ``<column>_pos`` ("x y", the centre where it was pasted) and
  ``<column>_size`` ("w h", the pasted picture). The diagonal variant read by their
  ``synthetic_dataset.py`` (``above_left_object``, ...) is read too. Each row becomes a scene with
  the anchor set and the triples (neighbour, relation, anchor) plus their inverses.

Missing image files (GQA and CSV alike) are skipped and counted in a logged warning; when no image
of the records that passed exists, the import fails with a BadImport saying where the images were
looked for. A record that passes no filter is not an error; an empty file or a file without records
is.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import stat
import warnings
from collections import Counter, OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterator, Mapping

from PIL import Image

from .model import (
    INVERSE, SPATIAL_RELATIONS, Box, RelationTriple, Scene, SceneError, SceneObject, _short, check_name, check_text,
)
from .objects import validate_name

log = logging.getLogger(__name__)

StrPath = str | os.PathLike[str]


class BadImport(SceneError):
    """An outside file that cannot be imported; the message names the file and the fix."""


#: images with more pixels than this are refused before decoding (decompression bombs)
MAX_PIXELS: int = 50_000_000
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: Pillow formats tried when opening an image (Pillow's JPEG opener also opens phones' MPO files)
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
#: EXIF orientations that turn the picture by 90 degrees (width and height swap when shown upright)
_TURNED = frozenset({5, 6, 7, 8})
#: largest GQA scene-graph file read (the official train_sceneGraphs.json is well below)
MAX_JSON_BYTES: int = 2 * 1024**3
#: largest metadata.csv read (the authors' 4000-row file is about 1 MB)
MAX_CSV_BYTES: int = 256 * 1024**2
#: largest coordinate or size, in pixels, taken from a file
MAX_COORD: float = 1e7

_IMAGE_FIX = "use a PNG, JPEG, BMP, GIF, WebP or TIFF image"
_GQA_FIX = ("expected a GQA scene-graph file such as train_sceneGraphs.json: {image_id: {width, height, "
            "objects: {object_id: {name, x, y, w, h, relations: [{name, object}]}}}}")
_CSV_FIX = ("expected the metadata.csv written by the authors' generate_synthetic_images.py: image_name, anchor, "
            "above_object, below_object, left_object, right_object, random_object1, each object with <column>_pos "
            "('x y') and <column>_size ('w h')")

# -- images -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    #: the picture's size shown upright (after its EXIF orientation)
    width: int
    height: int
    format: str
    #: of the file's bytes
    sha256: str
    size: int
    #: the EXIF orientation (1: stored upright; else the store keeps an upright copy, see `upright_png`)
    orientation: int = 1


def _regular_file(path: Path, fix: str, max_bytes: int | None = None) -> int:
    """The size of `path` if it is a non-empty regular file (of at most `max_bytes`); else BadImport."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BadImport(f"{path}: no such file; {fix}") from None
    except (OSError, ValueError) as e:
        raise BadImport(f"{path}: cannot be read ({e}); {fix}") from e
    if stat.S_ISDIR(st.st_mode):
        raise BadImport(f"{path} is a folder, not a file; {fix}")
    if not stat.S_ISREG(st.st_mode):
        raise BadImport(f"{path} is not a regular file; {fix}")
    if st.st_size == 0:
        raise BadImport(f"{path} is empty; {fix}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise BadImport(f"{path} is {st.st_size:,} bytes, over the limit of {max_bytes:,}; {fix}")
    return st.st_size


#: sha256 -> (width, height, format) of images already decoded in full: an import checks a file,
#: then the store checks it again as it copies it in, and many scenes may share one image
_DECODED: "OrderedDict[tuple[str, int], tuple[int, int, str, int]]" = OrderedDict()
_DECODED_MAX = 4096


def check_image(path: StrPath, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Open, size-check and fully decode an image; BadImport (naming the file) if it is not usable.
    Bytes already decoded in this process (same sha256) are not decoded again."""
    p = Path(path)
    size = _regular_file(p, _IMAGE_FIX)
    limit = f"over the pixel limit of {max_pixels:,}; use a smaller image"
    try:
        data = p.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        known = _DECODED.get((digest, max_pixels))
        if known is not None:
            _DECODED.move_to_end((digest, max_pixels))
            width, height, fmt, orientation = known
            return ImageInfo(p.resolve(), width, height, fmt, digest, size, orientation)
        with warnings.catch_warnings():
            # our own limit applies (below), whatever Pillow's global MAX_IMAGE_PIXELS says
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise BadImport(f"{p} has no pixels ({width}x{height}); {_IMAGE_FIX}")
                if width * height > max_pixels:
                    raise BadImport(f"{p} is {width}x{height} = {width * height:,} pixels, {limit}")
                img.load()
                fmt = str(img.format)
                orientation = img.getexif().get(0x0112, 1)
                orientation = orientation if orientation in range(2, 9) else 1
                if orientation in _TURNED:
                    width, height = height, width
    except BadImport:
        raise
    except Image.DecompressionBombError as e:
        raise BadImport(f"{p} claims a huge size ({e}), {limit}") from e
    except Exception as e:  # Pillow's decoders raise many kinds of errors on hostile bytes
        raise BadImport(f"{p} is not a readable image, or is truncated or corrupt ({type(e).__name__}: {e}); "
                        f"{_IMAGE_FIX}") from e
    _DECODED[(digest, max_pixels)] = (width, height, fmt, orientation)
    if len(_DECODED) > _DECODED_MAX:
        _DECODED.popitem(last=False)
    return ImageInfo(p.resolve(), width, height, fmt, digest, size, orientation)


def upright_png(path: StrPath) -> bytes:
    """The image turned as its EXIF orientation says, as PNG bytes without EXIF (for an image that
    `check_image` found with an orientation other than 1): canvas, thumbnail and model then agree."""
    from PIL import ImageOps

    with Image.open(path, formats=IMAGE_FORMATS) as img:
        up = ImageOps.exif_transpose(img)
        if up.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
            up = up.convert("RGB")
        buf = io.BytesIO()
        up.save(buf, "PNG")
    return buf.getvalue()


def _folder(folder: StrPath, what: str) -> Path:
    p = Path(folder)
    if not p.is_dir():
        raise BadImport(f"{p}: {'not a folder' if p.exists() else 'no such folder'}; choose {what}")
    return p.resolve()


def find_images(folder: StrPath, recursive: bool = True) -> list[Path]:
    """Image files under `folder` (by suffix, any case), sorted; hidden entries and links leading out skipped."""
    root = _folder(folder, "a folder of images")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):  # links to folders are not followed
        dirnames[:] = [d for d in dirnames if not d.startswith(".")] if recursive else []
        for name in filenames:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
                continue
            p = Path(dirpath, name)
            try:
                target = p.resolve(strict=True)
            except (OSError, RuntimeError):  # dangling link or link loop
                continue
            if target.is_relative_to(root) and target.is_file():
                found.append(p)
    return sorted(found)


def safe_child(root: StrPath, relative: str) -> Path:
    """The resolved path of `relative` inside `root`; BadImport if it is absolute or leads outside."""
    base = Path(root).resolve()
    fix = f"give a path relative to {base} that stays inside it"
    if not isinstance(relative, str) or not relative.strip():
        raise BadImport(f"empty or missing path {relative!r}; {fix}")
    if "\x00" in relative:
        raise BadImport(f"path {relative!r} contains a NUL byte; {fix}")
    if PurePosixPath(relative).is_absolute() or PureWindowsPath(relative).anchor:
        raise BadImport(f"path {relative!r} is absolute; {fix}")
    lexical = Path(os.path.normpath(base / relative))
    if lexical == base or not lexical.is_relative_to(base):
        raise BadImport(f"path {relative!r} leads outside {base} (through '..') or to the folder itself; {fix}")
    try:
        real = lexical.resolve()
    except (OSError, RuntimeError) as e:
        raise BadImport(f"path {relative!r} cannot be resolved ({e}); {fix}") from e
    if not real.is_relative_to(base) or real == base:
        raise BadImport(f"path {relative!r} leads through a link to {real}, outside {base}; {fix}")
    return real


def _meta(info: ImageInfo, source: str, **extra: Any) -> dict[str, Any]:
    """What a scene records of its image file; sha256 is the original file's (the store may keep an
    upright copy of a photo with an EXIF orientation)."""
    turned = {"exif_orientation": info.orientation} if info.orientation != 1 else {}
    return {"source": source, "sha256": info.sha256, "format": info.format, "bytes": info.size, **turned, **extra}


def scene_from_image(path: StrPath, scene_id: str | None = None, split: str = "imported") -> Scene:
    """A scene without objects for a plain image (objects and relations are added by hand later)."""
    info = check_image(path)
    try:
        name = check_text(scene_id or info.path.stem, "the scene name")
    except SceneError as e:
        raise BadImport(f"{path}: {e}; rename the file") from e
    return Scene(name, str(info.path), info.width, info.height, (), (), split=split, meta=_meta(info, "image"))


# -- validation helpers ---------------------------------------------------------------------------


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) <= MAX_COORD:
        raise SceneError(f"{what} must be a finite number of pixels (at most {MAX_COORD:g}), got {_short(value)}")
    return value


def _dim(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_COORD:
        raise SceneError(f"{what} must be a whole number of pixels from 1 to {MAX_COORD:g}, got {_short(value)}")
    return value


def _key(d: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in d:
        raise SceneError(f"{what} has no {key!r}")
    return d[key]


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SceneError(f"{what} must be a JSON object, got {_short(value)}")
    return value


def _clip(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Box | None:
    """The part of a box inside the image, None if nothing is left."""
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    return Box(x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


@contextmanager
def _record(where: str, fix: str) -> Iterator[None]:
    """Errors in one record become a BadImport naming the file and the record."""
    try:
        yield
    except BadImport as e:
        raise BadImport(f"{where}: {e}") from e
    except (ValueError, OverflowError, OSError) as e:  # SceneError is a ValueError
        raise BadImport(f"{where}: {e}; {fix}") from e


@contextmanager
def _whole_file(path: Path, fix: str) -> Iterator[None]:
    """Errors reading a file (encoding, nesting, limits) become a BadImport naming it."""
    try:
        yield
    except BadImport:
        raise
    except UnicodeError as e:
        raise BadImport(f"{path} is not UTF-8 text ({e.__class__.__name__}); save it as UTF-8; {fix}") from e
    except (ValueError, OverflowError, RecursionError, MemoryError, OSError, csv.Error) as e:
        raise BadImport(f"{path} cannot be read ({type(e).__name__}: {e}); {fix}") from e


def _unique(names: list[str]) -> list[str]:
    """Repeated names get "_2", "_3", ... (the first keeps its name)."""
    taken, out = set(names), []
    seen: Counter[str] = Counter()
    for n in names:
        seen[n] += 1
        if seen[n] > 1:
            k = seen[n]
            while f"{n}_{k}" in taken:
                k += 1
            n = f"{n}_{k}"
            taken.add(n)
        out.append(n)
    return out


def _with_inverses(triples: list[RelationTriple], inverse: Mapping[str, str]) -> tuple[RelationTriple, ...]:
    both = triples + [RelationTriple(t.object, inverse[t.relation], t.subject) for t in triples
                      if t.relation in inverse]
    return tuple(dict.fromkeys(both))


def _best_anchor(objects: tuple[SceneObject, ...], relations: tuple[RelationTriple, ...]) -> str | None:
    """The object with the most relations that have exactly one target (the first on ties)."""
    per = Counter((t.object, t.relation) for t in relations)
    score = Counter(obj for (obj, _), n in per.items() if n == 1)
    best = max((o.name for o in objects), key=lambda n: score[n], default=None)
    return best if best is not None and score[best] else None


def _report_missing(missing: list[str], kept: int, folder: Path, what: str) -> None:
    if not missing:
        return
    if not kept:
        raise BadImport(f"none of the {len(missing)} images to import exists in {folder} (e.g. {missing[0]}); "
                        f"choose the folder that holds {what}")
    log.warning("skipped %d records whose image is missing in %s (e.g. %s)", len(missing), folder, missing[0])


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
RELATION_INVERSE: Mapping[str, str] = {**INVERSE, "next_to": "next_to", "behind": "in_front_of",
                                       "in_front_of": "behind"}
#: the authors' blacklist of GQA object names (prepare_gqa_dataset.py, DEFAULT_NOT_ALLOWED_OBJECTS)
GQA_EXCLUDED_NAMES: frozenset[str] = frozenset({
    "sky", "wall", "floor", "ceiling", "building", "trees", "grass", "ocean", "water", "fence", "bush", "neck",
    "hair", "legs", "rocks", "bushes", "clouds", "cloud", "sun", "stars", "cars", "leaves", "fingers", "hand", "arm",
})


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
        if not self.relations or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                         for k, v in self.relations.items()):
            raise SceneError("GQAOptions.relations must map GQA predicates to project relation names")
        object.__setattr__(self, "relations", {k.strip().lower(): v for k, v in self.relations.items()})
        object.__setattr__(self, "excluded_names", frozenset(n.lower() for n in self.excluded_names))
        if not (0 <= self.min_area_ratio <= self.max_area_ratio and 0 <= self.min_objects <= self.max_objects
                and 0 <= self.min_relations <= self.max_relations and self.max_same_name >= 1):
            raise SceneError("GQAOptions: need 0 <= min <= max for area ratio, objects and relations, and "
                             "max_same_name >= 1")


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
                    return buf[pos:pos + 1]
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
            raise BadImport(f"{path} holds a JSON list, perhaps an already filtered file (prepare_gqa_dataset.py "
                            f"output); import the original scene graphs instead; {fix}")
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


def _gqa_scene_parts(graph: Any, opt: GQAOptions
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


def read_gqa_scene_graphs(json_path: StrPath, images_folder: StrPath, options: GQAOptions = GQAOptions()
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
                    raise SceneError(f"the scene graph is {width}x{height} but {image} is "
                                     f"{info.width}x{info.height}; use the GQA images of these scene graphs")
                scenes.append(Scene(image_id, str(info.path), width, height, objects, relations,
                                    anchor=_best_anchor(objects, relations), split="imported",
                                    meta=_meta(info, "gqa", file=path.name)))
    if not seen:
        raise BadImport(f"{path} holds no scene graphs; {_GQA_FIX}")
    _report_missing(missing, len(scenes), folder, "the GQA images (<image_id>.jpg)")
    log.info("%s: %d of %d scene graphs imported", path, len(scenes), len(seen))
    return scenes


# -- the authors' synthetic metadata.csv ------------------------------------------------------------

#: the split of each of the authors' synthetic folders (README: eval extracts, train fine-tunes)
AUTHOR_SPLITS: Mapping[str, str] = {
    "synthetic_spatial_relation_eval": "extract",
    "synthetic_spatial_relation_train": "finetune",
    "synthetic_spatial_relation_test": "test",
    "synthetic_spatial_relation_novel_objects_test": "novel",
}
#: the authors' object-name corrections (synthetic_dataset.py, manual_correct_obj_name)
AUTHOR_NAME_FIXES: Mapping[str, str] = {"coffee": "mug", "greenbottle": "bottle", "baseballbat": "bat"}


def _author_name(name: str) -> str:
    name = name[len("antique"):] if name.startswith("antique") else name
    return AUTHOR_NAME_FIXES.get(name, name)


def _pair(cell: str, what: str, positive: bool = False) -> tuple[float, float]:
    """Two numbers "a b" (a pixel position or size)."""
    try:
        a, b = (float(v) for v in cell.split())  # ValueError: not two numbers
        if not all(abs(v) <= MAX_COORD and (v > 0 or not positive) for v in (a, b)):
            raise ValueError
    except ValueError:
        raise SceneError(f"{what} must be two {'positive ' if positive else ''}numbers 'a b' of at most "
                         f"{MAX_COORD:g} pixels, got {_short(cell)}") from None
    return a, b


def _roles(header: list[str]) -> list[str]:
    """The object columns of a metadata.csv header: anchor, <relation>_object..., random_object<n>..."""
    rel_cols = {f"{r}_object" for r in SPATIAL_RELATIONS}
    roles = [c for c in header if c == "anchor" or c in rel_cols or re.fullmatch(r"random_object\d+", c)]
    need = ["image_name", "anchor"] + [f"{r}_{k}" for r in roles or ["anchor"] for k in ("pos", "size")]
    missing = [c for c in need if c not in header]
    if missing or not rel_cols & set(roles) or len(set(header)) != len(header):
        problem = f"missing columns {missing}" if missing else (
            "repeated columns" if len(set(header)) != len(header) else "no <relation>_object column")
        raise SceneError(f"{problem} (columns found: {_short(header)})")
    return roles


def read_synthetic_metadata(csv_path: StrPath, images_folder: StrPath | None = None) -> list[Scene]:
    """Scenes from the authors' synthetic metadata.csv; images are relative to its folder (or `images_folder`)."""
    path = Path(csv_path)
    _regular_file(path, _CSV_FIX, MAX_CSV_BYTES)
    folder = _folder(path.parent if images_folder is None else images_folder, "the folder of the synthetic images")
    split = AUTHOR_SPLITS.get(path.resolve().parent.name, "imported")
    scenes: list[Scene] = []
    missing: list[str] = []
    rows: dict[str, int] = {}
    with _whole_file(path, _CSV_FIX), path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [c.strip() for c in next(reader, [])]
        with _record(f"{path}, header", _CSV_FIX):
            roles = _roles(header)
        for i, cells in enumerate(reader, 1):
            if not any(c.strip() for c in cells):
                continue
            with _record(f"{path}, row {i} (line {reader.line_num})", _CSV_FIX):
                if len(cells) != len(header):
                    raise SceneError(f"the row has {len(cells)} fields, the header {len(header)}")
                row = dict(zip(header, cells))
                image_name = check_text(row["image_name"], "image_name")
                image = safe_child(folder, image_name)
                scene_id = PurePosixPath(image_name).stem
                if scene_id in rows:
                    raise SceneError(f"image {image_name!r} is listed again (first in row {rows[scene_id]})")
                rows[scene_id] = i
                layout = {role: (check_name(_author_name(check_text(row[role], role)), role),
                                 _pair(row[f"{role}_pos"], f"{role}_pos"),
                                 _pair(row[f"{role}_size"], f"{role}_size", positive=True)) for role in roles}
                if not image.exists():
                    missing.append(image_name)
                    continue
                info = check_image(image)
                objects = []
                for role, (name, (cx, cy), (w, h)) in layout.items():
                    x0, y0 = cx - w // 2, cy - h // 2  # the authors paste at the centre minus half the size
                    box = _clip(x0, y0, x0 + w, y0 + h, info.width, info.height)
                    if box is None:
                        raise SceneError(f"{role} {name!r} lies outside the {info.width}x{info.height} image")
                    objects.append(SceneObject(name, box))
                names = {role: layout[role][0] for role in roles}
                triples = [RelationTriple(names[f"{r}_object"], r, names["anchor"])
                           for r in SPATIAL_RELATIONS if f"{r}_object" in names]
                scenes.append(Scene(scene_id, str(info.path), info.width, info.height, tuple(objects),
                                    _with_inverses(triples, INVERSE), anchor=names["anchor"], split=split,
                                    meta=_meta(info, "synthetic-metadata", file=path.name, row=i)))
    if not rows:
        raise BadImport(f"{path} has no rows; {_CSV_FIX}")
    _report_missing(missing, len(scenes), folder, "the images named in image_name")
    return scenes
