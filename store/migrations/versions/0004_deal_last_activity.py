"""deals.last_activity_at (backfilled), deal history by close date

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 04:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import store.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_activity_at', store.types.UTCDateTime(timezone=True), nullable=True))

    # The latest activity of each deal, as engagement._set_targets keeps it from now on.
    if op.get_context().dialect.name == 'postgresql':
        op.execute(
            "UPDATE deals SET last_activity_at = last.at"
            " FROM (SELECT t.deal_id, max(a.occurred_at) AS at FROM activity_targets t"
            " JOIN activities a ON a.id = t.activity_id WHERE t.deal_id IS NOT NULL GROUP BY t.deal_id) AS last"
            " WHERE deals.id = last.deal_id"
        )
    else:
        op.execute(
            "UPDATE deals SET last_activity_at = (SELECT max(a.occurred_at) FROM activity_targets t"
            " JOIN activities a ON a.id = t.activity_id WHERE t.deal_id = deals.id)"
        )

    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.create_index('ix_deals_workspace_last_activity', ['workspace_id', 'last_activity_at'], unique=False)

    with op.batch_alter_table('deal_history', schema=None) as batch_op:
        batch_op.create_index('ix_deal_history_workspace_close_date', ['workspace_id', 'close_date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deal_history', schema=None) as batch_op:
        batch_op.drop_index('ix_deal_history_workspace_close_date')

    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.drop_index('ix_deals_workspace_last_activity')
    # Not batch: on SQLite that copies `deals` into a new table and drops the old one, and with foreign
    # keys on, the drop sets activity_targets.deal_id to NULL (failing their one-target CHECK) and
    # deletes the deal history. SQLite 3.35+ drops a column in place.
    op.drop_column('deals', 'last_activity_at')
