"""deal stage stays (backfilled from deal_history); deal history by workspace and time

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 10:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import store.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# The stays as store/services/stage_stays.py computes them (frozen here, as this revision's
# schema stands): entries are a deal's first history row and the rows with a from_stage_id;
# left_at is the next entry; prev_entered_at the previous entry into the same stage; the *_later
# columns look at the rows strictly after the entry.
# The same text runs on PostgreSQL 11+ and SQLite 3.28+ (EXCLUDE GROUP).
_LATER = ("OVER (PARTITION BY h.deal_id ORDER BY h.changed_at DESC"
          " RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP)")
BACKFILL = f"""
INSERT INTO deal_stage_stays (history_id, workspace_id, deal_id, owner_id, stage_id, entered_at, left_at,
                              prev_entered_at, won_later, lost_later, top_open_later)
SELECT e.id, e.workspace_id, e.deal_id, e.owner_id, e.stage_id, e.changed_at,
       lead(e.changed_at) OVER (PARTITION BY e.deal_id ORDER BY e.changed_at, e.id),
       lag(e.changed_at) OVER (PARTITION BY e.deal_id, e.stage_id ORDER BY e.changed_at, e.id),
       coalesce(e.won, 0) = 1, coalesce(e.lost, 0) = 1, e.top_open
FROM (
  SELECT r.* FROM (
    SELECT h.id, h.workspace_id, h.deal_id, d.owner_id, h.stage_id, h.changed_at, h.from_stage_id,
           row_number() OVER (PARTITION BY h.deal_id ORDER BY h.changed_at, h.id) AS n,
           max(CASE WHEN s.kind = 'won' THEN 1 ELSE 0 END) {_LATER} AS won,
           max(CASE WHEN s.kind = 'lost' THEN 1 ELSE 0 END) {_LATER} AS lost,
           max(CASE WHEN s.kind = 'open' THEN s.position END) {_LATER} AS top_open
    FROM deal_history h JOIN stages s ON s.id = h.stage_id JOIN deals d ON d.id = h.deal_id
  ) AS r WHERE r.n = 1 OR r.from_stage_id IS NOT NULL
) AS e
"""


def upgrade() -> None:
    op.create_table('deal_stage_stays',
    sa.Column('history_id', sa.Uuid(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=True),
    sa.Column('stage_id', sa.Uuid(), nullable=False),
    sa.Column('entered_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('left_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('prev_entered_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('won_later', sa.Boolean(), nullable=False),
    sa.Column('lost_later', sa.Boolean(), nullable=False),
    sa.Column('top_open_later', sa.Integer(), nullable=True),
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_deal_stage_stays_deal_id_deals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['history_id'], ['deal_history.id'], name=op.f('fk_deal_stage_stays_history_id_deal_history'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_deal_stage_stays_owner_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['stage_id'], ['stages.id'], name=op.f('fk_deal_stage_stays_stage_id_stages')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_deal_stage_stays_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('history_id', name=op.f('pk_deal_stage_stays'))
    )
    op.execute(BACKFILL)
    if op.get_context().dialect.name == 'postgresql':
        op.execute('ANALYZE deal_stage_stays')  # the planner's estimates for a table filled at once
    with op.batch_alter_table('deal_stage_stays', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deal_stage_stays_deal_id'), ['deal_id'], unique=False)
        batch_op.create_index('ix_deal_stage_stays_stage_entered', ['stage_id', 'entered_at'], unique=False)
        batch_op.create_index('ix_deal_stage_stays_workspace_entered', ['workspace_id', 'entered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_deal_stage_stays_workspace_id'), ['workspace_id'], unique=False)
        batch_op.create_index('ix_deal_stage_stays_workspace_left', ['workspace_id', 'left_at'], unique=False)

    with op.batch_alter_table('deal_history', schema=None) as batch_op:
        batch_op.create_index('ix_deal_history_workspace_changed_deal', ['workspace_id', 'changed_at', 'deal_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deal_history', schema=None) as batch_op:
        batch_op.drop_index('ix_deal_history_workspace_changed_deal')

    with op.batch_alter_table('deal_stage_stays', schema=None) as batch_op:
        batch_op.drop_index('ix_deal_stage_stays_workspace_left')
        batch_op.drop_index(batch_op.f('ix_deal_stage_stays_workspace_id'))
        batch_op.drop_index('ix_deal_stage_stays_workspace_entered')
        batch_op.drop_index('ix_deal_stage_stays_stage_entered')
        batch_op.drop_index(batch_op.f('ix_deal_stage_stays_deal_id'))

    op.drop_table('deal_stage_stays')
