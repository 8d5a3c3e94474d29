"""Relation labels of a scene's object pairs: adding one, its status or relation, deleting one, and label
edits as one transaction each (the GUI's undo commands call these both ways). No torch, no Qt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mfv_desktop.scenes import Box, SceneError, SceneObject, check_name, suggest_relations

from . import models as m
from .db import Store
from .errors import StoreError


@dataclass(frozen=True)
class Label:
    id: int
    subject: str
    relation: str
    object: str
    source: str
    status: str


def ensure_relation(s: Session, name: str) -> None:
    if s.get(m.Relation, name) is None:
        s.add(m.Relation(name=name, kind="user"))
        s.flush()


def _name(name: str, what: str) -> str:
    """An object or relation name given by the user (`check_name`), or a StoreError saying why not."""
    try:
        return check_name(name, what)
    except SceneError as e:
        raise StoreError(str(e)) from e


def _object_id(s: Session, scene_id: int, name: str) -> int:
    oid = s.scalar(select(m.SceneObject.id).where(m.SceneObject.scene_id == scene_id, m.SceneObject.name == name))
    if oid is None:
        raise StoreError(f"scene {scene_id} has no object named {name!r}")
    return oid


def add_label(
    store: Store,
    scene_id: int,
    subject: str,
    relation: str,
    object: str,
    source: str = "user",
    status: str = "confirmed",
) -> int:
    """Label (subject, relation, object); labelling a pair again updates the label's status."""
    if status not in m.LABEL_STATUSES or source not in m.LABEL_SOURCES:
        raise StoreError(f"status must be one of {m.LABEL_STATUSES} and source one of {m.LABEL_SOURCES}")
    relation = _name(relation, "relation name")
    with store.session() as s:
        sid, oid = _object_id(s, scene_id, subject), _object_id(s, scene_id, object)
        if sid == oid:
            raise StoreError(f"a relation needs two objects; got {subject!r} twice")
        ensure_relation(s, relation)
        found = s.scalar(
            select(m.RelationLabel).where(
                m.RelationLabel.subject_id == sid,
                m.RelationLabel.relation == relation,
                m.RelationLabel.object_id == oid,
            )
        )
        if found is not None:
            found.status = status
            return found.id
        row = m.RelationLabel(
            scene_id=scene_id, subject_id=sid, relation=relation, object_id=oid, source=source, status=status
        )
        s.add(row)
        s.flush()
        return row.id


def set_label_status(store: Store, label_id: int, status: str) -> None:
    if status not in m.LABEL_STATUSES:
        raise StoreError(f"status must be one of {m.LABEL_STATUSES}, got {status!r}")
    with store.session() as s:
        row = s.get(m.RelationLabel, label_id)
        if row is None:
            raise StoreError(f"there is no label with id {label_id}")
        row.status = status


# -- label edits as one unit of work each (the GUI's undo commands call these both ways) -------------
#: a pair's label: (subject, relation, object)
Triple = tuple[str, str, str]
#: what a triple should be after an edit: (source, status), or None for no label
LabelState = tuple[str, str] | None
#: an edit of labels, and its inverse: each triple with the state it is given
LabelChanges = tuple[tuple[Triple, LabelState], ...]


def _set_label(s: Session, scene_id: int, triple: Triple, state: LabelState, keep_source: bool = False) -> LabelState:
    """Put one triple in a state within a session (`keep_source`: a label there keeps its source);
    returns the state it was in."""
    subject, relation, obj = triple
    sid, oid = _object_id(s, scene_id, subject), _object_id(s, scene_id, obj)
    found = s.scalar(
        select(m.RelationLabel).where(
            m.RelationLabel.subject_id == sid, m.RelationLabel.relation == relation, m.RelationLabel.object_id == oid
        )
    )
    before: LabelState = None if found is None else (found.source, found.status)
    if state is None:
        if found is not None:
            s.delete(found)
            s.flush()
        return before
    source, status = state
    if status not in m.LABEL_STATUSES or source not in m.LABEL_SOURCES:
        raise StoreError(f"status must be one of {m.LABEL_STATUSES} and source one of {m.LABEL_SOURCES}")
    if sid == oid:
        raise StoreError(f"a relation needs two objects; got {subject!r} twice")
    if found is None:
        ensure_relation(s, _name(relation, "relation name"))
        s.add(
            m.RelationLabel(
                scene_id=scene_id, subject_id=sid, relation=relation, object_id=oid, source=source, status=status
            )
        )
    else:
        found.source, found.status = found.source if keep_source else source, status
    s.flush()
    return before


def set_labels(
    store: Store, scene_id: int, changes: Sequence[tuple[Triple, LabelState]], keep_source: bool = False
) -> LabelChanges:
    """Give each triple its state, all in one transaction (all or nothing); returns the changes that
    undo it (the triples' earlier states, in reverse order). `keep_source`: a label already there
    keeps its source (a confirmed suggestion still says it came from the geometry)."""
    with store.session() as s:
        undo = [(triple, _set_label(s, scene_id, triple, state, keep_source)) for triple, state in changes]
    return tuple(reversed(undo))


def relabel(store: Store, scene_id: int, subject: str, old: str, obj: str, new: str) -> LabelChanges:
    """Give a labelled pair another relation, confirmed by the user: the old label goes, in one
    transaction. Returns the changes that undo it (`set_labels`)."""
    return set_labels(store, scene_id, [((subject, old, obj), None), ((subject, new, obj), ("user", "confirmed"))])


def suggest_label_changes(store: Store, scene_id: int, relations: Sequence[str] | None = None) -> LabelChanges:
    """Suggestions from the geometry of the boxes for every pair without a label, added in one
    transaction. Returns the changes that undo it (the added labels removed)."""
    kw = {} if relations is None else {"relations": relations}
    with store.session() as s:
        rows = s.scalars(select(m.SceneObject).where(m.SceneObject.scene_id == scene_id).order_by(m.SceneObject.id))
        objs = tuple(SceneObject(o.name, Box(o.x0, o.y0, o.x1, o.y1), o.stamp) for o in rows)
        have = {
            (lb.subject.name, lb.object.name)
            for lb in s.scalars(select(m.RelationLabel).where(m.RelationLabel.scene_id == scene_id))
        }
        undo = [
            (
                (t.subject, t.relation, t.object),
                _set_label(s, scene_id, (t.subject, t.relation, t.object), ("geometry", "suggested")),
            )
            for t in suggest_relations(objs, **kw)
            if (t.subject, t.object) not in have
        ]
    return tuple(reversed(undo))


def delete_label(store: Store, label_id: int) -> Label | None:
    """Delete a label; returns it (for undo), None if it was not there."""
    with store.session() as s:
        lb = s.get(m.RelationLabel, label_id)
        if lb is None:
            return None
        out = Label(lb.id, lb.subject.name, lb.relation, lb.object.name, lb.source, lb.status)
        s.delete(lb)
        return out


def set_label_relation(store: Store, label_id: int, relation: str) -> None:
    relation = _name(relation, "relation name")
    with store.session() as s:
        lb = s.get(m.RelationLabel, label_id)
        if lb is None:
            raise StoreError(f"there is no label with id {label_id}")
        ensure_relation(s, relation)
        lb.relation = relation


# -- what the labels say a task's answer is ----------------------------------------------------------
def _confirmed(s: Session, scene_id: int) -> list[m.RelationLabel] | None:
    """The scene's confirmed labels (in the order they were made), None if it has none at all;
    StoreError if there is no such scene."""
    if s.get(m.Scene, scene_id) is None:
        raise StoreError(f"there is no scene {scene_id} in the store")
    rows = list(
        s.scalars(
            select(m.RelationLabel)
            .where(m.RelationLabel.scene_id == scene_id, m.RelationLabel.status == "confirmed")
            .order_by(m.RelationLabel.id)
        )
    )
    return rows or None


def _object(s: Session, scene_id: int, obj: str | int) -> int:
    """An object of the scene by name or id; StoreError naming it if the scene has no such object."""
    if isinstance(obj, str):
        return _object_id(s, scene_id, obj)
    row = s.get(m.SceneObject, obj)
    if row is None or row.scene_id != scene_id:
        raise StoreError(f"scene {scene_id} has no object with id {obj}")
    return row.id


def expected_answers(store: Store, scene_id: int, anchor: str | int, relation: str) -> list[str] | None:
    """What a task on this scene expects for `anchor` (a name or an object id) and `relation`: the
    names of the objects that are in `relation` to the anchor by the scene's confirmed labels, in
    the order they were labelled. A label reads (subject, relation, object) "the subject is
    <relation> of the object", and a task's anchor is the object and its answer the subject
    (`Scene.target`, which tasks/sampling.py builds tasks with). A composite relation (below_left)
    is a relation name of its own there, so it is here: its labels, not its parts'.

    [] when the scene has confirmed labels but none of them has the anchor in `relation`; None when
    the scene has no confirmed label at all. StoreError: no such scene, or no such object in it."""
    with store.session() as s:
        labels = _confirmed(s, scene_id)
        anchor_id = _object(s, scene_id, anchor)
        if labels is None:
            return None
        return [lb.subject.name for lb in labels if lb.object_id == anchor_id and lb.relation == relation]


def relations_between(store: Store, scene_id: int, subject: str | int, object: str | int) -> list[str] | None:
    """The relations the confirmed labels give `subject` to `object` (each a name or an object id):
    what an A -> B pair shows is relations_between(scene, B, A), the answer B being the subject.
    [] when the scene has confirmed labels but none for this pair; None when it has none at all."""
    with store.session() as s:
        labels = _confirmed(s, scene_id)
        sid, oid = _object(s, scene_id, subject), _object(s, scene_id, object)
        if labels is None:
            return None
        return [lb.relation for lb in labels if lb.subject_id == sid and lb.object_id == oid]
