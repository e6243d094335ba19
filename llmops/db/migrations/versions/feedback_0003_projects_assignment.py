"""feedback: projects, routing, assignment with overlap k, corrections, comparison critiques

- ``feedback_projects``: guidelines, typed questions (JSON), overlap k, routing rules, at
  most one default project (partial unique index);
- ``feedback_project_items``: an item belongs to at most one project; gold answers;
- ``feedback_assignments``: claims/answers/skips; unique (item, rater) and (item, slot),
  ``slot BETWEEN 1 AND overlap_k`` with ``overlap_k`` pinned to the project's by a
  composite FK (ON UPDATE CASCADE): the database refuses a (k+1)-th rater;
- ``feedback_corrections``: a rater's corrected text of a response (SFT data);
- ``feedback_comparisons.critique``: a critique of the comparison itself.

Revision ID: feedback_0003
Revises: feedback_0002
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op


revision = "feedback_0003"
down_revision = "feedback_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feedback_projects',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('guidelines', sa.Text(), nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('overlap_k', sa.Integer(), nullable=False),
    sa.Column('show_model_metadata', sa.Boolean(), nullable=False),
    sa.Column('claim_timeout_s', sa.Integer(), nullable=False),
    sa.Column('routing', sa.JSON(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('claim_timeout_s >= 1', name=op.f('ck_feedback_projects_claim_timeout_positive')),
    sa.CheckConstraint('overlap_k >= 1', name=op.f('ck_feedback_projects_overlap_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_projects')),
    sa.UniqueConstraint('id', 'overlap_k', name=op.f('uq_feedback_projects_id_overlap_k')),
    sa.UniqueConstraint('name', name=op.f('uq_feedback_projects_name'))
    )
    with op.batch_alter_table('feedback_projects', schema=None) as batch_op:
        batch_op.create_index('uq_feedback_projects_one_default', ['is_default'], unique=True, sqlite_where=sa.text('is_default'), postgresql_where=sa.text('is_default'))

    op.create_table('feedback_project_items',
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('routed_by', sa.String(length=40), nullable=False),
    sa.Column('gold', sa.JSON(), nullable=True),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['feedback_items.id'], name=op.f('fk_feedback_project_items_item_id_feedback_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['feedback_projects.id'], name=op.f('fk_feedback_project_items_project_id_feedback_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_id', name=op.f('pk_feedback_project_items')),
    sa.UniqueConstraint('project_id', 'item_id', name=op.f('uq_feedback_project_items_project_id_item_id'))
    )
    with op.batch_alter_table('feedback_project_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_project_items_project_id'), ['project_id'], unique=False)

    op.create_table('feedback_assignments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('overlap_k', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rater_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(state = 'skipped' AND slot IS NULL) OR (state <> 'skipped' AND slot >= 1 AND slot <= overlap_k)", name=op.f('ck_feedback_assignments_slot_within_overlap')),
    sa.CheckConstraint("state IN ('claimed', 'done', 'skipped')", name=op.f('ck_feedback_assignments_state')),
    sa.ForeignKeyConstraint(['project_id', 'item_id'], ['feedback_project_items.project_id', 'feedback_project_items.item_id'], name=op.f('fk_feedback_assignments_project_id_feedback_project_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id', 'overlap_k'], ['feedback_projects.id', 'feedback_projects.overlap_k'], name=op.f('fk_feedback_assignments_project_id_feedback_projects'), onupdate='CASCADE', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rater_id'], ['feedback_raters.id'], name=op.f('fk_feedback_assignments_rater_id_feedback_raters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_assignments')),
    sa.UniqueConstraint('item_id', 'rater_id', name=op.f('uq_feedback_assignments_item_id_rater_id')),
    sa.UniqueConstraint('item_id', 'slot', name=op.f('uq_feedback_assignments_item_id_slot'))
    )
    with op.batch_alter_table('feedback_assignments', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_assignments_project_rater', ['project_id', 'rater_id'], unique=False)

    op.create_table('feedback_corrections',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('response_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rater_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rater_id'], ['feedback_raters.id'], name=op.f('fk_feedback_corrections_rater_id_feedback_raters')),
    sa.ForeignKeyConstraint(['response_id', 'item_id'], ['feedback_responses.id', 'feedback_responses.item_id'], name=op.f('fk_feedback_corrections_response_id_feedback_responses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_corrections')),
    sa.UniqueConstraint('response_id', 'rater_id', name=op.f('uq_feedback_corrections_response_id_rater_id'))
    )
    with op.batch_alter_table('feedback_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_corrections_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_corrections_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_corrections_rater_id'), ['rater_id'], unique=False)

    with op.batch_alter_table('feedback_comparisons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('critique', sa.Text(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('feedback_comparisons', schema=None) as batch_op:
        batch_op.drop_column('critique')

    with op.batch_alter_table('feedback_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_corrections_rater_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_corrections_item_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_corrections_created_at'))

    op.drop_table('feedback_corrections')
    with op.batch_alter_table('feedback_assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_assignments_project_rater')

    op.drop_table('feedback_assignments')
    with op.batch_alter_table('feedback_project_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_project_items_project_id'))

    op.drop_table('feedback_project_items')
    with op.batch_alter_table('feedback_projects', schema=None) as batch_op:
        batch_op.drop_index('uq_feedback_projects_one_default', sqlite_where=sa.text('is_default'), postgresql_where=sa.text('is_default'))

    op.drop_table('feedback_projects')
