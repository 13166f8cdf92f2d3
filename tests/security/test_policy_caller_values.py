"""An operator's policy file may ask what Neutron's context tells oslo.policy about the caller
(``to_policy_values``): ``is_admin``, ``tenant_id``, ``user``... not only roles, project and
user ids. A rule naming one the engine did not pass was silently false for everyone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Api
from tests.security.test_policy_override import serve


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    path = tmp_path / "policy.yaml"
    path.write_text('"create_network": "is_admin:True"\n'
                    '"create_security_group": "tenant_id:%(project_id)s and user:u-1"\n')
    yield from serve(tmp_path / "state", path)


def test_a_file_may_ask_is_admin_and_neutrons_other_caller_values(api: Api) -> None:
    assert api.post("/v2.0/networks", json={"network": {"name": "n"}}).status_code == 201
    r = api.as_("A").post("/v2.0/networks", json={"network": {"name": "n"}})
    assert r.status_code == 403 and r.json()["NeutronError"]["type"] == "PolicyNotAuthorized"
    # the caller's ``tenant_id`` and ``user`` (Neutron's legacy names)
    body = {"security_group": {"name": "g"}}
    mine = api.as_("A")
    assert mine.post("/v2.0/security-groups", json=body, headers={"X-User-Id": "u-1"}).status_code == 201
    assert mine.post("/v2.0/security-groups", json=body, headers={"X-User-Id": "u-2"}).status_code == 403


@pytest.fixture
def octavia(tmp_path: Path) -> Iterator[Api]:
    """neutron-lib's ``context_can_set_project_id`` given to a service role (as a load-balancer
    service needs, to make ports for its users' projects)."""
    path = tmp_path / "policy.yaml"
    path.write_text('"context_can_set_project_id": "role:service"\n')
    yield from serve(tmp_path / "state", path)


def test_context_can_set_project_id_names_who_may_create_for_another_project(octavia: Api) -> None:
    net = octavia.create("network", tenant_id="A")
    octavia.create("subnet", tenant_id="A", network_id=net["id"], cidr="10.1.0.0/24", ip_version=4)
    body = {"port": {"network_id": net["id"], "tenant_id": "A"}}
    r = octavia.as_("lb", roles="service").post("/v2.0/ports", json=body)
    assert r.status_code == 201 and r.json()["port"]["project_id"] == "A", r.text
    r = octavia.as_("B").post("/v2.0/networks", json={"network": {"tenant_id": "A"}})
    assert r.status_code == 400
    assert r.json()["NeutronError"]["message"] == ("Specifying 'project_id' other than the authenticated project "
                                                   "in request is not allowed for the current user.")
