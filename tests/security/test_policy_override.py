"""An operator's policy.yaml (``[oslo_policy] policy_file``) overrides Neutron's defaults, in
Neutron's file syntax, and a change to the file applies without a restart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from neutrino import config
from neutrino.policy import Policy, PolicyFileError, engine
from tests.conftest import Api, make_config

NETS = "/v2.0/networks"


def serve(tmp_path: Path, policy_file: Path) -> Iterator[Api]:
    from neutrino import server

    cfg = make_config(tmp_path, DEFAULT={"auth_strategy": "noauth"}, oslo_policy={"policy_file": str(policy_file)})
    srv = server.build(cfg)
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        yield Api(client)
    srv.db.dispose()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text("# no overrides\n")
    return path


@pytest.fixture
def api(tmp_path: Path, policy_file: Path) -> Iterator[Api]:
    yield from serve(tmp_path / "state", policy_file)


def rewrite(path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, (st.st_atime + 10, st.st_mtime + 10))  # a new mtime even within one second
    monkeypatch.setattr(engine, "RELOAD_INTERVAL", 0.0)


def err(r: Any) -> dict[str, Any]:
    return r.json()["NeutronError"]  # type: ignore[no-any-return]


def test_members_may_create_shared_networks_when_the_file_says_so(
        api: Api, policy_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    member = api.as_("A")
    r = member.post(NETS, json={"network": {"shared": True}})
    assert r.status_code == 403
    assert err(r) == {"type": "PolicyNotAuthorized", "detail": "",
                      "message": "(rule:create_network and rule:create_network:shared) is disallowed by policy"}
    rewrite(policy_file, '"create_network:shared": "role:member"\n', monkeypatch)
    r = member.post(NETS, json={"network": {"shared": True}})
    assert r.status_code == 201 and r.json()["network"]["shared"] is True
    # and another project now sees it, through the unchanged rule:shared of get_network
    assert api.as_("B").get(f"{NETS}/{r.json()['network']['id']}").status_code == 200


def test_the_file_can_forbid_create_network_to_members(
        api: Api, policy_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert api.as_("A").post(NETS, json={"network": {}}).status_code == 201
    rewrite(policy_file, 'create_network: "rule:admin_only"\n', monkeypatch)
    r = api.as_("A").post(NETS, json={"network": {}})
    assert r.status_code == 403 and err(r)["message"] == "rule:create_network is disallowed by policy"
    assert api.post(NETS, json={"network": {}}).status_code == 201  # admin


def test_the_file_can_show_admin_only_attributes(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('"get_network:provider:network_type": "role:reader"\n')
    for api in serve(tmp_path / "state", path):
        net = api.create("network", tenant_id="A")
        seen = api.as_("A", roles="reader").get(f"{NETS}/{net['id']}").json()["network"]
        assert seen["provider:network_type"] == net["provider:network_type"]
        assert "provider:physical_network" not in seen  # still admin-only
        # filtering on it is allowed now that the caller may see it
        assert api.as_("A").get(NETS, params={"provider:network_type": "vxlan"}).status_code == 200


def test_a_named_policy_file_must_exist_and_parse(tmp_path: Path) -> None:
    """Both stop the server at start as configuration errors (exit 2, no traceback)."""
    with pytest.raises(config.ConfigError, match="does not exist"):
        Policy(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("create_network: [unclosed\n")
    with pytest.raises(PolicyFileError, match="broken.yaml"):
        Policy(str(broken))


def test_policy_file_is_a_config_option(tmp_path: Path) -> None:
    path = tmp_path / "neutrino.toml"
    path.write_text('[oslo_policy]\npolicy_file = "/etc/neutrino/custom-policy.yaml"\n')
    assert config.load(path, env={}).oslo_policy.policy_file == "/etc/neutrino/custom-policy.yaml"
    env = {"NEUTRINO_OSLO_POLICY__POLICY_FILE": "/x/policy.yaml"}
    assert config.load(None, env=env).oslo_policy.policy_file == "/x/policy.yaml"


def test_context_is_admin_decides_who_is_an_admin(
        api: Api, policy_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neutron derives ``context.is_admin`` from the ``context_is_admin`` rule: overriding it
    makes another role an admin everywhere, naming another project in a body included."""
    ops = api.as_("ops", roles="cloud_admin,reader")
    r = ops.post(NETS, json={"network": {"tenant_id": "A", "shared": True}})
    assert r.status_code == 400 and "not allowed for the current user" in err(r)["message"]
    rewrite(policy_file, 'context_is_admin: "role:admin or role:cloud_admin"\n', monkeypatch)
    r = ops.post(NETS, json={"network": {"tenant_id": "A", "shared": True}})
    assert r.status_code == 201 and r.json()["network"]["project_id"] == "A"
    assert "provider:network_type" in ops.get(f"{NETS}/{r.json()['network']['id']}").json()["network"]


def test_a_file_broken_while_running_keeps_the_rules_in_force(
        api: Api, policy_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rewrite(policy_file, 'create_network: "rule:admin_only"\n', monkeypatch)
    assert api.as_("A").post(NETS, json={"network": {}}).status_code == 403
    rewrite(policy_file, 'create_network: [unclosed\n', monkeypatch)
    assert api.as_("A").post(NETS, json={"network": {}}).status_code == 403  # not a 500, not open
    assert api.get(NETS).status_code == 200
