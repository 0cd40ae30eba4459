"""queue order indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:50:00

Written by hand: autogenerate cannot compare indexes with a DESC column on SQLite.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.drop_index('ix_report_queue')
        batch_op.drop_index('ix_report_merged_into_id')
    op.create_index('ix_report_queue', 'report', ['status', sa.text('priority_score DESC'), 'created_at'])
    op.create_index('ix_report_priority_order', 'report', [sa.text('priority_score DESC'), 'created_at'])
    op.create_index('ix_report_merged_into_id', 'report', ['merged_into_id'],
                    sqlite_where=sa.text('merged_into_id IS NOT NULL'),
                    postgresql_where=sa.text('merged_into_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_report_merged_into_id', table_name='report')
    op.drop_index('ix_report_priority_order', table_name='report')
    op.drop_index('ix_report_queue', table_name='report')
    op.create_index('ix_report_queue', 'report', ['status', 'priority_score', 'created_at'])
    op.create_index('ix_report_merged_into_id', 'report', ['merged_into_id'])
