"""feedback: `client` role (model-server callers); materialised export snapshots

A key with role ``client`` may call the model server's generation endpoints only.
``feedback_export_rows`` holds each snapshot's rows as the JSON text that is served,
so re-reading a snapshot id gives the same bytes however many writes came after.

Revision ID: feedback_0002
Revises: feedback_0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op


revision = "feedback_0002"
down_revision = "feedback_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback_api_keys") as batch:
        batch.drop_constraint(op.f("ck_feedback_api_keys_role"), type_="check")
        batch.create_check_constraint("role", "role IN ('admin', 'service', 'rater', 'client')")
    op.create_table(
        "feedback_export_rows",
        sa.Column("snapshot_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("row_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["feedback_exports.snapshot_id"],
            name=op.f("fk_feedback_export_rows_snapshot_id_feedback_exports"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "seq", name=op.f("pk_feedback_export_rows")),
    )


def downgrade() -> None:
    op.drop_table("feedback_export_rows")
    with op.batch_alter_table("feedback_api_keys") as batch:
        batch.drop_constraint(op.f("ck_feedback_api_keys_role"), type_="check")
        batch.create_check_constraint("role", "role IN ('admin', 'service', 'rater')")
