"""Declarative base and the standard attributes every Neutron resource row carries."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, MetaData, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def exact_string(length: int) -> Any:
    """A string column compared byte for byte on every database.

    MariaDB/MySQL's default collation (utf8mb4_general_ci) compares case-insensitively and
    ignores trailing spaces: there ``device_owner = 'network:dhcp'`` also finds a tenant's port
    owned by 'Network:DHCP' (which the policy lets a tenant set), and the server took it for
    the network's DHCP port. SQLite and PostgreSQL compare exactly; this makes MariaDB agree.
    """
    return String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> dt.datetime:
    """Whole seconds, as Neutron reports timestamps (``2026-01-01T00:00:00Z``)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class StandardAttrs(Base):
    """id, project, name/description, timestamps, revision and tags (standard-attr-*)."""

    __abstract__ = True

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
