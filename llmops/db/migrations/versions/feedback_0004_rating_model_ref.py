"""feedback: ratings and comparison entries carry their response's model reference

Aggregates per model over a time window (monitoring quality per model reference, the feedback
dashboard's distribution per model version) read the window's ratings alone instead of joining
each to its response (a hash join over every response: seconds at a million ratings).

- ``feedback_ratings.model_ref``, ``.model_version`` and the same on
  ``feedback_comparison_entries``: copied from the response by the store at write time;
- ``uq_feedback_responses_model``, a unique index on the responses' (id, model_ref,
  model_version), the target of a composite foreign key from each table (ON UPDATE CASCADE), so
  a copy without NULLs can never differ from its response's (SQL skips the check of a row with a
  NULL in it: the store keeps those). An index, not a constraint: on SQLite a new constraint
  rebuilds the table, and dropping the old responses table would cascade-delete the ratings;
- on SQLite the two child tables are rebuilt to add the foreign key (nothing references them);
- existing rows are backfilled from their responses here.

Revision ID: feedback_0004
Revises: feedback_0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op


revision = "feedback_0004"
down_revision = "feedback_0003"
branch_labels = None
depends_on = None

TABLES = ("feedback_ratings", "feedback_comparison_entries")
MODEL_COLUMNS = ["id", "model_ref", "model_version"]


def _backfill(table: str) -> None:
    """Copy each row's response's model reference: one set-based UPDATE ... FROM (PostgreSQL, SQLite >= 3.33)."""
    op.execute(f"UPDATE {table} SET model_ref = r.model_ref, model_version = r.model_version "
               f"FROM feedback_responses AS r WHERE r.id = {table}.response_id "
               f"AND (r.model_ref IS NOT NULL OR r.model_version IS NOT NULL)")


def upgrade() -> None:
    op.create_index("uq_feedback_responses_model", "feedback_responses", MODEL_COLUMNS, unique=True)
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("model_ref", sa.String(length=500), nullable=True))
            batch_op.add_column(sa.Column("model_version", sa.String(length=200), nullable=True))
        _backfill(table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(
                f"fk_{table}_response_model", "feedback_responses",
                ["response_id", "model_ref", "model_version"], MODEL_COLUMNS,
                ondelete="CASCADE", onupdate="CASCADE",
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_response_model", type_="foreignkey")
            batch_op.drop_column("model_version")
            batch_op.drop_column("model_ref")
    op.drop_index("uq_feedback_responses_model", table_name="feedback_responses")
