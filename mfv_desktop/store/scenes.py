"""Scenes in the store: images copied into the data folder, objects, relation labels, paging.

Each function is one unit of work (its own session). Bulk adds commit in batches, so a crash
keeps every batch before it. Scenes come in and go out as `mfv_desktop.scenes.Scene`.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from typing import TypedDict

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from mfv_desktop.files import atomic_path
from mfv_desktop.progress import Progress
from mfv_desktop.scenes import (
    Box,
    RelationTriple,
    SceneError,
    SceneObject,
    check_name,
    check_text,
    save_scene_set,
    suggest_relations,
)
from mfv_desktop.scenes import Scene as SceneData
from mfv_desktop.scenes.importers import check_image, upright_png

from . import models as m
from .db import Store
from .errors import StoreError
from .labels import (
    Label,
    LabelChanges,
    LabelState,
    Triple,
    add_label,
    delete_label,
    ensure_relation,
    relabel,
    set_label_relation,
    set_label_status,
    set_labels,
    suggest_label_changes,
)
from .library import (
    DatasetInfo,
    SceneSummary,
    count_scenes,
    count_scenes_before,
    dataset_id,
    datasets,
    library_choices,
    object_names,
    page_scenes,
    relations,
    splits,
)
from .objects import (
    DeletedObject,
    ObjectView,
    _objects,
    add_object,
    delete_object,
    objects,
    rename_object,
    restore_object,
    set_box,
)

log = logging.getLogger(__name__)

#: labels.py, objects.py and library.py hold the label edits, object edits and library queries;
#: callers reach them all through this module
# fmt: off
__all__ = [
    "AddedScenes", "DatasetInfo", "DeletedObject", "Label", "LabelChanges", "LabelIn", "LabelState", "ObjectView",
    "SceneSummary", "Triple", "add_image", "add_label", "add_object", "add_scenes", "count_scenes",
    "count_scenes_before", "create_drawn_scene", "create_scene", "dataset_id", "datasets", "delete_label",
    "delete_object", "delete_scene", "ensure_relation", "get_scene", "image_path", "iter_scenes", "library_choices",
    "object_names", "objects", "page_scenes", "relabel", "relations", "rename_object", "render_drawn_scene",
    "restore_object", "scene_for_editing", "set_box", "set_label_relation", "set_label_status", "set_labels",
    "splits", "storable", "suggest_label_changes", "suggest_labels", "write_scene_set",
]
# fmt: on


class AddedScenes(TypedDict):
    """What `add_scenes` did."""

    dataset: str
    added: int
    skipped: int


def storable(text: str) -> str:
    """Text the database can hold: lone surrogates (undecodable file names) as backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def image_rel_path(file_name: str) -> Path:
    """Where the data folder keeps an image file named by its content (`<sha256><suffix>`)."""
    return Path("images") / file_name[:2] / file_name


def add_image(store: Store, s: Session, path: str | Path, made: list[m.Image] | None = None) -> m.Image:
    """The image row for a file, copying the file into the data folder once (by content). A photo
    with an EXIF orientation is kept as an upright PNG copy (its size is the upright one). A new
    row is added to `made`."""
    info = check_image(path)
    upright = upright_png(path) if info.orientation != 1 else None
    sha256 = hashlib.sha256(upright).hexdigest() if upright is not None else info.sha256
    found = s.scalar(select(m.Image).where(m.Image.sha256 == sha256))
    if found is not None:
        return found
    suffix = ".png" if upright is not None else Path(path).suffix.lower() or f".{info.format.lower()}"
    rel = image_rel_path(f"{sha256}{suffix}")
    dest = store.data_dir / rel
    if not dest.is_file():
        with atomic_path(dest) as tmp:  # e.g. a full disk: no half copy stays behind
            if upright is not None:
                tmp.write_bytes(upright)
            else:
                shutil.copyfile(path, tmp)
    img = m.Image(
        path=rel.as_posix(),
        sha256=sha256,
        size=len(upright) if upright is not None else info.size,
        width=info.width,
        height=info.height,
        original_name=storable(Path(path).name),
    )
    s.add(img)
    s.flush()
    if made is not None:
        made.append(img)
    return img


def image_path(store: Store, img: m.Image) -> Path:
    return store.data_dir / img.path


# -- scenes ---------------------------------------------------------------------------------
#: a label as it comes in: (subject, relation, object, source, status)
LabelIn = tuple[str, str, str, str, str]


def _check_scene(scene: SceneData, labels: Sequence[LabelIn]) -> None:
    """Names, boxes and labels of a scene coming in; StoreError naming the scene and the field."""
    where = f"scene {scene.id[:80]!r}"
    try:
        check_text(scene.id, "the scene id")
        for o in scene.objects:
            check_name(o.name, "object name")
            if not o.box.inside(scene.width, scene.height):
                raise SceneError(
                    f"object {o.name!r} box {o.box.as_list()} lies outside the {scene.width}x{scene.height} image"
                )
        names = {o.name for o in scene.objects}
        for subject, relation, obj, source, status in labels:
            if source not in m.LABEL_SOURCES or status not in m.LABEL_STATUSES:
                raise SceneError(
                    f"label source must be one of {m.LABEL_SOURCES} and status one of "
                    f"{m.LABEL_STATUSES}, got {source!r}, {status!r}"
                )
            check_name(relation, "relation name")
            if subject not in names or obj not in names or subject == obj:
                raise SceneError(f"label ({subject!r}, {relation!r}, {obj!r}) needs two of its objects")
    except SceneError as e:
        raise StoreError(f"{where}: {e}") from e


def _insert_scene(
    store: Store,
    s: Session,
    ds: int,
    scene: SceneData,
    origin: str,
    labels: Iterable[LabelIn],
    made: list[m.Image] | None = None,
) -> m.Scene:
    """Add a scene checked by `_check_scene`; its boxes must lie inside its image as stored."""
    img = add_image(store, s, scene.image, made)
    outside = next((o for o in scene.objects if not o.box.inside(img.width, img.height)), None)
    if outside is not None:
        raise StoreError(
            f"scene {scene.id[:80]!r}: object {outside.name!r} box {outside.box.as_list()} lies outside "
            f"its {img.width}x{img.height} image {Path(scene.image).name}"
        )
    row = m.Scene(
        dataset_id=ds,
        name=scene.id,
        image_id=img.id,
        split=scene.split,
        anchor=scene.anchor,
        origin=origin,
        meta=scene.meta,
    )
    row.objects = [
        m.SceneObject(name=o.name, x0=o.box.x0, y0=o.box.y0, x1=o.box.x1, y1=o.box.y1, stamp=o.stamp)
        for o in scene.objects
    ]
    s.add(row)
    s.flush()
    by_name = {o.name: o for o in row.objects}
    for subject, relation, obj, source, status in labels:
        ensure_relation(s, relation)
        s.add(
            m.RelationLabel(
                scene_id=row.id,
                subject_id=by_name[subject].id,
                relation=relation,
                object_id=by_name[obj].id,
                source=source,
                status=status,
            )
        )
    return row


def add_scenes(
    store: Store,
    dataset: str,
    scenes: Iterable[SceneData],
    origin: str = "imported",
    label_source: str = "import",
    label_status: str = "confirmed",
    batch: int = 200,
    labels: Callable[[SceneData], Iterable[LabelIn]] | None = None,
    description: str = "",
) -> Generator[Progress, None, AddedScenes]:
    """Add scenes (their images are copied in), all or nothing; a scene whose name the data set has
    is skipped. A new data set is made with `description`.

    A scene's relations become labels with `label_source` and `label_status`, unless `labels` gives
    each scene's labels itself. Every scene and label is checked before the first is added. Commits
    every `batch` scenes (the app stays responsive); when adding fails or is cancelled, what this
    call added is removed again: scenes, image rows and files, relation names, the data set if it
    made it. What was stored before is untouched."""
    if labels is None:

        def labels(sc: SceneData) -> list[LabelIn]:
            return [(t.subject, t.relation, t.object, label_source, label_status) for t in sc.relations]

    todo = [(sc, [(sub, rel, obj, src, st) for sub, rel, obj, src, st in labels(sc)]) for sc in scenes]
    for sc, labs in todo:
        _check_scene(sc, labs)
    with store.session() as s:
        made_dataset = s.scalar(select(m.Dataset.id).where(m.Dataset.name == dataset)) is None
        relations_before = set(s.scalars(select(m.Relation.name)))
    added_ids: list[int] = []
    images: list[m.Image] = []
    added = skipped = 0
    try:
        for i in range(0, len(todo), batch):
            rows = []
            with store.session() as s:
                ds = dataset_id(s, dataset, description=description)
                names = {sc.id for sc, _ in todo[i : i + batch]}
                have = set(s.scalars(select(m.Scene.name).where(m.Scene.dataset_id == ds, m.Scene.name.in_(names))))
                for sc, labs in todo[i : i + batch]:
                    if sc.id in have:
                        skipped += 1
                        continue
                    rows.append(_insert_scene(store, s, ds, sc, origin, labs, images))
                    have.add(sc.id)
            added_ids += [r.id for r in rows]
            added += len(rows)
            yield Progress(
                min(i + batch, len(todo)), len(todo), f"{added} scene{'' if added == 1 else 's'} added to {dataset!r}"
            )
    except BaseException:
        _remove_added(store, dataset if made_dataset else None, added_ids, images, relations_before)
        raise
    return AddedScenes(dataset=dataset, added=added, skipped=skipped)


def _remove_added(
    store: Store, dataset: str | None, scene_ids: list[int], images: list[m.Image], relations_before: set[str]
) -> None:
    """Undo a failed `add_scenes`: its scenes, the image rows it made (and their files) that no scene
    uses, the relation names it brought, and `dataset` (one it made). A failure here is logged: the
    import's own error is the one to show."""
    try:
        with store.session() as s:
            for i in range(0, len(scene_ids), 500):
                s.execute(delete(m.Scene).where(m.Scene.id.in_(scene_ids[i : i + 500])))
            used = set(s.scalars(select(m.Scene.image_id).where(m.Scene.image_id.in_([im.id for im in images]))))
            for i in range(0, len(images), 500):
                s.execute(
                    delete(m.Image).where(m.Image.id.in_([im.id for im in images[i : i + 500] if im.id not in used]))
                )
            s.execute(
                delete(m.Relation).where(
                    m.Relation.name.not_in(relations_before),
                    m.Relation.kind == "user",
                    m.Relation.name.not_in(select(m.RelationLabel.relation)),
                )
            )
            if dataset is not None:
                s.execute(
                    delete(m.Dataset).where(m.Dataset.name == dataset, m.Dataset.id.not_in(select(m.Scene.dataset_id)))
                )
            kept = set(s.scalars(select(m.Image.path)))
        for im in images:
            if im.path not in kept:
                (store.data_dir / im.path).unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - e.g. the disk is full
        log.exception("could not remove what a failed import added to %s", store.data_dir)


def _to_data(store: Store, row: m.Scene, statuses: Sequence[str]) -> SceneData:
    names = {o.id: o.name for o in row.objects}
    return SceneData(
        id=row.name,
        image=str(store.data_dir / row.image.path),
        width=row.image.width,
        height=row.image.height,
        objects=tuple(SceneObject(o.name, Box(o.x0, o.y0, o.x1, o.y1), o.stamp) for o in row.objects),
        relations=tuple(
            RelationTriple(names[lb.subject_id], lb.relation, names[lb.object_id])
            for lb in row.labels
            if lb.status in statuses
        ),
        anchor=row.anchor,
        split=row.split,
        meta=dict(row.meta or {}),
    )


def get_scene(store: Store, scene_id: int, statuses: Sequence[str] = ("confirmed",)) -> tuple[SceneData, list[Label]]:
    """The scene (with the relations of the given statuses) and all its labels."""
    with store.session() as s:
        return _get_scene(store, s, scene_id, statuses)


def _get_scene(store: Store, s: Session, scene_id: int, statuses: Sequence[str]) -> tuple[SceneData, list[Label]]:
    row = s.get(
        m.Scene,
        scene_id,
        options=[selectinload(m.Scene.objects), selectinload(m.Scene.labels), selectinload(m.Scene.image)],
    )
    if row is None:
        raise StoreError(f"there is no scene with id {scene_id} in the store")
    names = {o.id: o.name for o in row.objects}
    labels = [
        Label(lb.id, names[lb.subject_id], lb.relation, names[lb.object_id], lb.source, lb.status) for lb in row.labels
    ]
    return _to_data(store, row, statuses), labels


def scene_for_editing(store: Store, scene_id: int) -> tuple[SceneData, list[Label], list[ObjectView]]:
    """The scene, all its labels and its objects with their row ids, read in one session."""
    with store.session() as s:
        data, labels = _get_scene(store, s, scene_id, ("confirmed",))
        return data, labels, _objects(s, scene_id)


def iter_scenes(
    store: Store, dataset: str, statuses: Sequence[str] = ("confirmed",), chunk: int = 500
) -> Iterable[SceneData]:
    """Every scene of a data set, read in chunks."""
    last = 0
    while True:
        with store.session() as s:
            rows = list(
                s.scalars(
                    select(m.Scene)
                    .join(m.Dataset)
                    .where(m.Dataset.name == dataset, m.Scene.id > last)
                    .order_by(m.Scene.id)
                    .limit(chunk)
                    .options(selectinload(m.Scene.objects), selectinload(m.Scene.labels), selectinload(m.Scene.image))
                )
            )
            data = [_to_data(store, r, statuses) for r in rows]
        if not rows:
            return
        yield from data
        last = rows[-1].id


def write_scene_set(store: Store, dataset: str, folder: str | Path, statuses: Sequence[str] = ("confirmed",)) -> Path:
    """The data set as a scene-set folder the engine's jobs read (image paths point into the store)."""
    with store.session() as s:
        dataset_id(s, dataset, create=False)
    scenes = list(iter_scenes(store, dataset, statuses))
    if not scenes:
        raise StoreError(f"data set {dataset!r} has no scenes")
    save_scene_set(folder, scenes, meta={"dataset": dataset, "statuses": list(statuses)})
    return Path(folder)


def suggest_labels(store: Store, scene_id: int, relations: Sequence[str] | None = None) -> list[int]:
    """Suggested labels from the geometry of the boxes, for pairs that have no label yet."""
    data, labels = get_scene(store, scene_id)
    have = {(lb.subject, lb.object) for lb in labels}
    kw = {} if relations is None else {"relations": relations}
    return [
        add_label(store, scene_id, t.subject, t.relation, t.object, "geometry", "suggested")
        for t in suggest_relations(data.objects, **kw)
        if (t.subject, t.object) not in have
    ]


# -- scenes the desktop app creates and deletes (objects.py and labels.py: the edits within one) ----
def create_scene(
    store: Store,
    dataset: str,
    image: str | Path,
    name: str | None = None,
    split: str = "train",
    origin: str = "imported",
    objects: Sequence[SceneObject] = (),
    anchor: str | None = None,
) -> int:
    """A new scene for an image file (copied in), with optional objects; returns its id."""
    from mfv_desktop.scenes.importers import scene_from_image

    data = scene_from_image(image, name, split).with_(objects=tuple(objects), anchor=anchor)
    _check_scene(data, [])
    with store.session() as s:
        ds = dataset_id(s, dataset)
        base, k = data.id, 1
        while s.scalar(select(m.Scene.id).where(m.Scene.dataset_id == ds, m.Scene.name == data.id)) is not None:
            k += 1
            data = data.with_(id=f"{base}_{k}")
        return _insert_scene(store, s, ds, data, origin, []).id


def delete_scene(store: Store, scene_id: int) -> None:
    with store.session() as s:
        row = s.get(m.Scene, scene_id)
        if row is not None:
            s.delete(row)


# -- drawn scenes: object stamps on a blank canvas, rendered to the scene's image -----------------
def create_drawn_scene(store: Store, dataset: str, size: int = 800, name: str = "drawing") -> int:
    """A blank square canvas to place stamps on; its image is drawn again after each edit."""
    from mfv_desktop.scenes import render_scene

    blank = SceneData(id=name, image="", width=size, height=size, objects=(), relations=())
    tmp = store.data_dir / "tmp" / f"blank-{size}.png"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    render_scene(blank).convert("RGB").save(tmp)
    sid = create_scene(store, dataset, tmp, name, split="drawn", origin="drawn")
    with store.session() as s:
        s.get_one(m.Scene, sid).meta = {"drawn": True}
    return sid


def render_drawn_scene(store: Store, scene_id: int) -> Path:
    """Draw a drawn scene's image again from its objects' stamps; returns the new image file."""
    from mfv_desktop.scenes import render_scene

    data, _ = get_scene(store, scene_id)
    tmp = store.data_dir / "tmp" / f"drawn-{scene_id}.png"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    render_scene(data).convert("RGB").save(tmp)
    with store.session() as s:
        img = add_image(store, s, tmp)
        s.get_one(m.Scene, scene_id).image_id = img.id
    tmp.unlink()
    return store.data_dir / img.path
