"""The authors' synthetic metadata.csv (generate_synthetic_images.py), one scene per row."""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from ..model import (
    INVERSE,
    SPATIAL_RELATIONS,
    RelationTriple,
    Scene,
    SceneError,
    SceneObject,
    _short,
    check_name,
    check_text,
)
from .images import BadImport, StrPath, _folder, _meta, _regular_file, check_image, safe_child
from .records import MAX_COORD, _clip, _record, _report_missing, _whole_file, _with_inverses

#: largest metadata.csv read (the authors' 4000-row file is about 1 MB)
MAX_CSV_BYTES: int = 256 * 1024**2
_CSV_FIX = (
    "expected the metadata.csv written by the authors' generate_synthetic_images.py: image_name, anchor, "
    "above_object, below_object, left_object, right_object, random_object1, each object with <column>_pos "
    "('x y') and <column>_size ('w h')"
)


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
    name = name[len("antique") :] if name.startswith("antique") else name
    return AUTHOR_NAME_FIXES.get(name, name)


def _pair(cell: str, what: str, positive: bool = False) -> tuple[float, float]:
    """Two numbers "a b" (a pixel position or size)."""
    try:
        a, b = (float(v) for v in cell.split())  # ValueError: not two numbers
        if not all(abs(v) <= MAX_COORD and (v > 0 or not positive) for v in (a, b)):
            raise ValueError
    except ValueError:
        raise SceneError(
            f"{what} must be two {'positive ' if positive else ''}numbers 'a b' of at most "
            f"{MAX_COORD:g} pixels, got {_short(cell)}"
        ) from None
    return a, b


def _roles(header: list[str]) -> list[str]:
    """The object columns of a metadata.csv header: anchor, <relation>_object..., random_object<n>..."""
    rel_cols = {f"{r}_object" for r in SPATIAL_RELATIONS}
    roles = [c for c in header if c == "anchor" or c in rel_cols or re.fullmatch(r"random_object\d+", c)]
    need = ["image_name", "anchor"] + [f"{r}_{k}" for r in roles or ["anchor"] for k in ("pos", "size")]
    missing = [c for c in need if c not in header]
    if missing or not rel_cols & set(roles) or len(set(header)) != len(header):
        problem = (
            f"missing columns {missing}"
            if missing
            else ("repeated columns" if len(set(header)) != len(header) else "no <relation>_object column")
        )
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
                layout = {
                    role: (
                        check_name(_author_name(check_text(row[role], role)), role),
                        _pair(row[f"{role}_pos"], f"{role}_pos"),
                        _pair(row[f"{role}_size"], f"{role}_size", positive=True),
                    )
                    for role in roles
                }
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
                triples = [
                    RelationTriple(names[f"{r}_object"], r, names["anchor"])
                    for r in SPATIAL_RELATIONS
                    if f"{r}_object" in names
                ]
                scenes.append(
                    Scene(
                        scene_id,
                        str(info.path),
                        info.width,
                        info.height,
                        tuple(objects),
                        _with_inverses(triples, INVERSE),
                        anchor=names["anchor"],
                        split=split,
                        meta=_meta(info, "synthetic-metadata", file=path.name, row=i),
                    )
                )
    if not rows:
        raise BadImport(f"{path} has no rows; {_CSV_FIX}")
    _report_missing(missing, len(scenes), folder, "the images named in image_name")
    return scenes
