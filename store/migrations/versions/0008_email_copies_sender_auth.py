"""email copies per owner; inbound sender authentication

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 10:00:00.000000

An email is stored once per (workspace, Message-ID, owner): the unique constraint gains
owner_id. Existing rows were unique on (workspace, Message-ID), so they are unique on the
wider key too. Inbox mail gains whether its From was authenticated; mail received before this
revision was never checked, so it is marked unauthenticated (saying so), the rest stays NULL.

Downgrading narrows the constraint again: it refuses, naming the count, while any message has
more than one copy (deleting a rep's copy is not a migration's decision).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

NEVER_CHECKED = "received before sender authentication was checked"


def upgrade() -> None:
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender_authenticated', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('sender_auth', sa.String(length=500), nullable=True))
        batch_op.drop_constraint('uq_emails_workspace_id_message_id', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_emails_workspace_id_message_id_owner_id'),
                                          ['workspace_id', 'message_id', 'owner_id'])
    emails = sa.table('emails', sa.column('source', sa.String), sa.column('sender_authenticated', sa.Boolean),
                      sa.column('sender_auth', sa.String))
    op.execute(emails.update().where(emails.c.source.like('inbox:%'))
               .values(sender_authenticated=False, sender_auth=NEVER_CHECKED))


def downgrade() -> None:
    bind = op.get_bind()
    copies = bind.execute(sa.text(
        "SELECT count(*) FROM (SELECT workspace_id, message_id FROM emails GROUP BY workspace_id, message_id "
        "HAVING count(*) > 1) AS shared")).scalar()
    if copies:
        raise RuntimeError(f"cannot downgrade below 0007: {copies} message(s) are stored as several reps' copies, "
                           "and the older schema keeps one per workspace; delete the extra copies first")
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_emails_workspace_id_message_id_owner_id'), type_='unique')
        batch_op.create_unique_constraint('uq_emails_workspace_id_message_id', ['workspace_id', 'message_id'])
        batch_op.drop_column('sender_auth')
        batch_op.drop_column('sender_authenticated')
