"""cross-chain deliveries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_pk', sa.Integer(), nullable=False),
    sa.Column('src_chain_id', sa.BigInteger(), nullable=False),
    sa.Column('src_oracle', sa.String(length=42), nullable=False),
    sa.Column('request_id', sa.BigInteger(), nullable=False),
    sa.Column('dst_chain_id', sa.BigInteger(), nullable=False),
    sa.Column('consumer', sa.String(length=42), nullable=False),
    sa.Column('gas_limit', sa.BigInteger(), nullable=False),
    sa.Column('inbox', sa.String(length=42), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.Float(), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.Float(), nullable=False),
    sa.Column('tx_pk', sa.Integer(), nullable=True),
    sa.Column('tx_hash', sa.String(length=66), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('gas_used', sa.BigInteger(), nullable=True),
    sa.Column('callback_succeeded', sa.Boolean(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_pk'], ['requests.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tx_pk'], ['relayer_txs.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_pk', name='uq_delivery_request')
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_state', ['state', 'dst_chain_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_state')
    op.drop_table('deliveries')
