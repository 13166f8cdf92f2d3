"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from neutrino.db import migrate
from neutrino.db.engine import Database
from neutrino.db.models import Base


def test_migrations_match_models(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/m.db")
    assert migrate.HEAD == migrate.head_revision(), "update migrate.HEAD to the newest revision"
    assert migrate.current_revision(db) is None
    assert migrate.upgrade(db) is True
    assert migrate.current_revision(db) == migrate.HEAD
    assert migrate.upgrade(db) is False  # already at head: nothing runs
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ; regenerate the migration: {diff}"
    db.dispose()
