"""several instances on one database: row versions, lease owner in the state history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Optimistic concurrency (SQLAlchemy version_id_col); existing rows start at 1.
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('state_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('state_changes', schema=None) as batch_op:
        batch_op.drop_column('lease_owner')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('version')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('version')
