"""ports.device_owner and ports.device_id compare exactly on MariaDB/MySQL

Their default collation (utf8mb4_general_ci) is case-insensitive: a tenant's port owned by
'Network:DHCP' matched the server's queries for the network's DHCP port. SQLite and
PostgreSQL compare exactly already; nothing changes there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 06:10:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

COLUMNS = ('device_owner', 'device_id')


def upgrade() -> None:
    if op.get_bind().dialect.name != 'mysql':
        return
    for column in COLUMNS:
        op.alter_column('ports', column, existing_type=sa.String(length=255), existing_nullable=False,
                        type_=mysql.VARCHAR(length=255, collation='utf8mb4_bin'))


def downgrade() -> None:
    if op.get_bind().dialect.name != 'mysql':
        return
    for column in COLUMNS:
        op.alter_column('ports', column, existing_type=mysql.VARCHAR(length=255, collation='utf8mb4_bin'),
                        existing_nullable=False, type_=sa.String(length=255))
