"""feedback: raters, API keys (hashed), items, responses, ratings, comparisons, idempotency, exports

Integrity is enforced here, not only in Python: one rating per (response, rater), the
score on its item's scale (composite FK to the item's scale + CHECK), ratings and
comparison entries bound to responses of the same item.

Revision ID: feedback_0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op


revision = "feedback_0001"
down_revision = None
branch_labels = ("feedback",)
depends_on = None


def upgrade() -> None:
    op.create_table('feedback_exports',
    sa.Column('snapshot_id', sa.String(length=64), nullable=False),
    sa.Column('strategy', sa.String(length=40), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('n_rows', sa.Integer(), nullable=False),
    sa.Column('max_rating_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('max_comparison_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('agreement', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('snapshot_id', name=op.f('pk_feedback_exports'))
    )
    op.create_table('feedback_raters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_raters')),
    sa.UniqueConstraint('name', name=op.f('uq_feedback_raters_name'))
    )
    op.create_table('feedback_api_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('rater_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('admin', 'service', 'rater')", name=op.f('ck_feedback_api_keys_role')),
    sa.ForeignKeyConstraint(['rater_id'], ['feedback_raters.id'], name=op.f('fk_feedback_api_keys_rater_id_feedback_raters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_api_keys')),
    sa.UniqueConstraint('key_id', name=op.f('uq_feedback_api_keys_key_id'))
    )
    op.create_table('feedback_idempotency',
    sa.Column('rater_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_sha256', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rater_id'], ['feedback_raters.id'], name=op.f('fk_feedback_idempotency_rater_id_feedback_raters')),
    sa.PrimaryKeyConstraint('rater_id', 'key', name=op.f('pk_feedback_idempotency'))
    )
    op.create_table('feedback_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('context', sa.Text(), nullable=True),
    sa.Column('metadata', sa.JSON(), nullable=True),
    sa.Column('scale_min', sa.Integer(), nullable=False),
    sa.Column('scale_max', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('scale_min < scale_max', name=op.f('ck_feedback_items_scale_order')),
    sa.ForeignKeyConstraint(['created_by'], ['feedback_raters.id'], name=op.f('fk_feedback_items_created_by_feedback_raters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_items')),
    sa.UniqueConstraint('id', 'scale_min', 'scale_max', name=op.f('uq_feedback_items_id_scale_min_scale_max'))
    )
    op.create_index(op.f('ix_feedback_items_created_at'), 'feedback_items', ['created_at'], unique=False)
    op.create_table('feedback_comparisons',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rater_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('response_set', sa.String(length=400), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('ranking', 'pair', 'tie')", name=op.f('ck_feedback_comparisons_kind')),
    sa.ForeignKeyConstraint(['item_id'], ['feedback_items.id'], name=op.f('fk_feedback_comparisons_item_id_feedback_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rater_id'], ['feedback_raters.id'], name=op.f('fk_feedback_comparisons_rater_id_feedback_raters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_comparisons')),
    sa.UniqueConstraint('id', 'item_id', name=op.f('uq_feedback_comparisons_id_item_id')),
    sa.UniqueConstraint('item_id', 'rater_id', 'response_set', name=op.f('uq_feedback_comparisons_item_id_rater_id_response_set'))
    )
    op.create_index(op.f('ix_feedback_comparisons_created_at'), 'feedback_comparisons', ['created_at'], unique=False)
    op.create_index(op.f('ix_feedback_comparisons_rater_id'), 'feedback_comparisons', ['rater_id'], unique=False)
    op.create_table('feedback_responses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('model_ref', sa.String(length=500), nullable=True),
    sa.Column('model_version', sa.String(length=200), nullable=True),
    sa.Column('generation_params', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['feedback_items.id'], name=op.f('fk_feedback_responses_item_id_feedback_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_responses')),
    sa.UniqueConstraint('id', 'item_id', name=op.f('uq_feedback_responses_id_item_id')),
    sa.UniqueConstraint('item_id', 'position', name=op.f('uq_feedback_responses_item_id_position'))
    )
    op.create_index(op.f('ix_feedback_responses_model_ref'), 'feedback_responses', ['model_ref'], unique=False)
    op.create_table('feedback_comparison_entries',
    sa.Column('comparison_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('response_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.CheckConstraint('rank >= 1', name=op.f('ck_feedback_comparison_entries_rank_positive')),
    sa.ForeignKeyConstraint(['comparison_id', 'item_id'], ['feedback_comparisons.id', 'feedback_comparisons.item_id'], name=op.f('fk_feedback_comparison_entries_comparison_id_feedback_comparisons'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['response_id', 'item_id'], ['feedback_responses.id', 'feedback_responses.item_id'], name=op.f('fk_feedback_comparison_entries_response_id_feedback_responses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('comparison_id', 'response_id', name=op.f('pk_feedback_comparison_entries'))
    )
    op.create_table('feedback_ratings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('response_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scale_min', sa.Integer(), nullable=False),
    sa.Column('scale_max', sa.Integer(), nullable=False),
    sa.Column('rater_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('critique', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score >= scale_min AND score <= scale_max', name=op.f('ck_feedback_ratings_score_on_scale')),
    sa.ForeignKeyConstraint(['item_id', 'scale_min', 'scale_max'], ['feedback_items.id', 'feedback_items.scale_min', 'feedback_items.scale_max'], name=op.f('fk_feedback_ratings_item_id_feedback_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rater_id'], ['feedback_raters.id'], name=op.f('fk_feedback_ratings_rater_id_feedback_raters')),
    sa.ForeignKeyConstraint(['response_id', 'item_id'], ['feedback_responses.id', 'feedback_responses.item_id'], name=op.f('fk_feedback_ratings_response_id_feedback_responses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_ratings')),
    sa.UniqueConstraint('response_id', 'rater_id', name=op.f('uq_feedback_ratings_response_id_rater_id'))
    )
    op.create_index(op.f('ix_feedback_ratings_created_at'), 'feedback_ratings', ['created_at'], unique=False)
    op.create_index(op.f('ix_feedback_ratings_item_id'), 'feedback_ratings', ['item_id'], unique=False)
    op.create_index(op.f('ix_feedback_ratings_rater_id'), 'feedback_ratings', ['rater_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_feedback_ratings_rater_id'), table_name='feedback_ratings')
    op.drop_index(op.f('ix_feedback_ratings_item_id'), table_name='feedback_ratings')
    op.drop_index(op.f('ix_feedback_ratings_created_at'), table_name='feedback_ratings')
    op.drop_table('feedback_ratings')
    op.drop_table('feedback_comparison_entries')
    op.drop_index(op.f('ix_feedback_responses_model_ref'), table_name='feedback_responses')
    op.drop_table('feedback_responses')
    op.drop_index(op.f('ix_feedback_comparisons_rater_id'), table_name='feedback_comparisons')
    op.drop_index(op.f('ix_feedback_comparisons_created_at'), table_name='feedback_comparisons')
    op.drop_table('feedback_comparisons')
    op.drop_index(op.f('ix_feedback_items_created_at'), table_name='feedback_items')
    op.drop_table('feedback_items')
    op.drop_table('feedback_idempotency')
    op.drop_table('feedback_api_keys')
    op.drop_table('feedback_raters')
    op.drop_table('feedback_exports')
