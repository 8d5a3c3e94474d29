"""Curation: images, data sets, scenes, objects, the relations vocabulary and relation labels.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BASE = ("above", "below", "left", "right")
COMPOSITE = {
    "above_left": ["above", "left"],
    "above_right": ["above", "right"],
    "below_left": ["below", "left"],
    "below_right": ["below", "right"],
}


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("original_name", sa.String(), nullable=True),
        sa.Column("created", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("path", name=op.f("uq_images_path")),
        sa.UniqueConstraint("sha256", name=op.f("uq_images_sha256")),
    )
    relations = op.create_table(
        "relations",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("parts", sa.JSON(), nullable=True),
        sa.Column("description", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_relations")),
    )
    op.bulk_insert(
        relations,
        [{"name": r, "kind": "base", "parts": None, "description": ""} for r in BASE]
        + [{"name": r, "kind": "composite", "parts": p, "description": ""} for r, p in COMPOSITE.items()],
    )
    op.create_table(
        "scenes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(), nullable=False),
        sa.Column("anchor", sa.String(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("modified", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_scenes_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_scenes_image_id_images"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenes")),
        sa.UniqueConstraint("dataset_id", "name", name="uq_scenes_dataset_name"),
    )
    op.create_index("ix_scenes_dataset_split", "scenes", ["dataset_id", "split"])
    op.create_index(op.f("ix_scenes_image_id"), "scenes", ["image_id"])
    op.create_table(
        "objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scene_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("x0", sa.Double(), nullable=False),
        sa.Column("y0", sa.Double(), nullable=False),
        sa.Column("x1", sa.Double(), nullable=False),
        sa.Column("y1", sa.Double(), nullable=False),
        sa.Column("stamp", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["scene_id"], ["scenes.id"], name=op.f("fk_objects_scene_id_scenes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objects")),
        sa.UniqueConstraint("scene_id", "name", name="uq_objects_scene_name"),
    )
    op.create_index(op.f("ix_objects_name"), "objects", ["name"])
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scene_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("relation", sa.String(), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("modified", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"], ["objects.id"], name=op.f("fk_labels_object_id_objects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["relation"], ["relations.name"], name=op.f("fk_labels_relation_relations"), onupdate="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["scene_id"], ["scenes.id"], name=op.f("fk_labels_scene_id_scenes"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["objects.id"], name=op.f("fk_labels_subject_id_objects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("subject_id", "relation", "object_id", name="uq_labels_triple"),
    )
    op.create_index(op.f("ix_labels_object_id"), "labels", ["object_id"])
    op.create_index("ix_labels_relation_status", "labels", ["relation", "status"])
    op.create_index(op.f("ix_labels_scene_id"), "labels", ["scene_id"])


def downgrade() -> None:
    for table in ("labels", "objects", "scenes", "relations", "images", "datasets"):
        op.drop_table(table)
