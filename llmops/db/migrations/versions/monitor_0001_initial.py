"""monitor: drift reference profiles, alert state and alert events

Revision ID: monitor_0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "monitor_0001"
down_revision = None
branch_labels = ("monitor",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_drift_references",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("profile", sa.JSON, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_drift_references")),
        sa.UniqueConstraint("model_name", "version", name=op.f("uq_monitor_drift_references_model_name_version")),
    )
    op.create_table(
        "monitor_alert_state",
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("last_value", sa.Float, nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fire_count", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule", name=op.f("pk_monitor_alert_state")),
    )
    op.create_table(
        "monitor_alert_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_alert_events")),
    )
    op.create_index(op.f("ix_monitor_alert_events_rule"), "monitor_alert_events", ["rule"])


def downgrade() -> None:
    op.drop_table("monitor_alert_events")
    op.drop_table("monitor_alert_state")
    op.drop_table("monitor_drift_references")
