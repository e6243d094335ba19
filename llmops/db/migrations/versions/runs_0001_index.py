"""runs: the index of training run directories (listing, filters, pagination of the UI)

Revision ID: runs_0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "runs_0001"
down_revision = None
branch_labels = ("runs",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs_index",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("run_dir", sa.String(1024), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("recipe", sa.String(256), nullable=False),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("base_model", sa.String(512), nullable=True),
        sa.Column("registered", sa.String(256), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("steps_completed", sa.Integer, nullable=False),
        sa.Column("max_steps", sa.Integer, nullable=True),
        sa.Column("train_loss", sa.Float, nullable=True),
        sa.Column("eval_loss", sa.Float, nullable=True),
        sa.Column("throughput", sa.Float, nullable=True),
        sa.Column("throughput_unit", sa.String(64), nullable=True),
        sa.Column("wall_time_s", sa.Float, nullable=True),
        sa.Column("manifest_mtime", sa.Float, nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs_index")),
        sa.UniqueConstraint("run_dir", name=op.f("uq_runs_index_run_dir")),
    )
    op.create_index(op.f("ix_runs_index_run_id"), "runs_index", ["run_id"])
    op.create_index(op.f("ix_runs_index_recipe"), "runs_index", ["recipe"])
    op.create_index(op.f("ix_runs_index_task"), "runs_index", ["task"])
    op.create_index(op.f("ix_runs_index_status"), "runs_index", ["status"])
    op.create_index("ix_runs_index_started", "runs_index", ["started_at", "id"])
    op.create_table(
        "runs_index_tags",
        sa.Column("run_pk", sa.Integer, nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(["run_pk"], ["runs_index.id"], name=op.f("fk_runs_index_tags_run_pk_runs_index"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_pk", "tag", name=op.f("pk_runs_index_tags")),
    )
    op.create_index(op.f("ix_runs_index_tags_tag"), "runs_index_tags", ["tag"])


def downgrade() -> None:
    op.drop_table("runs_index_tags")
    op.drop_table("runs_index")
