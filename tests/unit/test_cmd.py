"""The `neutrino` command: db upgrade, config errors that say what to fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

NEUTRINO = str(Path(sys.executable).parent / "neutrino")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NEUTRINO, *args], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    first = run("db", "upgrade", "--state-dir", str(tmp_path))
    assert first.returncode == 0 and "migrated to" in first.stdout, first.stderr
    again = run("db", "upgrade", "--state-dir", str(tmp_path))
    assert again.returncode == 0 and "already at" in again.stdout
    assert (tmp_path / "neutrino.db").exists()


def test_bad_config_says_what_is_wrong(tmp_path: Path) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text("[ml2]\ntype_driver = ['vxlan']\n")
    r = run("--config", str(cfg), "db", "upgrade", "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "unknown option 'type_driver'" in r.stderr
    r = run("--config", str(tmp_path / "missing.toml"), "db", "upgrade")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_server_refuses_an_unreachable_database_clearly(tmp_path: Path) -> None:
    r = subprocess.run([NEUTRINO, "server", "--state-dir", str(tmp_path), "--bind", "127.0.0.1:1",
                        "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"],
                       capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and "database migration or bootstrap failed" in r.stderr
