"""registry: registry id, 64-bit artifact sizes, alias policies, audit log, eval model hash

Revision ID: registry_0002
Revises: registry_0001
Create Date: 2026-11-30
"""

import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "registry_0002"
down_revision = "registry_0001"
branch_labels = None
depends_on = None

_IMMUTABLE = ("model_id", "version", "artifact_uri", "artifact_sha256", "artifact_bytes", "lineage")


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _versions_trigger() -> None:
    op.execute(
        f"CREATE TRIGGER registry_versions_immutable BEFORE UPDATE OF {', '.join(_IMMUTABLE)} "
        "ON registry_versions FOR EACH ROW EXECUTE FUNCTION registry_reject_change()"
    )


def upgrade() -> None:
    meta = op.create_table(
        "registry_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_registry_meta")),
    )
    # The id is made once, here: every process that opens this database sees the same one.
    op.bulk_insert(meta, [{"key": "registry_id", "value": uuid.uuid4().hex},
                          {"key": "created_at", "value": datetime.now(timezone.utc).isoformat()}])
    if _pg():
        # SQLite's INTEGER is already 64-bit; PostgreSQL's is 32. The trigger names the column: re-create it.
        op.execute("DROP TRIGGER IF EXISTS registry_versions_immutable ON registry_versions")
        op.alter_column("registry_versions", "artifact_bytes", type_=sa.BigInteger(), existing_nullable=False)
        _versions_trigger()
    op.add_column("registry_eval_results", sa.Column("model_hash", sa.String(64), nullable=True))
    op.create_table(
        "registry_alias_policies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("gates", sa.JSON, nullable=False),
        sa.Column("gates_source", sa.Text, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_alias_policies")),
        sa.UniqueConstraint("model_name", "alias", name=op.f("uq_registry_alias_policies_model_name_alias")),
    )
    op.create_table(
        "registry_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_audit")),
    )
    op.create_index(op.f("ix_registry_audit_model_name"), "registry_audit", ["model_name"])
    if _pg():
        op.execute("CREATE TRIGGER registry_audit_append_only BEFORE UPDATE OR DELETE ON registry_audit "
                   "FOR EACH ROW EXECUTE FUNCTION registry_reject_change()")
        op.execute("CREATE TRIGGER registry_audit_no_truncate BEFORE TRUNCATE ON registry_audit "
                   "FOR EACH STATEMENT EXECUTE FUNCTION registry_reject_change()")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER registry_audit_no_{action.lower()} BEFORE {action} ON registry_audit "
                       f"BEGIN SELECT RAISE(ABORT, 'registry_audit is append-only ({action} refused)'); END")


def downgrade() -> None:
    if _pg():
        op.execute("DROP TRIGGER IF EXISTS registry_audit_append_only ON registry_audit")
        op.execute("DROP TRIGGER IF EXISTS registry_audit_no_truncate ON registry_audit")
        op.execute("DROP TRIGGER IF EXISTS registry_versions_immutable ON registry_versions")
        op.alter_column("registry_versions", "artifact_bytes", type_=sa.Integer(), existing_nullable=False)
        _versions_trigger()
    else:
        op.execute("DROP TRIGGER IF EXISTS registry_audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS registry_audit_no_delete")
    op.drop_table("registry_audit")
    op.drop_table("registry_alias_policies")
    with op.batch_alter_table("registry_eval_results") as batch:
        batch.drop_column("model_hash")
    op.drop_table("registry_meta")
