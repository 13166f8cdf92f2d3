"""free_ranges, free_pools: runs of free addresses and segmentation ids

Allocation takes the first free value of a run rather than reading every value in use. The
runs of existing subnets and network types are built when they first allocate after this.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 15:20:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _exact(length: int) -> sa.types.TypeEngine:
    return sa.String(length=length).with_variant(mysql.VARCHAR(length=length, collation='utf8mb4_bin'),
                                                 'mysql', 'mariadb')


def upgrade() -> None:
    op.create_table('free_pools',
    sa.Column('pool', _exact(128), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('pool', name=op.f('pk_free_pools'))
    )
    op.create_table('free_ranges',
    sa.Column('pool', _exact(128), nullable=False),
    sa.Column('first', _exact(32), nullable=False),
    sa.Column('last', _exact(32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('pool', 'first', name=op.f('pk_free_ranges'))
    )
    with op.batch_alter_table('free_ranges', schema=None) as batch_op:
        batch_op.create_index('ix_free_ranges_pool_last', ['pool', 'last'], unique=False)
        batch_op.create_index('ix_free_ranges_pool_position_first', ['pool', 'position', 'first'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('free_ranges', schema=None) as batch_op:
        batch_op.drop_index('ix_free_ranges_pool_position_first')
        batch_op.drop_index('ix_free_ranges_pool_last')
    op.drop_table('free_ranges')
    op.drop_table('free_pools')
