"""What was measured, prompt by prompt: task sets keep their tasks; runs keep each prompt's answer
(prompt groups: one task set under one condition).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_sets") as batch:
        batch.add_column(sa.Column("tasks", sa.JSON(), nullable=True))
    op.create_table(
        "prompt_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("relation", sa.String(), nullable=False),
        sa.Column("condition", sa.String(), nullable=False),
        sa.Column("task_set_hash", sa.String(length=64), nullable=False),
        sa.Column("template", sa.JSON(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("n_correct", sa.Integer(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_prompt_groups_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_groups")),
        sa.UniqueConstraint("run_id", "relation", "condition", name="uq_prompt_groups_run_condition"),
    )
    op.create_index(op.f("ix_prompt_groups_run_id"), "prompt_groups", ["run_id"])
    op.create_index(op.f("ix_prompt_groups_task_set_hash"), "prompt_groups", ["task_set_hash"])
    op.create_table(
        "prompt_answers",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("task_index", sa.Integer(), nullable=False),
        sa.Column("predicted", sa.String(), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("answer_prob", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["prompt_groups.id"],
            name=op.f("fk_prompt_answers_group_id_prompt_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "task_index", name=op.f("pk_prompt_answers")),
    )


def downgrade() -> None:
    op.drop_table("prompt_answers")
    op.drop_index(op.f("ix_prompt_groups_task_set_hash"), table_name="prompt_groups")
    op.drop_index(op.f("ix_prompt_groups_run_id"), table_name="prompt_groups")
    op.drop_table("prompt_groups")
    with op.batch_alter_table("task_sets") as batch:
        batch.drop_column("tasks")
