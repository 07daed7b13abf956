"""activity_day_counts: activities per workspace, UTC day, owner and type (backfilled)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 04:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('activity_day_counts',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=True),
    sa.Column('type', sa.Enum('call', 'meeting', 'email', 'note', 'sms', 'linkedin', 'other', name='activitytype', native_enum=False, length=32), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_activity_day_counts_owner_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_activity_day_counts_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_day_counts')),
    sa.UniqueConstraint('workspace_id', 'day', 'owner_id', 'type', name='uq_activity_day_counts_cell')
    )
    with op.batch_alter_table('activity_day_counts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_day_counts_workspace_id'), ['workspace_id'], unique=False)

    # One row per (workspace, UTC day of occurred_at, owner, type), as activity_rollup.rebuild fills it;
    # the activity service keeps it exact from now on. Ids are random UUIDs made in SQL (the app's are
    # UUIDv7; nothing orders by them). SQLite stores a UUID as 32 hex digits and occurred_at as UTC text.
    if op.get_context().dialect.name == 'postgresql':
        op.execute(
            "INSERT INTO activity_day_counts (id, workspace_id, day, owner_id, type, n)"
            " SELECT gen_random_uuid(), c.workspace_id, c.day, c.owner_id, c.type, c.n FROM ("
            "SELECT workspace_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, owner_id, type, count(*) AS n"
            " FROM activities GROUP BY 1, 2, 3, 4) AS c"
        )
    else:
        op.execute(
            "INSERT INTO activity_day_counts (id, workspace_id, day, owner_id, type, n)"
            " SELECT lower(hex(randomblob(16))), c.workspace_id, c.day, c.owner_id, c.type, c.n FROM ("
            "SELECT workspace_id, date(occurred_at) AS day, owner_id, type, count(*) AS n"
            " FROM activities GROUP BY 1, 2, 3, 4) AS c"
        )


def downgrade() -> None:
    with op.batch_alter_table('activity_day_counts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_day_counts_workspace_id'))

    op.drop_table('activity_day_counts')
