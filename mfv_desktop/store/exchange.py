"""Import and export: a data set as JSON + images (our own format), vectors as safetensors + JSON,
result tables and AIE matrices as CSV and NPY. Reading what another machine wrote is hostile input:
every problem is a `BadImport` that names the file."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any, Generator

import numpy as np
from sqlalchemy import select

from mfv_desktop.progress import Progress, within
from mfv_desktop.scenes import Scene as SceneData
from mfv_desktop.scenes import SceneError
from mfv_desktop.scenes.importers import BadImport, safe_child

from . import models as m
from .db import Store
from .errors import StoreError
from .scenes import add_scenes, dataset_id, get_scene

DATASET_FORMAT = "mfv-dataset/1"
DATASET_FILE = "dataset.json"
MAX_DATASET_JSON = 1 << 30


# -- data sets --------------------------------------------------------------------------------
def export_dataset(store: Store, dataset: str, folder: str | Path) -> Path:
    """`folder`/dataset.json with every scene and label (any status), and `folder`/images/."""
    folder = Path(folder)
    with store.session() as s:
        ds = s.get(m.Dataset, dataset_id(s, dataset, create=False))
        description = ds.description
        ids = list(s.scalars(select(m.Scene.id).where(m.Scene.dataset_id == ds.id).order_by(m.Scene.id)))
        vocab = [{"name": r.name, "kind": r.kind, "parts": r.parts, "description": r.description}
                 for r in s.scalars(select(m.Relation))]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for sid in ids:
        scene, labels = get_scene(store, sid)
        src = Path(scene.image)
        rel = f"images/{src.name}"
        if not (folder / rel).is_file():
            shutil.copyfile(src, folder / rel)
        rec = scene.with_(image=rel).to_json()
        rec["labels"] = [{"subject": lb.subject, "relation": lb.relation, "object": lb.object, "source": lb.source,
                          "status": lb.status} for lb in labels]
        records.append(rec)
    doc = {"format": DATASET_FORMAT, "name": dataset, "description": description, "relations": vocab,
           "scenes": records}
    tmp = folder / (DATASET_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
    tmp.replace(folder / DATASET_FILE)
    return folder


def read_dataset_export(folder: str | Path) -> tuple[dict[str, Any], list[SceneData], dict[str, list[tuple]]]:
    """Parse an exported data set: (its header, scenes with absolute image paths, labels by scene id)."""
    folder = Path(folder)
    path = folder / DATASET_FILE if folder.is_dir() else folder
    folder = path.parent
    try:
        if path.stat().st_size > MAX_DATASET_JSON:
            raise BadImport(f"{path} is larger than {MAX_DATASET_JSON >> 20} MiB; split the data set")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        if isinstance(e, BadImport):
            raise
        raise BadImport(f"{path} is not a readable mfv data set export ({type(e).__name__}: {e}); "
                        "export it again with `mfv export dataset`") from e
    if not isinstance(doc, dict) or doc.get("format") != DATASET_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise BadImport(f"{path}: format is {got!r}, expected {DATASET_FORMAT!r}")
    scenes, labels = [], {}
    records = doc.get("scenes")
    if not isinstance(records, list):
        raise BadImport(f"{path}: 'scenes' must be a list")
    for i, rec in enumerate(records):
        try:
            if not isinstance(rec, dict):
                raise SceneError(f"a scene must be an object, got {type(rec).__name__}")
            image = safe_child(folder, str(rec.get("image", "")))
            scene = SceneData.from_json({**rec, "image": str(image)})
            raw = rec.get("labels")
            if raw is None:
                labs = [(t.subject, t.relation, t.object, "import", "confirmed") for t in scene.relations]
            elif isinstance(raw, list) and all(isinstance(lb, dict) for lb in raw):
                labs = [tuple(str(lb[k]) for k in ("subject", "relation", "object", "source", "status")) for lb in raw]
            else:
                raise SceneError("'labels' must be a list of objects")
        except BadImport as e:
            raise BadImport(f"{path}, scene {i}: {e}") from e
        except (SceneError, KeyError, TypeError, ValueError) as e:
            raise BadImport(f"{path}, scene {i}: {e}") from e
        scenes.append(scene)
        labels[scene.id] = labs
    name = doc.get("name")
    header = {"name": name if isinstance(name, str) and name else folder.name,
              "description": doc.get("description") if isinstance(doc.get("description"), str) else ""}
    return header, scenes, labels


def import_dataset_export(store: Store, folder: str | Path, dataset: str | None = None) -> Generator[Progress, None, dict]:
    """Add an exported data set (as `dataset`, or under its own name)."""
    header, scenes, labels = read_dataset_export(folder)
    name = dataset or header["name"]
    with store.session() as s:
        dataset_id(s, name, description=header["description"])
    try:
        return (yield from add_scenes(store, name, scenes, origin="imported", labels=lambda sc: labels[sc.id]))
    except StoreError as e:
        raise BadImport(f"{folder}: {e}") from e


# -- tables and matrices ---------------------------------------------------------------------------
def export_evaluations(store: Store, path: str | Path, run_id: int | None = None) -> Path:
    """Every evaluation row (of one run, if given: StoreError when it does not exist) as CSV."""
    path = Path(path)
    cols = ["run_id", "model_id", "relation", "condition", "k", "n", "accuracy", "split", "vector_id"]
    with store.session() as s:
        q = select(m.EvaluationRow).order_by(m.EvaluationRow.id)
        if run_id is not None:
            if s.get(m.Run, run_id) is None:
                raise StoreError(f"there is no run {run_id} in the store (see `mfv runs`); nothing was exported")
            q = q.where(m.EvaluationRow.run_id == run_id)
        rows = [[getattr(r, c) for c in cols] for r in s.scalars(q)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerows(rows)
    return path


def export_aie(store: Store, aie_id: int, folder: str | Path) -> tuple[Path, Path]:
    """One AIE result as <relation>-aie.csv (layer rows, head columns) and <relation>-aie.npy."""
    with store.session() as s:
        row = s.get(m.AIEResultRow, aie_id)
        if row is None:
            raise StoreError(f"there is no AIE result {aie_id} in the store (see `mfv results`)")
        relation, digest = row.relation, row.aie_artifact
    aie = store.artifacts.get(digest)["aie"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{relation}-aie-{aie_id}"
    np.save(folder / f"{stem}.npy", aie, allow_pickle=False)
    with (folder / f"{stem}.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["layer", *[f"head{h}" for h in range(aie.shape[1])]])
        w.writerows([[layer, *map(float, r)] for layer, r in enumerate(aie)])
    return folder / f"{stem}.csv", folder / f"{stem}.npy"


def export_vector(store: Store, vector_id: int, folder: str | Path) -> Path:
    """The vector file (loadable on another machine) and a JSON sidecar with its row."""
    with store.session() as s:
        row = s.get(m.VectorRow, vector_id)
        if row is None:
            raise StoreError(f"there is no vector {vector_id} in the store (see `mfv vectors`)")
        info = {c.name: getattr(row, c.name) for c in m.VectorRow.__table__.columns}
        info["parents"] = [{"parent_id": p.parent_id, "weight": p.weight} for p in row.parents]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in (info["label"] or info["relation"]))
    dest = folder / f"{name}-{vector_id}.safetensors"
    dest.write_bytes(store.artifacts.read_bytes(info["artifact"]))
    dest.with_suffix(".json").write_text(json.dumps(info, indent=1, sort_keys=True))
    return dest


# -- outside formats ---------------------------------------------------------------------------------
def import_images(store: Store, paths: list[str | Path], dataset: str,
                  split: str = "imported") -> Generator[Progress, None, dict]:
    """Image files and folders (searched recursively) as scenes with no objects yet; files that are
    not usable images are skipped and named in the result."""
    from mfv_desktop.scenes.importers import find_images, scene_from_image

    files: list[tuple[Path, str]] = []  # (file, scene name: its path inside the folder imported)
    for p in map(Path, paths):
        if p.is_dir():
            files.extend((f, f.relative_to(p).with_suffix("").as_posix()) for f in find_images(p))
        else:
            files.append((p, p.stem))
    scenes, skipped = [], []
    for i, (f, name) in enumerate(files):
        try:
            scenes.append(scene_from_image(f, name, split=split))
        except BadImport as e:
            skipped.append(str(e))
        if i % 200 == 0:
            yield Progress(i, 2 * len(files), f"checking images ({len(skipped)} skipped)")
    result = yield from within(add_scenes(store, dataset, scenes, origin="imported"), len(files), 2 * len(files))
    return {**result, "not_images": skipped}


def import_gqa(store: Store, scene_graphs: str | Path, images: str | Path, dataset: str,
               options: Any = None) -> Generator[Progress, None, dict]:
    from mfv_desktop.scenes.importers import GQAOptions, read_gqa_scene_graphs

    scenes = read_gqa_scene_graphs(scene_graphs, images, options or GQAOptions())
    return (yield from add_scenes(store, dataset, scenes, origin="imported"))


def import_synthetic_metadata(store: Store, csv_path: str | Path, dataset: str,
                              images: str | Path | None = None) -> Generator[Progress, None, dict]:
    from mfv_desktop.scenes.importers import read_synthetic_metadata

    scenes = read_synthetic_metadata(csv_path, images)
    return (yield from add_scenes(store, dataset, scenes, origin="generated"))
