"""Schema migrations: ``upgrade`` brings any database to head, and is cheap when it is there.

Alembic is imported only when a migration has to run: importing it costs ~0.4 s and ~10 MB,
a third of the server's cold start, to learn what one SELECT on alembic_version says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from neutrino.db.engine import Database

SCRIPTS = Path(__file__).parent / "migrations"
HEAD = "0005"  # the newest revision in migrations/versions; a unit test keeps them in step


def _alembic_config() -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(SCRIPTS))
    return cfg


def current_revision(db: Database) -> str | None:
    try:
        with db.engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no alembic_version table yet: an empty database
        return None


def head_revision() -> str | None:
    """Alembic's own idea of head (imports alembic; for tests and the db command)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def upgrade(db: Database) -> bool:
    """Migrate to head; returns True when something ran."""
    if current_revision(db) == HEAD:
        return False
    from alembic import command

    cfg = _alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return True

