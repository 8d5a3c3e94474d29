"""A scene's objects as the desktop app edits them: add, move or resize, rename, delete and bring back
with their labels (each undoable: the GUI's commands call these both ways). No torch, no Qt."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mfv_desktop.scenes import Box

from . import models as m
from .db import Store
from .errors import StoreError
from .labels import _name, add_label


@dataclass(frozen=True)
class ObjectView:
    id: int
    name: str
    box: Box
    stamp: str | None


@dataclass(frozen=True)
class DeletedObject:
    """Everything needed to bring a deleted object back with its labels."""

    scene_id: int
    name: str
    box: Box
    stamp: str | None
    labels: tuple[tuple[str, str, str, str, str], ...]  # (subject, relation, object, source, status)


def objects(store: Store, scene_id: int) -> list[ObjectView]:
    with store.session() as s:
        return _objects(s, scene_id)


def _objects(s: Session, scene_id: int) -> list[ObjectView]:
    rows = s.scalars(select(m.SceneObject).where(m.SceneObject.scene_id == scene_id).order_by(m.SceneObject.id))
    return [ObjectView(o.id, o.name, Box(o.x0, o.y0, o.x1, o.y1), o.stamp) for o in rows]


def _check_box(s: Session, scene_id: int, box: Box) -> None:
    img = s.scalar(select(m.Image).join(m.Scene, m.Scene.image_id == m.Image.id).where(m.Scene.id == scene_id))
    if img is None:
        raise StoreError(f"there is no scene with id {scene_id}")
    if not box.inside(img.width, img.height):
        raise StoreError(f"box {box.as_list()} is outside the {img.width}x{img.height} image")


def add_object(store: Store, scene_id: int, name: str, box: Box, stamp: str | None = None) -> int:
    name = _name(name, "object name")
    with store.session() as s:
        _check_box(s, scene_id, box)
        if (
            s.scalar(select(m.SceneObject.id).where(m.SceneObject.scene_id == scene_id, m.SceneObject.name == name))
            is not None
        ):
            raise StoreError(f"this scene already has an object named {name!r}: names in a scene are unique")
        row = m.SceneObject(scene_id=scene_id, name=name, x0=box.x0, y0=box.y0, x1=box.x1, y1=box.y1, stamp=stamp)
        s.add(row)
        s.flush()
        return row.id


def set_box(store: Store, object_id: int, box: Box) -> None:
    with store.session() as s:
        o = _object(s, object_id)
        _check_box(s, o.scene_id, box)
        o.x0, o.y0, o.x1, o.y1 = box.x0, box.y0, box.x1, box.y1


def rename_object(store: Store, object_id: int, name: str) -> None:
    name = _name(name, "object name")
    with store.session() as s:
        o = _object(s, object_id)
        clash = s.scalar(
            select(m.SceneObject.id).where(
                m.SceneObject.scene_id == o.scene_id, m.SceneObject.name == name, m.SceneObject.id != object_id
            )
        )
        if clash is not None:
            raise StoreError(f"this scene already has an object named {name!r}: names in a scene are unique")
        scene = s.get_one(m.Scene, o.scene_id)
        if scene.anchor == o.name:
            scene.anchor = name
        o.name = name


def delete_object(store: Store, object_id: int) -> DeletedObject:
    """Delete an object and its labels; returns what `restore_object` needs to undo it."""
    with store.session() as s:
        o = _object(s, object_id)
        names = {x.id: x.name for x in s.scalars(select(m.SceneObject).where(m.SceneObject.scene_id == o.scene_id))}
        labels = s.scalars(
            select(m.RelationLabel).where(
                (m.RelationLabel.subject_id == object_id) | (m.RelationLabel.object_id == object_id)
            )
        )
        gone = DeletedObject(
            o.scene_id,
            o.name,
            Box(o.x0, o.y0, o.x1, o.y1),
            o.stamp,
            tuple((names[lb.subject_id], lb.relation, names[lb.object_id], lb.source, lb.status) for lb in labels),
        )
        s.delete(o)
        return gone


def restore_object(store: Store, gone: DeletedObject) -> int:
    oid = add_object(store, gone.scene_id, gone.name, gone.box, gone.stamp)
    for subject, relation, obj, source, status in gone.labels:
        add_label(store, gone.scene_id, subject, relation, obj, source, status)
    return oid


def _object(s: Session, object_id: int) -> m.SceneObject:
    o = s.get(m.SceneObject, object_id)
    if o is None:
        raise StoreError(f"there is no object with id {object_id}")
    return o
