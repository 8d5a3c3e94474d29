"""Import and export: a data set as JSON + images (our own format), vectors as safetensors + JSON,
result tables and AIE matrices as CSV and NPY. Reading what another machine wrote is hostile input:
every problem is a `BadImport` that names the file."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Generator, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import numpy as np
from sqlalchemy import select

from mfv_desktop.files import atomic_write
from mfv_desktop.progress import Progress, within
from mfv_desktop.scenes import Scene as SceneData
from mfv_desktop.scenes import SceneError, path_part
from mfv_desktop.scenes.importers import BadImport, check_image, safe_child

if TYPE_CHECKING:
    from mfv_desktop.scenes.importers import GQAOptions

from . import models as m
from .db import Store
from .errors import StoreError
from .scenes import AddedScenes, LabelIn, add_scenes, dataset_id, get_scene, storable

DATASET_FORMAT = "mfv-dataset/1"
DATASET_FILE = "dataset.json"
MAX_DATASET_JSON = 1 << 30
#: the kind of the run row each import into the store records (it is not a job: it cannot be resumed)
IMPORT_KIND = "import"
#: seconds between progress updates of an import's run row
UPDATE_EVERY_S = 0.5


class DatasetHeader(TypedDict):
    """An exported data set's name and description (`read_dataset_export`)."""

    name: str
    description: str


class ImportedImages(AddedScenes):
    """What `import_images` did: `add_scenes`'s counts and the files that were not usable images."""

    not_images: list[str]


#: what a recorded import returns
_Result = TypeVar("_Result", bound=Mapping[str, object])


# -- data sets --------------------------------------------------------------------------------
def export_dataset(store: Store, dataset: str, folder: str | Path) -> Path:
    """`folder`/dataset.json with every scene and label (any status), and `folder`/images/."""
    folder = Path(folder)
    with store.session() as s:
        ds = s.get_one(m.Dataset, dataset_id(s, dataset, create=False))
        description = ds.description
        ids = list(s.scalars(select(m.Scene.id).where(m.Scene.dataset_id == ds.id).order_by(m.Scene.id)))
        vocab = [
            {"name": r.name, "kind": r.kind, "parts": r.parts, "description": r.description}
            for r in s.scalars(select(m.Relation))
        ]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for sid in ids:
        scene, labels = get_scene(store, sid)
        src = Path(scene.image)
        rel = f"images/{src.name}"
        if not (folder / rel).is_file():
            shutil.copyfile(src, folder / rel)
        rec = scene.with_(image=rel).to_json()
        rec["labels"] = [
            {
                "subject": lb.subject,
                "relation": lb.relation,
                "object": lb.object,
                "source": lb.source,
                "status": lb.status,
            }
            for lb in labels
        ]
        records.append(rec)
    doc = {"format": DATASET_FORMAT, "name": dataset, "description": description, "relations": vocab, "scenes": records}
    atomic_write(folder / DATASET_FILE, json.dumps(doc, indent=1, sort_keys=True))
    return folder


def read_dataset_export(folder: str | Path) -> tuple[DatasetHeader, list[SceneData], dict[str, list[LabelIn]]]:
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
        raise BadImport(
            f"{path} is not a readable mfv data set export ({type(e).__name__}: {e}); "
            "export it again with `mfv export dataset`"
        ) from e
    if not isinstance(doc, dict) or doc.get("format") != DATASET_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise BadImport(f"{path}: format is {got!r}, expected {DATASET_FORMAT!r}")
    scenes: list[SceneData] = []
    labels: dict[str, list[LabelIn]] = {}
    records = doc.get("scenes")
    if not isinstance(records, list):
        raise BadImport(f"{path}: 'scenes' must be a list")
    for i, rec in enumerate(records):
        try:
            if not isinstance(rec, dict):
                raise SceneError(f"a scene must be an object, got {type(rec).__name__}")
            image = check_image(safe_child(folder, str(rec.get("image", "")))).path
            scene = SceneData.from_json({**rec, "image": str(image)})
            raw = rec.get("labels")
            labs: list[LabelIn]
            if raw is None:
                labs = [(t.subject, t.relation, t.object, "import", "confirmed") for t in scene.relations]
            elif isinstance(raw, list) and all(isinstance(lb, dict) for lb in raw):
                labs = [
                    (str(lb["subject"]), str(lb["relation"]), str(lb["object"]), str(lb["source"]), str(lb["status"]))
                    for lb in raw
                ]
            else:
                raise SceneError("'labels' must be a list of objects")
        except BadImport as e:
            raise BadImport(f"{path}, scene {i}: {e}") from e
        except (SceneError, KeyError, TypeError, ValueError) as e:
            raise BadImport(f"{path}, scene {i}: {e}") from e
        scenes.append(scene)
        labels[scene.id] = labs
    name = doc.get("name")
    description = doc.get("description")
    header = DatasetHeader(
        name=name if isinstance(name, str) and name else folder.name,
        description=description if isinstance(description, str) else "",
    )
    return header, scenes, labels


def import_dataset_export(
    store: Store, folder: str | Path, dataset: str | None = None
) -> Generator[Progress, None, AddedScenes]:
    """Add an exported data set (as `dataset`, or under its own name), all or nothing."""
    spec = {"what": "dataset", "folder": str(Path(folder).resolve()), "dataset": dataset}

    def work() -> Generator[Progress, None, AddedScenes]:
        header, scenes, labels = read_dataset_export(folder)
        source = Path(folder) / DATASET_FILE if Path(folder).is_dir() else folder
        return (
            yield from _adding(
                store,
                source,
                dataset or header["name"],
                scenes,
                origin="imported",
                labels=lambda sc: labels[sc.id],
                description=header["description"],
            )
        )

    return (yield from _recorded(store, spec, work()))


def _adding(
    store: Store, source: str | Path, dataset: str, scenes: Iterable[SceneData], **kw: Any
) -> Generator[Progress, None, AddedScenes]:
    """`add_scenes` for an import: a scene the store refuses is a BadImport naming the source file."""
    try:
        return (yield from add_scenes(store, dataset, scenes, **kw))
    except (StoreError, BadImport) as e:
        if isinstance(e, StoreError) and e.kind != "error":  # the store's own state (a full disk, read-only): as is
            raise
        raise BadImport(f"{source}: {e}") from e


def _recorded(
    store: Store, spec: dict[str, Any], work: Generator[Progress, None, _Result]
) -> Generator[Progress, None, _Result]:
    """Run an import recorded as a run row of kind "import" (what `mfv runs` and the Jobs panel list):
    running with its progress, then done with its counts, or failed / cancelled with the error. Its
    first yield is `Progress.run_started(id)`, as soon as the row exists; what follows carries the id."""
    started = time.time()
    with store.session() as s:
        row = m.Run(
            kind=IMPORT_KIND, spec={"kind": IMPORT_KIND, **spec}, status="running", pid=os.getpid(), started=started
        )
        s.add(row)
        s.flush()
        run_id = row.id
    last = 0.0
    status, error = "failed", None
    result: _Result | None = None
    try:
        yield Progress.run_started(run_id)
        while True:
            try:
                p = next(work)
            except StopIteration as stop:
                result = stop.value
                break
            if time.time() - last >= UPDATE_EVERY_S:
                last = time.time()
                with store.session() as s:
                    r = s.get_one(m.Run, run_id)
                    r.done, r.total, r.message, r.updated = p.done, p.total, p.message[:200], last
            yield dataclasses.replace(p, run_id=run_id)
        status = "done"
    except GeneratorExit:
        status, error = "cancelled", "cancelled"
        raise
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted"
        raise
    except BaseException as e:
        error = storable(f"{type(e).__name__}: {e}")
        raise
    finally:
        work.close()
        with store.session() as s:
            r = s.get_one(m.Run, run_id)
            r.status, r.error, r.finished = status, None if status == "done" else error, time.time()
            r.seconds = round(r.finished - started, 3)
            r.message = (status if status == "done" else error or status)[:200]
            if result is not None:
                r.result = json.loads(json.dumps(result, default=str))
                r.done = r.total = max(r.total, 1)
    assert result is not None  # the loop ends only when the work returned it
    return result


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
    stem = f"{path_part(relation)}-aie-{aie_id}"
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
def import_images(
    store: Store, paths: list[str | Path], dataset: str, split: str = "imported"
) -> Generator[Progress, None, ImportedImages]:
    """Image files and folders (searched recursively) as scenes with no objects yet; files that are
    not usable images are skipped and named in the result. A path that does not exist, or nothing
    usable at all, is a BadImport naming the paths and the reasons."""
    spec = {"what": "images", "paths": [str(Path(p).absolute()) for p in paths], "dataset": dataset}
    return (yield from _recorded(store, spec, _import_images(store, paths, dataset, split)))


def _import_images(
    store: Store, paths: list[str | Path], dataset: str, split: str
) -> Generator[Progress, None, ImportedImages]:
    from mfv_desktop.scenes.importers import IMAGE_SUFFIXES, find_images, scene_from_image

    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing or not paths:
        raise BadImport(f"no such file or folder: {', '.join(missing)}" if missing else "no images given")
    files: list[tuple[Path, str]] = []  # (file, scene name: its path inside the folder imported)
    for p in map(Path, paths):
        if p.is_dir():
            root = p.resolve()
            files.extend((f, f.relative_to(root).with_suffix("").as_posix()) for f in find_images(root))
        else:
            files.append((p, p.stem))
    scenes: list[SceneData] = []
    skipped: list[str] = []
    for i, (f, name) in enumerate(files):
        try:
            scenes.append(scene_from_image(f, name, split=split))
        except BadImport as e:
            skipped.append(str(e))
        if i % 200 == 0:
            yield Progress(i, 2 * len(files), f"checking images ({len(skipped)} skipped)")
    if not scenes:
        found = "; ".join(skipped[:10]) + (f"; and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        raise BadImport(
            f"nothing to import from {', '.join(map(str, paths))}: "
            + (found if skipped else f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) there")
        )
    result = yield from within(_adding(store, paths[0], dataset, scenes, origin="imported"), len(files), 2 * len(files))
    return ImportedImages(
        dataset=result["dataset"], added=result["added"], skipped=result["skipped"], not_images=skipped
    )


class ImportedGQA(AddedScenes):
    """What `import_gqa` did: `add_scenes`'s counts and the importer's report (`GQAReport.to_dict`):
    scenes read and kept, why the rest were dropped, which relations were dropped and why."""

    report: dict[str, Any]


def import_gqa(
    store: Store, scene_graphs: str | Path, images: str | Path, dataset: str, options: GQAOptions | None = None
) -> Generator[Progress, None, ImportedGQA]:
    """GQA scene graphs with their images, all or nothing (see `read_gqa`); the result carries the
    importer's report, which the CLI and the app show (`GQAReport.from_dict(...).lines()`)."""
    from mfv_desktop.scenes.importers import GQAOptions, read_gqa

    opt = options or GQAOptions()

    def work() -> Generator[Progress, None, ImportedGQA]:
        yield Progress(0, 1, "reading the scene graphs")
        scenes, report = read_gqa(scene_graphs, images, opt)
        added = yield from _adding(store, scene_graphs, dataset, scenes, origin="imported")
        return ImportedGQA(
            dataset=added["dataset"], added=added["added"], skipped=added["skipped"], report=report.to_dict()
        )

    spec = {
        "what": "gqa",
        "scene_graphs": str(Path(scene_graphs).absolute()),
        "images": str(Path(images).absolute()),
        "dataset": dataset,
        "options": json.loads(json.dumps(dataclasses.asdict(opt), default=sorted)),
    }
    return (yield from _recorded(store, spec, work()))


def import_synthetic_metadata(
    store: Store, csv_path: str | Path, dataset: str, images: str | Path | None = None
) -> Generator[Progress, None, AddedScenes]:
    """The authors' metadata.csv with its images, all or nothing (see `read_synthetic_metadata`)."""
    from mfv_desktop.scenes.importers import read_synthetic_metadata

    def work() -> Generator[Progress, None, AddedScenes]:
        scenes = read_synthetic_metadata(csv_path, images)
        return (yield from _adding(store, csv_path, dataset, scenes, origin="generated"))

    spec = {
        "what": "metadata",
        "csv": str(Path(csv_path).absolute()),
        "images": None if images is None else str(Path(images).absolute()),
        "dataset": dataset,
    }
    return (yield from _recorded(store, spec, work()))
