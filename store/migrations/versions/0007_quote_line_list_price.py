"""quote_line_items.list_price: the catalogue's price a line was priced from (backfilled)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 10:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import store.types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('quote_line_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('list_price', store.types.Money(), nullable=True))
    # Lines of a catalogue product take its price today, when the product is priced in the
    # quote's currency; a line whose unit_price differs then reads as the override it was.
    op.execute(
        "UPDATE quote_line_items SET list_price = (SELECT p.unit_price FROM products p JOIN quotes q"
        " ON q.id = quote_line_items.quote_id WHERE p.id = quote_line_items.product_id"
        " AND p.currency = q.currency)"
        " WHERE product_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table('quote_line_items', schema=None) as batch_op:
        batch_op.drop_column('list_price')
