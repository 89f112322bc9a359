"""indexes for the reports: requests by fulfilment transaction, transactions by hash, and the
newest requests, proofs and transactions by time

Without them, joining fulfilled requests to their transactions (the catalog's gas figures,
``/metrics``' gas histogram) and finding a transaction by hash (request pages) scanned whole
tables, once per row on SQLite: a scrape took 2.3 s at 3,000 requests. The dashboard reads the
newest rows of a time window (``ORDER BY created_at DESC LIMIT n``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 01:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index('ix_requests_fulfil_tx', ['fulfil_tx', 'chain_id'], unique=False)
        batch_op.create_index('ix_requests_created_at', ['created_at'], unique=False)
    with op.batch_alter_table('relayer_txs', schema=None) as batch_op:
        batch_op.create_index('ix_relayer_txs_hash', ['tx_hash', 'chain_id'], unique=False)
        batch_op.create_index('ix_relayer_txs_sent_at', ['sent_at'], unique=False)
    with op.batch_alter_table('proofs', schema=None) as batch_op:
        batch_op.create_index('ix_proofs_created_at', ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('proofs', schema=None) as batch_op:
        batch_op.drop_index('ix_proofs_created_at')
    with op.batch_alter_table('relayer_txs', schema=None) as batch_op:
        batch_op.drop_index('ix_relayer_txs_sent_at')
        batch_op.drop_index('ix_relayer_txs_hash')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_created_at')
        batch_op.drop_index('ix_requests_fulfil_tx')
