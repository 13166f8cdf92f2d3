"""write_guards: rows that PostgreSQL writers bump where an invariant rests on a read

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 02:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('write_guards',
    sa.Column('key', sa.String(length=200).with_variant(mysql.VARCHAR(length=200, collation='utf8mb4_bin'),
                                                        'mysql', 'mariadb'), nullable=False),
    sa.Column('bumps', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_write_guards'))
    )


def downgrade() -> None:
    op.drop_table('write_guards')
