"""feedback: daily rollups of the per-model aggregates, invalidated by triggers

Aggregates per model over long windows (the monitoring overview's seven 1-week windows: ~270k
ratings) read complete past UTC days from small rollup tables and only the window edges and the
current day from the ratings themselves (`llmops.feedback.rollups`).

- ``feedback_rollup_days``: one row per rolled-up day; ``feedback_rollup_ratings`` (count per
  day, model reference/version, scale, score) and ``feedback_rollup_comparisons`` (pairs, wins,
  comparisons per day and model reference) hang off it with ON DELETE CASCADE;
- triggers on DELETE and on UPDATE of the aggregated columns of ``feedback_ratings``,
  ``feedback_comparisons`` and ``feedback_comparison_entries`` delete the affected days' rows
  (and so their rollups), whoever deletes: an erasure, an item deleted with its responses, a
  cascade of feedback_0004's foreign key. No trigger on INSERT: the write path is untouched (late
  commits are handled by rolling up only days closed for longer than a safety margin).

Revision ID: feedback_0005
Revises: feedback_0004
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op


revision = "feedback_0005"
down_revision = "feedback_0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# (table, what changes a day's aggregate on UPDATE, the day(s) of the OLD/NEW row: PostgreSQL, SQLite)
PG_DAY = "(({row}.created_at AT TIME ZONE 'UTC')::date)"
PG_ENTRY_DAY = ("(SELECT (c.created_at AT TIME ZONE 'UTC')::date FROM feedback_comparisons AS c "
                "WHERE c.id = {row}.comparison_id)")
SQLITE_DAY = "date({row}.created_at)"
SQLITE_ENTRY_DAY = "(SELECT date(c.created_at) FROM feedback_comparisons AS c WHERE c.id = {row}.comparison_id)"
TRIGGERS = {
    "feedback_ratings": ("score, created_at, model_ref, model_version, scale_min, scale_max", PG_DAY, SQLITE_DAY),
    "feedback_comparisons": ("created_at", PG_DAY, SQLITE_DAY),
    "feedback_comparison_entries": ("comparison_id, response_id, rank, model_ref, model_version",
                                    PG_ENTRY_DAY, SQLITE_ENTRY_DAY),
}


def _create_tables() -> None:
    op.create_table(
        "feedback_rollup_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n_ratings", sa.Integer(), nullable=False),
        sa.Column("n_comparisons", sa.Integer(), nullable=False),
        sa.Column("max_rating_id", Id, nullable=True),
        sa.Column("max_comparison_id", Id, nullable=True),
        sa.Column("rolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("n_ratings >= 0 AND n_comparisons >= 0", name=op.f("ck_feedback_rollup_days_counts_non_negative")),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_feedback_rollup_days")),
    )
    op.create_table(
        "feedback_rollup_ratings",
        sa.Column("id", Id, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("model_ref", sa.String(length=500), nullable=True),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("scale_min", sa.Integer(), nullable=False),
        sa.Column("scale_max", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint("n >= 1", name=op.f("ck_feedback_rollup_ratings_n_positive")),
        sa.CheckConstraint("score >= scale_min AND score <= scale_max",
                           name=op.f("ck_feedback_rollup_ratings_score_on_scale")),
        sa.ForeignKeyConstraint(["day"], ["feedback_rollup_days.day"], ondelete="CASCADE",
                                name=op.f("fk_feedback_rollup_ratings_day_feedback_rollup_days")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_rollup_ratings")),
    )
    op.create_index(op.f("ix_feedback_rollup_ratings_day"), "feedback_rollup_ratings", ["day"])
    op.create_table(
        "feedback_rollup_comparisons",
        sa.Column("id", Id, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("model_ref", sa.String(length=500), nullable=True),
        sa.Column("n_pairs", sa.Integer(), nullable=False),
        sa.Column("wins2", sa.Integer(), nullable=False),
        sa.Column("n_comparisons", sa.Integer(), nullable=False),
        sa.CheckConstraint("n_pairs >= 1 AND n_comparisons >= 1",
                           name=op.f("ck_feedback_rollup_comparisons_counts_positive")),
        sa.CheckConstraint("wins2 >= 0 AND wins2 <= 2 * n_pairs",
                           name=op.f("ck_feedback_rollup_comparisons_wins_within_pairs")),
        sa.ForeignKeyConstraint(["day"], ["feedback_rollup_days.day"], ondelete="CASCADE",
                                name=op.f("fk_feedback_rollup_comparisons_day_feedback_rollup_days")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_rollup_comparisons")),
    )
    op.create_index(op.f("ix_feedback_rollup_comparisons_day"), "feedback_rollup_comparisons", ["day"])


def _create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, (columns, day, _) in TRIGGERS.items():
            old, new = day.format(row="OLD"), day.format(row="NEW")
            op.execute(f"""
CREATE FUNCTION {table}_rollup_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM feedback_rollup_days WHERE day = {old};
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM feedback_rollup_days WHERE day = {new};
    END IF;
    RETURN NULL;
END $$""")
            op.execute(f"CREATE TRIGGER {table}_rollup AFTER DELETE OR UPDATE OF {columns} ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION {table}_rollup_invalidate()")
        return
    for table, (columns, _, day) in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {table}_rollup_delete AFTER DELETE ON {table} BEGIN "
                   f"DELETE FROM feedback_rollup_days WHERE day = {day.format(row='OLD')}; END")
        op.execute(f"CREATE TRIGGER {table}_rollup_update AFTER UPDATE OF {columns} ON {table} BEGIN "
                   f"DELETE FROM feedback_rollup_days WHERE day IN ({day.format(row='OLD')}, "
                   f"{day.format(row='NEW')}); END")


def upgrade() -> None:
    _create_tables()
    _create_triggers()


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TRIGGERS:
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_rollup ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_rollup_invalidate()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_rollup_delete")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_rollup_update")
    op.drop_table("feedback_rollup_comparisons")
    op.drop_table("feedback_rollup_ratings")
    op.drop_table("feedback_rollup_days")
