"""monitor: alert state machines per (scope, model, rule), incidents, event ids, retraining jobs

The old per-rule-name state (`monitor_alert_state`) cannot be mapped onto a scope (the
rules file it came from was never recorded), so it is dropped: the first check after the
upgrade starts every alert at `ok`. Events are kept; their new columns are NULL.

Revision ID: monitor_0002
Revises: monitor_0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "monitor_0002"
down_revision = "monitor_0001"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_table("monitor_alert_state")
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scope", sa.String(512), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("breaches", sa.Integer, nullable=False),
        sa.Column("last_value", sa.Float, nullable=True),
        sa.Column("state_since", _TZ, nullable=True),
        sa.Column("last_notified_at", _TZ, nullable=True),
        sa.Column("last_training_at", _TZ, nullable=True),
        sa.Column("fire_count", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("next_check_at", _TZ, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_alerts")),
        sa.UniqueConstraint("scope", "model", "rule", name=op.f("uq_monitor_alerts_scope_model_rule")),
    )
    op.create_table(
        "monitor_incidents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alert_id", sa.Integer, nullable=False),
        sa.Column("scope", sa.String(512), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("opened_at", _TZ, nullable=False),
        sa.Column("resolved_at", _TZ, nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("retrain", sa.String(16), nullable=False),
        sa.Column("retrain_owner", sa.String(256), nullable=True),
        sa.Column("retrain_attempts", sa.Integer, nullable=False),
        sa.Column("next_try_at", _TZ, nullable=True),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("why", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_incidents")),
        sa.ForeignKeyConstraint(["alert_id"], ["monitor_alerts.id"],
                                name=op.f("fk_monitor_incidents_alert_id_monitor_alerts")),
    )
    op.create_index(op.f("ix_monitor_incidents_alert_id"), "monitor_incidents", ["alert_id"])
    with op.batch_alter_table("monitor_alert_events") as batch:
        batch.add_column(sa.Column("event_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("scope", sa.String(512), nullable=True))
        batch.add_column(sa.Column("model", sa.String(256), nullable=True))
        batch.add_column(sa.Column("incident_id", sa.Integer, nullable=True))
        batch.create_unique_constraint(op.f("uq_monitor_alert_events_event_id"), ["event_id"])
    op.create_table(
        "monitor_jobs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("incident_id", sa.Integer, nullable=True),
        sa.Column("launcher", sa.String(16), nullable=False),
        sa.Column("argv", sa.JSON, nullable=False),
        sa.Column("cancel_argv", sa.JSON, nullable=True),
        sa.Column("cwd", sa.Text, nullable=True),
        sa.Column("env", sa.JSON, nullable=True),
        sa.Column("run_dir", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("backoff_s", sa.Float, nullable=False),
        sa.Column("next_try_at", _TZ, nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("host", sa.String(256), nullable=True),
        sa.Column("log_path", sa.Text, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("log_tail", sa.Text, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("started_at", _TZ, nullable=True),
        sa.Column("finished_at", _TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_jobs")),
    )
    op.create_index(op.f("ix_monitor_jobs_incident_id"), "monitor_jobs", ["incident_id"])


def downgrade() -> None:
    op.drop_table("monitor_jobs")
    with op.batch_alter_table("monitor_alert_events") as batch:
        batch.drop_constraint(op.f("uq_monitor_alert_events_event_id"), type_="unique")
        for col in ("incident_id", "model", "scope", "event_id"):
            batch.drop_column(col)
    op.drop_table("monitor_incidents")
    op.drop_table("monitor_alerts")
    op.create_table(
        "monitor_alert_state",
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("last_value", sa.Float, nullable=True),
        sa.Column("last_fired_at", _TZ, nullable=True),
        sa.Column("fire_count", sa.Integer, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("rule", name=op.f("pk_monitor_alert_state")),
    )
