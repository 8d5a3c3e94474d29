"""Science: runs, task sets, AIE results, function vectors (with composite parents), evaluations;
scenes learn where they came from (generated / drawn / imported).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scenes") as batch:
        batch.add_column(sa.Column("origin", sa.String(), nullable=False, server_default="imported"))
    op.execute("UPDATE scenes SET origin = 'generated' WHERE json_extract(meta, '$.generator') IS NOT NULL")
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("out", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("started", sa.Double(), nullable=True),
        sa.Column("updated", sa.Double(), nullable=True),
        sa.Column("finished", sa.Double(), nullable=True),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_kind"), "runs", ["kind"])
    op.create_index(op.f("ix_runs_status"), "runs", ["status"])
    op.create_table(
        "task_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("n_tasks", sa.Integer(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_task_sets_dataset_id_datasets"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_sets")),
        sa.UniqueConstraint("hash", name=op.f("uq_task_sets_hash")),
    )
    op.create_table(
        "aie_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("relation", sa.String(), nullable=False),
        sa.Column("model_id", sa.String(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("n_prompts", sa.Integer(), nullable=False),
        sa.Column("corruption", sa.String(), nullable=False),
        sa.Column("clean_accuracy", sa.Double(), nullable=False),
        sa.Column("n_layers", sa.Integer(), nullable=False),
        sa.Column("n_heads", sa.Integer(), nullable=False),
        sa.Column("clean_tasks_hash", sa.String(length=64), nullable=False),
        sa.Column("corrupted_tasks_hash", sa.String(length=64), nullable=False),
        sa.Column("aie_artifact", sa.String(length=64), nullable=False),
        sa.Column("mean_artifact", sa.String(length=64), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_aie_results_run_id_runs"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aie_results")),
    )
    op.create_index(op.f("ix_aie_results_model_id"), "aie_results", ["model_id"])
    op.create_index(op.f("ix_aie_results_relation"), "aie_results", ["relation"])
    op.create_index(op.f("ix_aie_results_run_id"), "aie_results", ["run_id"])
    op.create_table(
        "vectors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("relation", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("model_id", sa.String(), nullable=False),
        sa.Column("d_model", sa.Integer(), nullable=False),
        sa.Column("n_layers", sa.Integer(), nullable=False),
        sa.Column("layer", sa.Integer(), nullable=False),
        sa.Column("heads", sa.JSON(), nullable=False),
        sa.Column("strength", sa.Double(), nullable=False),
        sa.Column("bias", sa.String(), nullable=False),
        sa.Column("hook_point", sa.String(), nullable=False),
        sa.Column("artifact", sa.String(length=64), nullable=False),
        sa.Column("source_run_id", sa.Integer(), nullable=True),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_run_id"], ["runs.id"], name=op.f("fk_vectors_source_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vectors")),
    )
    op.create_index(op.f("ix_vectors_model_id"), "vectors", ["model_id"])
    op.create_index(op.f("ix_vectors_relation"), "vectors", ["relation"])
    op.create_table(
        "vector_parents",
        sa.Column("composite_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["composite_id"], ["vectors.id"], name=op.f("fk_vector_parents_composite_id_vectors"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["vectors.id"], name=op.f("fk_vector_parents_parent_id_vectors"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("composite_id", "parent_id", name=op.f("pk_vector_parents")),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("model_id", sa.String(), nullable=False),
        sa.Column("relation", sa.String(), nullable=False),
        sa.Column("condition", sa.String(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Double(), nullable=False),
        sa.Column("vector_id", sa.Integer(), nullable=True),
        sa.Column("split", sa.String(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_evaluations_run_id_runs"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["vector_id"], ["vectors.id"], name=op.f("fk_evaluations_vector_id_vectors"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    op.create_index(op.f("ix_evaluations_run_id"), "evaluations", ["run_id"])


def downgrade() -> None:
    for table in ("evaluations", "vector_parents", "vectors", "aie_results", "task_sets", "runs"):
        op.drop_table(table)
    with op.batch_alter_table("scenes") as batch:
        batch.drop_column("origin")
