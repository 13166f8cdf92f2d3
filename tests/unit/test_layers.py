"""The layering contracts cover the whole package, and the agent frame names no driver's devices."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import neutrino

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(neutrino.__file__).parent
LEAVES = {"kernel", "files", "tokens", "naming"}  # what the kernel may use: itself and dependency-free helpers


def _contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["name"]: c for c in config["contracts"]}


def _top_level() -> set[str]:
    return {p.stem for p in PACKAGE.iterdir() if (p.suffix == ".py" and p.stem != "__init__") or
            (p.is_dir() and (p / "__init__.py").exists())}


def test_the_kernel_contract_forbids_every_module_above_it() -> None:
    """A new top-level module is above the kernel unless listed as a leaf here: the contract must name it."""
    contract = next(c for name, c in _contracts().items() if "kernel layer" in name)
    forbidden = {str(m).removeprefix("neutrino.") for m in contract["forbidden_modules"]}
    assert _top_level() - LEAVES <= forbidden, sorted(_top_level() - LEAVES - forbidden)


def test_the_agent_frame_and_its_services_name_no_bridge() -> None:
    """DHCP, L3, metadata, the host loop and the firewall's host state attach through the L2
    driver: none of them names the Linux bridge's devices (``brq``, ``bridge_name``)."""
    frame = [PACKAGE / "agent" / "host.py", PACKAGE / "agent" / "l2" / "nft_host.py",
             *(PACKAGE / "agent" / "dhcp").glob("*.py"), *(PACKAGE / "agent" / "l3").glob("*.py"),
             *(PACKAGE / "agent" / "metadata").glob("*.py")]
    offenders = [str(p.relative_to(PACKAGE)) for p in frame if re.search(r"\bbridge_name\b|\bbrq", p.read_text())]
    assert offenders == []


def test_the_api_reaches_the_database_with_no_exception() -> None:
    """Every request's transaction is opened by the services (``UnitOfWork``): the API's
    contract lists no import of ``neutrino.db`` to tolerate, and must not start again."""
    contract = next(c for name, c in _contracts().items() if name.startswith("The API reaches the database"))
    assert contract["forbidden_modules"] == ["neutrino.db"]
    assert not contract.get("ignore_imports")
