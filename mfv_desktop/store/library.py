"""The scene library's queries: the data sets, splits, object names and relations its filters offer;
scenes under the filters (data set, split, relation, object, label status), counted and paged, one
row per scene with its counts for the list view. No torch, no Qt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from sqlalchemy import ScalarSelect, Select, func, select
from sqlalchemy.orm import Session

from . import models as m
from .db import Store
from .errors import StoreError


@dataclass(frozen=True)
class SceneSummary:
    """A row of the scene library."""

    id: int
    name: str
    dataset: str
    split: str
    image: Path
    width: int
    height: int
    n_objects: int
    n_confirmed: int
    n_suggested: int


def _filtered(
    q: Select[int],
    dataset: str | None,
    split: str | None,
    relation: str | None,
    object_name: str | None,
    status: str | None,
) -> Select[int]:
    if dataset is not None:
        q = q.join(m.Dataset, m.Scene.dataset_id == m.Dataset.id).where(m.Dataset.name == dataset)
    if split is not None:
        q = q.where(m.Scene.split == split)
    if relation is not None or status is not None:
        lab = select(m.RelationLabel.scene_id)
        if relation is not None:
            lab = lab.where(m.RelationLabel.relation == relation)
        if status is not None:
            lab = lab.where(m.RelationLabel.status == status)
        q = q.where(m.Scene.id.in_(lab))
    if object_name is not None:
        q = q.where(m.Scene.id.in_(select(m.SceneObject.scene_id).where(m.SceneObject.name == object_name)))
    return q


def count_scenes(
    store: Store,
    dataset: str | None = None,
    split: str | None = None,
    relation: str | None = None,
    object_name: str | None = None,
    status: str | None = None,
) -> int:
    with store.session() as s:
        q = _filtered(select(func.count(m.Scene.id)), dataset, split, relation, object_name, status)
        return int(s.scalar(q) or 0)


def count_scenes_before(
    store: Store,
    scene_id: int,
    dataset: str | None = None,
    split: str | None = None,
    relation: str | None = None,
    object_name: str | None = None,
    status: str | None = None,
) -> int:
    """How many scenes under the filters come before this one (its row in the library)."""
    with store.session() as s:
        q = _filtered(
            select(func.count(m.Scene.id)).where(m.Scene.id < scene_id), dataset, split, relation, object_name, status
        )
        return int(s.scalar(q) or 0)


def page_scenes(
    store: Store,
    offset: int = 0,
    limit: int = 100,
    dataset: str | None = None,
    split: str | None = None,
    relation: str | None = None,
    object_name: str | None = None,
    status: str | None = None,
) -> list[SceneSummary]:
    """One page of the scene library, in insertion order, with counts for the list view."""
    n_obj = select(func.count(m.SceneObject.id)).where(m.SceneObject.scene_id == m.Scene.id).scalar_subquery()

    def n_status(st: str) -> ScalarSelect[int]:
        return (
            select(func.count(m.RelationLabel.id))
            .where(m.RelationLabel.scene_id == m.Scene.id, m.RelationLabel.status == st)
            .scalar_subquery()
        )

    # the page's ids first (cheap to skip over), then the columns for those rows only
    ids = _filtered(select(m.Scene.id), dataset, split, relation, object_name, status)
    page = ids.order_by(m.Scene.id).offset(offset).limit(limit).scalar_subquery()
    q = (
        select(
            m.Scene.id,
            m.Scene.name,
            m.Dataset.name,
            m.Scene.split,
            m.Image.path,
            m.Image.width,
            m.Image.height,
            n_obj,
            n_status("confirmed"),
            n_status("suggested"),
        )
        .join(m.Image, m.Scene.image_id == m.Image.id)
        .join(m.Dataset, m.Scene.dataset_id == m.Dataset.id)
        .where(m.Scene.id.in_(page))
        .order_by(m.Scene.id)
    )
    with store.session() as s:
        return [
            SceneSummary(i, n, d, sp, store.data_dir / p, w, h, no, nc, ns)
            for i, n, d, sp, p, w, h, no, nc, ns in s.execute(q)
        ]


class DatasetInfo(TypedDict):
    """A data set as `datasets` lists it."""

    id: int
    name: str
    description: str
    n_scenes: int


# -- data sets and the relations vocabulary -----------------------------------------------------------
def dataset_id(s: Session, name: str, create: bool = True, description: str = "") -> int:
    found = s.scalar(select(m.Dataset.id).where(m.Dataset.name == name))
    if found is not None:
        return found
    if not create:
        raise StoreError(f"there is no data set named {name!r} in the store (see `mfv datasets`)")
    ds = m.Dataset(name=name, description=description)
    s.add(ds)
    s.flush()
    return ds.id


def _datasets(s: Session) -> list[DatasetInfo]:
    q = (
        select(m.Dataset.id, m.Dataset.name, m.Dataset.description, func.count(m.Scene.id))
        .outerjoin(m.Scene)
        .group_by(m.Dataset.id)
        .order_by(m.Dataset.name)
    )
    return [DatasetInfo(id=i, name=n, description=d, n_scenes=c) for i, n, d, c in s.execute(q)]


def datasets(store: Store) -> list[DatasetInfo]:
    """Every data set with its scene count, by name."""
    with store.session() as s:
        return _datasets(s)


def _splits(s: Session) -> list[str]:
    return list(s.scalars(select(m.Scene.split).distinct().order_by(m.Scene.split)))


def splits(store: Store) -> list[str]:
    with store.session() as s:
        return _splits(s)


def _object_names(s: Session, limit: int = 2000) -> list[str]:
    return list(
        s.scalars(
            select(m.SceneObject.name)
            .group_by(m.SceneObject.name)
            .order_by(func.count().desc(), m.SceneObject.name)
            .limit(limit)
        )
    )


def object_names(store: Store, limit: int = 2000) -> list[str]:
    """Object names, the most used first (for completion)."""
    with store.session() as s:
        return _object_names(s, limit)


def _relations(s: Session) -> list[m.Relation]:
    return list(s.scalars(select(m.Relation).order_by(m.Relation.kind, m.Relation.name)))


def relations(store: Store) -> list[m.Relation]:
    with store.session() as s:
        return _relations(s)


def library_choices(store: Store) -> tuple[list[DatasetInfo], list[str], list[str], list[str]]:
    """What the scene library filters by, read in one session: data sets (as `datasets`), relation
    names, splits, object names."""
    with store.session() as s:
        return _datasets(s), [r.name for r in _relations(s)], _splits(s), _object_names(s)


# -- images ---------------------------------------------------------------------------------
