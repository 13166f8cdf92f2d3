"""segmentation ids as BIGINT: a GRE key is 32 bits unsigned (up to 4294967295)

A signed 32-bit INTEGER on PostgreSQL and MySQL refused GRE ids above 2147483647, which Neutron
accepts; SQLite's INTEGER already held them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 01:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

COLUMNS = (('network_segments', True), ('segment_allocations', False))  # (table, nullable)


def upgrade() -> None:
    for table, nullable in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('segmentation_id', existing_type=sa.Integer(), type_=sa.BigInteger(),
                                  existing_nullable=nullable)


def downgrade() -> None:
    for table, nullable in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('segmentation_id', existing_type=sa.BigInteger(), type_=sa.Integer(),
                                  existing_nullable=nullable)
