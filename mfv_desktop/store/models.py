"""The store's schema: SQLAlchemy 2 typed models. Migrations in database/ must build exactly this.

Times are seconds since the epoch (REAL). Image bytes never go into the database: an image row
holds the file's path relative to the data folder, its sha256, size and pixel size. Arrays (AIE
matrices, mean activations, vectors) are content-addressed safetensors artifacts; rows hold the hash.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: stable constraint names, so that batch-mode migrations on SQLite can find them
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LABEL_SOURCES = ("user", "geometry", "import")
LABEL_STATUSES = ("confirmed", "suggested", "rejected")
RELATION_KINDS = ("base", "composite", "user")
RUN_STATUSES = ("pending", "running", "done", "failed", "cancelled", "interrupted")
VECTOR_KINDS = ("extracted", "finetuned", "composite", "imported")


def now() -> float:
    return time.time()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


# -- curation (revision 0001) ------------------------------------------------------------------
class Image(Base):
    __tablename__ = "images"
    id: Mapped[int] = mapped_column(primary_key=True)
    #: relative to the data folder, posix separators
    path: Mapped[str] = mapped_column(String, unique=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    original_name: Mapped[str | None]
    created: Mapped[float] = mapped_column(default=now)


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    description: Mapped[str] = mapped_column(default="")
    created: Mapped[float] = mapped_column(default=now)
    scenes: Mapped[list[Scene]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", passive_deletes=True
    )


class Scene(Base):
    __tablename__ = "scenes"
    __table_args__ = (
        UniqueConstraint("dataset_id", "name", name="uq_scenes_dataset_name"),
        Index("ix_scenes_dataset_split", "dataset_id", "split"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    #: the scene's id in the data set (a generated scene's id, an imported file's stem)
    name: Mapped[str]
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"), index=True)
    split: Mapped[str] = mapped_column(default="train")
    #: the object the paper's prompts ask about, if the scene has one
    anchor: Mapped[str | None]
    #: generated / drawn / imported (revision 0002)
    origin: Mapped[str] = mapped_column(default="imported", server_default="imported")
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[float] = mapped_column(default=now)
    modified: Mapped[float] = mapped_column(default=now, onupdate=now)
    dataset: Mapped[Dataset] = relationship(back_populates="scenes")
    image: Mapped[Image] = relationship()
    objects: Mapped[list[SceneObject]] = relationship(
        back_populates="scene", cascade="all, delete-orphan", passive_deletes=True, order_by="SceneObject.id"
    )
    labels: Mapped[list[RelationLabel]] = relationship(
        back_populates="scene", cascade="all, delete-orphan", passive_deletes=True, order_by="RelationLabel.id"
    )


class SceneObject(Base):
    __tablename__ = "objects"
    __table_args__ = (UniqueConstraint("scene_id", "name", name="uq_objects_scene_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scene_id: Mapped[int] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(index=True)
    x0: Mapped[float]
    y0: Mapped[float]
    x1: Mapped[float]
    y1: Mapped[float]
    #: the stamp that drew it ("procedural:apple"), None for a box drawn on a photo
    stamp: Mapped[str | None]
    scene: Mapped[Scene] = relationship(back_populates="objects")


class Relation(Base):
    """The relations vocabulary: base relations, composites of them, and the user's own."""

    __tablename__ = "relations"
    name: Mapped[str] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(default="user")
    #: a composite relation's base relations
    parts: Mapped[list[Any] | None] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(default="")


class RelationLabel(Base):
    """(subject, relation, object): "subject is <relation> of object"; the object is the anchor."""

    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("subject_id", "relation", "object_id", name="uq_labels_triple"),
        Index("ix_labels_relation_status", "relation", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    scene_id: Mapped[int] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"))
    relation: Mapped[str] = mapped_column(ForeignKey("relations.name", onupdate="CASCADE"))
    object_id: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(default="user")
    status: Mapped[str] = mapped_column(default="confirmed")
    created: Mapped[float] = mapped_column(default=now)
    modified: Mapped[float] = mapped_column(default=now, onupdate=now)
    scene: Mapped[Scene] = relationship(back_populates="labels")
    subject: Mapped[SceneObject] = relationship(foreign_keys=[subject_id])
    object: Mapped[SceneObject] = relationship(foreign_keys=[object_id])


# -- science (revision 0002) -------------------------------------------------------------------
class TaskSetRow(Base):
    __tablename__ = "task_sets"
    id: Mapped[int] = mapped_column(primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    spec: Mapped[dict[str, Any]]
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    n_tasks: Mapped[int]
    created: Mapped[float] = mapped_column(default=now)
    #: the tasks themselves (Task.to_json each; revision 0003), so that a run's prompts can be shown
    #: after a restart; None for a set recorded before
    tasks: Mapped[list[Any] | None] = mapped_column(JSON)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(index=True)
    spec: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(default="pending", index=True)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(default="")
    error: Mapped[str | None]
    #: the job's output folder, relative to the data folder
    out: Mapped[str] = mapped_column(default="")
    pid: Mapped[int | None]
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created: Mapped[float] = mapped_column(default=now)
    started: Mapped[float | None]
    updated: Mapped[float | None]
    finished: Mapped[float | None]
    seconds: Mapped[float | None]


class AIEResultRow(Base):
    __tablename__ = "aie_results"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    relation: Mapped[str] = mapped_column(index=True)
    model_id: Mapped[str] = mapped_column(index=True)
    k: Mapped[int]
    n_prompts: Mapped[int]
    corruption: Mapped[str]
    clean_accuracy: Mapped[float]
    n_layers: Mapped[int]
    n_heads: Mapped[int]
    clean_tasks_hash: Mapped[str] = mapped_column(String(64))
    corrupted_tasks_hash: Mapped[str] = mapped_column(String(64))
    #: artifact hashes: the AIE matrix (layers x heads) and the mean activations
    aie_artifact: Mapped[str] = mapped_column(String(64))
    mean_artifact: Mapped[str] = mapped_column(String(64))
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[float] = mapped_column(default=now)


class VectorRow(Base):
    __tablename__ = "vectors"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str]
    relation: Mapped[str] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(default="extracted")
    model_id: Mapped[str] = mapped_column(index=True)
    d_model: Mapped[int]
    n_layers: Mapped[int]
    layer: Mapped[int]
    heads: Mapped[list[Any]]
    strength: Mapped[float] = mapped_column(default=1.0)
    bias: Mapped[str] = mapped_column(default="per_head")
    hook_point: Mapped[str]
    #: the artifact (a function-vector safetensors file) with the array and its metadata
    artifact: Mapped[str] = mapped_column(String(64))
    source_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[float] = mapped_column(default=now)
    parents: Mapped[list[VectorParent]] = relationship(
        foreign_keys="VectorParent.composite_id", cascade="all, delete-orphan", passive_deletes=True
    )


class VectorParent(Base):
    """A composite vector's parts and their weights."""

    __tablename__ = "vector_parents"
    composite_id: Mapped[int] = mapped_column(ForeignKey("vectors.id", ondelete="CASCADE"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("vectors.id", ondelete="RESTRICT"), primary_key=True)
    weight: Mapped[float]


class EvaluationRow(Base):
    __tablename__ = "evaluations"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    model_id: Mapped[str]
    relation: Mapped[str]
    condition: Mapped[str]
    k: Mapped[int]
    n: Mapped[int]
    accuracy: Mapped[float]
    vector_id: Mapped[int | None] = mapped_column(ForeignKey("vectors.id", ondelete="SET NULL"))
    split: Mapped[str] = mapped_column(default="")
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[float] = mapped_column(default=now)


# -- what was measured, prompt by prompt (revision 0003) -------------------------------------------
class PromptGroup(Base):
    """The prompts of one task set that a run measured under one condition ("clean", "0-shot",
    "L3 x1.0", ...), with the template that wrote them as text."""

    __tablename__ = "prompt_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    relation: Mapped[str]
    condition: Mapped[str]
    task_set_hash: Mapped[str] = mapped_column(String(64), index=True)
    #: PromptTemplate fields (id, demo, query, image_token)
    template: Mapped[dict[str, Any]]
    #: what else the condition fixes (layer, strength, vector id, ...)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    n: Mapped[int]
    n_correct: Mapped[int]
    created: Mapped[float] = mapped_column(default=now)
    __table_args__ = (UniqueConstraint("run_id", "relation", "condition", name="uq_prompt_groups_run_condition"),)


class PromptAnswer(Base):
    """The model's answer to one prompt of a group: the task is `task_index` of the group's task set."""

    __tablename__ = "prompt_answers"
    group_id: Mapped[int] = mapped_column(ForeignKey("prompt_groups.id", ondelete="CASCADE"), primary_key=True)
    task_index: Mapped[int] = mapped_column(primary_key=True)
    predicted: Mapped[str]
    correct: Mapped[bool]
    #: P(the expected answer's first token)
    answer_prob: Mapped[float | None]
