"""registry: models, immutable versions, eval results, aliases, append-only audit logs

Revision ID: registry_0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0001"
down_revision = None
branch_labels = ("registry",)
depends_on = None

_APPEND_ONLY = ("registry_alias_events", "registry_promotions")
_IMMUTABLE = ("model_id", "version", "artifact_uri", "artifact_sha256", "artifact_bytes", "lineage")


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "registry_models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("next_version", sa.Integer, nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_models")),
        sa.UniqueConstraint("name", name=op.f("uq_registry_models_name")),
    )
    op.create_table(
        "registry_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("artifact_uri", sa.String(512), nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("artifact_bytes", sa.Integer, nullable=False),
        sa.Column("lineage", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_versions")),
        sa.ForeignKeyConstraint(
            ["model_id"], ["registry_models.id"], name=op.f("fk_registry_versions_model_id_registry_models")
        ),
        sa.UniqueConstraint("model_id", "version", name=op.f("uq_registry_versions_model_id_version")),
    )
    op.create_index(op.f("ix_registry_versions_model_id"), "registry_versions", ["model_id"])
    op.create_table(
        "registry_eval_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version_id", sa.Integer, nullable=True),
        sa.Column("suite", sa.String(256), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("results_uri", sa.String(512), nullable=False),
        sa.Column("results_sha256", sa.String(64), nullable=False),
        sa.Column("attached_by", sa.String(128), nullable=False),
        _ts("attached_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_eval_results")),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["registry_versions.id"],
            name=op.f("fk_registry_eval_results_version_id_registry_versions"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_registry_eval_results_version_id"), "registry_eval_results", ["version_id"])
    op.create_table(
        "registry_aliases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_aliases")),
        sa.ForeignKeyConstraint(
            ["model_id"], ["registry_models.id"], name=op.f("fk_registry_aliases_model_id_registry_models")
        ),
        sa.UniqueConstraint("model_id", "alias", name=op.f("uq_registry_aliases_model_id_alias")),
    )
    op.create_table(
        "registry_alias_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        _ts("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_alias_events")),
    )
    op.create_index(op.f("ix_registry_alias_events_model_name"), "registry_alias_events", ["model_name"])
    op.create_table(
        "registry_promotions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("gates_file", sa.Text, nullable=True),
        sa.Column("report", sa.JSON, nullable=False),
        _ts("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_promotions")),
    )
    op.create_index(op.f("ix_registry_promotions_model_name"), "registry_promotions", ["model_name"])
    _create_guards()


def _create_guards() -> None:
    """Reject UPDATE/DELETE on the audit logs and identity changes on versions, in the database."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION registry_reject_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only/immutable (% refused)', TG_TABLE_NAME, TG_OP;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in _APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION registry_reject_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION registry_reject_change()"
            )
        op.execute(
            f"CREATE TRIGGER registry_versions_immutable BEFORE UPDATE OF {', '.join(_IMMUTABLE)} "
            "ON registry_versions FOR EACH ROW EXECUTE FUNCTION registry_reject_change()"
        )
    else:  # SQLite
        for table in _APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only ({action} refused)'); END"
                )
        op.execute(
            f"CREATE TRIGGER registry_versions_immutable BEFORE UPDATE OF {', '.join(_IMMUTABLE)} "
            "ON registry_versions BEGIN SELECT RAISE(ABORT, 'registry_versions identity columns are immutable'); END"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in _APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP TRIGGER IF EXISTS registry_versions_immutable ON registry_versions")
        op.execute("DROP FUNCTION IF EXISTS registry_reject_change()")
    else:
        for table in _APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        op.execute("DROP TRIGGER IF EXISTS registry_versions_immutable")
    for table in (
        "registry_promotions",
        "registry_alias_events",
        "registry_aliases",
        "registry_eval_results",
        "registry_versions",
        "registry_models",
    ):
        op.drop_table(table)
