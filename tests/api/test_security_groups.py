"""Security groups and rules over HTTP: default group, rule validation, duplicates, visibility,
protection of the default group, in-use, quotas, revisions; names checked against neutron-lib."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_networks import err
from tests.conftest import Api

SG = "/v2.0/security-groups"
RULES = "/v2.0/security-group-rules"


def make_sg(api: Api, **attrs: Any) -> dict[str, Any]:
    r = api.post(SG, json={"security_group": {"name": "web", **attrs}})
    assert r.status_code == 201, r.text
    return r.json()["security_group"]  # type: ignore[no-any-return]


def add_rule(api: Api, sg_id: str, **attrs: Any) -> Any:
    return api.post(RULES, json={"security_group_rule": {"security_group_id": sg_id, "direction": "ingress", **attrs}})


def default_sg(api: Api) -> dict[str, Any]:
    groups = [g for g in api.get(SG).json()["security_groups"] if g["name"] == "default"]
    assert len(groups) == 1
    return groups[0]


def test_default_group_on_first_use_with_four_rules(api: Api) -> None:
    a = api.as_("projA")
    groups = a.get(SG).json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    sg = groups[0]
    assert sg["project_id"] == sg["tenant_id"] == "projA" and sg["stateful"] is True and sg["shared"] is False
    assert sg["description"] == "Default security group" and sg["created_at"].endswith("Z")
    rules = sg["security_group_rules"]
    assert len(rules) == 4
    ingress = [r for r in rules if r["direction"] == "ingress"]
    egress = [r for r in rules if r["direction"] == "egress"]
    assert sorted(r["ethertype"] for r in ingress) == sorted(r["ethertype"] for r in egress) == ["IPv4", "IPv6"]
    assert all(r["remote_group_id"] == sg["id"] for r in ingress)
    assert all(r["remote_group_id"] is None and r["remote_ip_prefix"] is None for r in egress)
    assert all(r["belongs_to_default_sg"] is True and r["protocol"] is None for r in rules)
    # listing again does not create another; the rules list shows the same four
    assert len(a.get(SG).json()["security_groups"]) == 1
    assert sorted(r["id"] for r in a.get(RULES).json()["security_group_rules"]) == sorted(r["id"] for r in rules)
    # a network creates the default group of its project too
    b = api.as_("projB")
    b.create("network")
    assert api.get(SG, params={"project_id": "projB"}).json()["security_groups"][0]["name"] == "default"
    # an admin listing with a project filter creates that project's group
    assert [g["name"] for g in api.get(SG, params={"project_id": "projC"}).json()["security_groups"]] == ["default"]


def test_create_group_has_two_egress_rules(api: Api) -> None:
    a = api.as_("projA")
    sg = make_sg(a, description="d", stateful=False, tags=["t1"])
    assert sg["name"] == "web" and sg["description"] == "d" and sg["stateful"] is False and sg["tags"] == ["t1"]
    rules = sg["security_group_rules"]
    assert sorted((r["direction"], r["ethertype"]) for r in rules) == [("egress", "IPv4"), ("egress", "IPv6")]
    assert all(r["belongs_to_default_sg"] is False and r["tenant_id"] == "projA" for r in rules)
    names = sorted(g["name"] for g in a.get(SG).json()["security_groups"])
    assert names == ["default", "web"]  # the default group was created with it
    got = a.get(f"{SG}/{sg['id']}").json()["security_group"]
    assert got == sg
    assert a.get(SG, params={"name": "web", "fields": "id"}).json()["security_groups"] == [{"id": sg["id"]}]
    assert [g["name"] for g in a.get(SG, params={"stateful": "false"}).json()["security_groups"]] == ["web"]


def test_rule_create_and_normalisation(api: Api) -> None:
    a = api.as_("projA")
    sg = make_sg(a)
    r = add_rule(a, sg["id"], protocol="TCP", port_range_min=22, port_range_max="22", remote_ip_prefix="10.0.0.5/24",
                 description="ssh")
    assert r.status_code == 201, r.text
    rule = r.json()["security_group_rule"]
    assert rule["protocol"] == "tcp" and rule["port_range_min"] == rule["port_range_max"] == 22
    assert rule["remote_ip_prefix"] == "10.0.0.5/24" and rule["normalized_cidr"] == "10.0.0.0/24"
    assert rule["ethertype"] == "IPv4" and rule["description"] == "ssh" and rule["tenant_id"] == "projA"
    assert rule["remote_address_group_id"] is None and rule["belongs_to_default_sg"] is False
    host = add_rule(a, sg["id"], ethertype="ipv6", remote_ip_prefix="2001:db8::1").json()["security_group_rule"]
    assert host["ethertype"] == "IPv6" and host["remote_ip_prefix"] == "2001:db8::1/128"
    icmp6 = add_rule(a, sg["id"], ethertype="IPv6", protocol="icmpv6", port_range_min=128, port_range_max=0)
    assert icmp6.status_code == 201 and icmp6.json()["security_group_rule"]["protocol"] == "ipv6-icmp"
    num = add_rule(a, sg["id"], protocol=132, port_range_min=1, port_range_max=100)
    assert num.status_code == 201 and num.json()["security_group_rule"]["protocol"] == "132"
    anyp = add_rule(a, sg["id"], protocol="any", remote_group_id=sg["id"])
    assert anyp.status_code == 201 and anyp.json()["security_group_rule"]["protocol"] is None
    # the group's revision went up with each rule; its body lists them
    got = a.get(f"{SG}/{sg['id']}").json()["security_group"]
    assert got["revision_number"] == 5 and len(got["security_group_rules"]) == 7
    # filters on rule attributes
    listed = a.get(RULES, params={"security_group_id": sg["id"], "protocol": "tcp"}).json()["security_group_rules"]
    assert [x["id"] for x in listed] == [rule["id"]]
    listed = a.get(RULES, params={"port_range_min": "22", "direction": "ingress"}).json()["security_group_rules"]
    assert [x["id"] for x in listed] == [rule["id"]]
    assert len(a.get(RULES, params={"belongs_to_default_sg": "true"}).json()["security_group_rules"]) == 4


BAD_RULES = [
    ({"direction": "sideways"}, 400, "HTTPBadRequest"),
    ({"direction": None}, 400, "HTTPBadRequest"),
    ({"protocol": "bogus"}, 400, "SecurityGroupRuleInvalidProtocol"),
    ({"protocol": 256}, 400, "SecurityGroupRuleInvalidProtocol"),
    ({"ethertype": "IPv5"}, 400, "SecurityGroupRuleInvalidEtherType"),
    ({"protocol": "tcp", "port_range_min": "x", "port_range_max": 5}, 400, "SecurityGroupInvalidPortValue"),
    ({"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000}, 400, "SecurityGroupInvalidPortValue"),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 5}, 400, "SecurityGroupInvalidPortValue"),
    ({"protocol": "tcp", "port_range_min": 30, "port_range_max": 20}, 400, "SecurityGroupInvalidPortRange"),
    ({"protocol": "udp", "port_range_min": 30}, 400, "SecurityGroupInvalidPortRange"),
    ({"port_range_min": 22, "port_range_max": 22}, 400, "SecurityGroupProtocolRequiredWithPorts"),
    ({"protocol": "gre", "port_range_min": 22, "port_range_max": 22}, 400, "SecurityGroupInvalidProtocolForPort"),
    ({"protocol": "icmp", "port_range_min": 256}, 400, "SecurityGroupInvalidIcmpValue"),
    ({"protocol": "icmp", "port_range_max": 3}, 400, "SecurityGroupMissingIcmpType"),
    ({"protocol": "ipv6-icmp"}, 400, "SecurityGroupEthertypeConflictWithProtocol"),
    ({"remote_ip_prefix": "::/0"}, 400, "SecurityGroupRuleParameterConflict"),
    ({"remote_ip_prefix": "10.0.0.300/24"}, 400, "InvalidCIDR"),
    ({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "SELF"}, 400, "SecurityGroupRemoteGroupAndRemoteIpPrefix"),
    ({"remote_group_id": "SELF", "remote_address_group_id": "ag"}, 400,
     "SecurityGroupRemoteGroupAndRemoteAddressGroup"),
    ({"remote_group_id": "6f2e4bb5-8d8c-4f34-9d43-6b6d9f9e5d7e"}, 404, "SecurityGroupNotFound"),
    ({"unknown": 1}, 400, "HTTPBadRequest"),
]


def test_rule_validation_errors_change_nothing(api: Api) -> None:
    a = api.as_("projA")
    sg = make_sg(a)
    for attrs, status, type_ in BAD_RULES:
        attrs = {k: sg["id"] if v == "SELF" else v for k, v in attrs.items()}
        r = add_rule(a, sg["id"], **attrs)
        assert r.status_code == status, (attrs, r.text)
        assert err(r)["type"] == type_, (attrs, r.text)
    got = a.get(f"{SG}/{sg['id']}").json()["security_group"]
    assert len(got["security_group_rules"]) == 2 and got["revision_number"] == 0
    assert len(a.get(RULES).json()["security_group_rules"]) == 6


def test_rule_required_attributes(api: Api) -> None:
    a = api.as_("projA")
    sg = make_sg(a)
    r = a.post(RULES, json={"security_group_rule": {"security_group_id": sg["id"]}})
    assert r.status_code == 400 and "direction" in err(r)["message"]
    r = a.post(RULES, json={"security_group_rule": {"direction": "egress"}})
    assert r.status_code == 400 and "security_group_id" in err(r)["message"]
    r = a.post(RULES, json={"security_group_rule": {"direction": "egress", "security_group_id": "nope"}})
    assert r.status_code == 404 and err(r) == {"type": "SecurityGroupNotFound", "detail": "",
                                                "message": "Security group nope does not exist"}


def test_duplicate_rules_409(api: Api) -> None:
    a = api.as_("projA")
    sg = make_sg(a)
    first = add_rule(a, sg["id"], protocol="tcp", port_range_min=80, port_range_max=80).json()["security_group_rule"]
    for same in ({"protocol": "6"}, {"protocol": "TCP"}):
        r = add_rule(a, sg["id"], port_range_min=80, port_range_max=80, **same)
        assert r.status_code == 409, r.text
        assert err(r) == {"type": "SecurityGroupRuleExists", "detail": "",
                          "message": f"Security group rule already exists. Rule id is {first['id']}."}
    # 0.0.0.0/0 is the same as no prefix; the default egress rule already allows everything
    r = a.post(RULES, json={"security_group_rule": {"security_group_id": sg["id"], "direction": "egress",
                                                    "remote_ip_prefix": "0.0.0.0/0"}})
    assert r.status_code == 409 and err(r)["type"] == "SecurityGroupRuleExists"
    # the same rule twice in one bulk request
    body = {"security_group_id": sg["id"], "direction": "ingress", "protocol": "udp",
            "port_range_min": 53, "port_range_max": 53}
    r = a.post(RULES, json={"security_group_rules": [body, dict(body)]})
    assert r.status_code == 409 and err(r)["type"] == "DuplicateSecurityGroupRuleInPost"
    assert len(a.get(RULES, params={"security_group_id": sg["id"]}).json()["security_group_rules"]) == 3
    # a bulk request of distinct rules
    r = a.post(RULES, json={"security_group_rules": [body, {**body, "port_range_min": 54, "port_range_max": 54}]})
    assert r.status_code == 201 and len(r.json()["security_group_rules"]) == 2


def test_other_projects_groups_are_404_and_reader_cannot_write(api: Api) -> None:
    a, b = api.as_("projA"), api.as_("projB")
    sg = make_sg(a)
    rule = add_rule(a, sg["id"], protocol="tcp", port_range_min=1, port_range_max=2).json()["security_group_rule"]
    for path in (f"{SG}/{sg['id']}", f"{RULES}/{rule['id']}"):
        r = b.get(path)
        assert r.status_code == 404, path
    assert err(b.get(f"{SG}/{sg['id']}"))["type"] == "SecurityGroupNotFound"
    assert err(b.get(f"{RULES}/{rule['id']}"))["type"] == "SecurityGroupRuleNotFound"
    assert b.put(f"{SG}/{sg['id']}", json={"security_group": {"name": "x"}}).status_code == 404
    assert b.delete(f"{SG}/{sg['id']}").status_code == 404
    assert b.delete(f"{RULES}/{rule['id']}").status_code == 404
    r = add_rule(b, sg["id"])
    assert r.status_code == 404 and err(r)["type"] == "SecurityGroupNotFound"
    own = make_sg(b)
    r = add_rule(b, own["id"], remote_group_id=sg["id"])
    assert r.status_code == 404 and err(r)["type"] == "SecurityGroupNotFound"
    assert sg["id"] not in [g["id"] for g in b.get(SG).json()["security_groups"]]
    assert rule["id"] not in [x["id"] for x in b.get(RULES).json()["security_group_rules"]]
    # a reader of projA sees but may not change
    reader = api.as_("projA", roles="reader")
    assert reader.get(f"{SG}/{sg['id']}").status_code == 200
    r = reader.post(SG, json={"security_group": {"name": "r"}})
    assert r.status_code == 403 and err(r)["type"] == "PolicyNotAuthorized"
    assert add_rule(reader, sg["id"]).status_code == 403
    assert reader.delete(f"{SG}/{sg['id']}").status_code == 403
    # an admin sees and changes everything; a rule the admin adds is visible to the group's owner
    assert api.get(f"{SG}/{sg['id']}").status_code == 200
    admin_rule = add_rule(api, sg["id"], protocol="icmp").json()["security_group_rule"]
    assert admin_rule["project_id"] == "admin"
    assert a.get(f"{RULES}/{admin_rule['id']}").status_code == 200
    assert a.delete(f"{RULES}/{admin_rule['id']}").status_code == 204


def test_update_group_and_default_group_protection(api: Api) -> None:
    a = api.as_("projA")
    sg = make_sg(a)
    r = a.put(f"{SG}/{sg['id']}", json={"security_group": {"name": "web2", "description": "new"}})
    assert r.status_code == 200
    got = r.json()["security_group"]
    assert got["name"] == "web2" and got["description"] == "new" and got["revision_number"] == 1
    r = a.put(f"{SG}/{sg['id']}", json={"security_group": {"name": "Default"}})
    assert r.status_code == 409 and err(r)["type"] == "SecurityGroupDefaultAlreadyExists"
    r = a.post(SG, json={"security_group": {"name": "default"}})
    assert r.status_code == 409 and err(r)["message"] == "Default security group already exists."
    r = a.put(f"{SG}/{sg['id']}", json={"security_group": {"shared": True}})
    assert r.status_code == 400
    r = a.put(f"{SG}/{sg['id']}", json={"security_group": {"security_group_rules": []}})
    assert r.status_code == 400
    default = default_sg(a)
    r = a.put(f"{SG}/{default['id']}", json={"security_group": {"name": "mine"}})
    assert r.status_code == 409 and err(r) == {"type": "SecurityGroupCannotUpdateDefault", "detail": "",
                                                "message": "Updating default security group not allowed."}
    r = a.put(f"{SG}/{default['id']}", json={"security_group": {"description": "ok"}})
    assert r.status_code == 200 and r.json()["security_group"]["description"] == "ok"
    # If-Match on the revision
    r = a.put(f"{SG}/{sg['id']}", json={"security_group": {"description": "x"}},
              headers={"If-Match": "revision_number=0"})
    assert r.status_code == 412
    # the default group: a member may not delete it, an admin may; it comes back on next use
    r = a.delete(f"{SG}/{default['id']}")
    assert r.status_code == 409 and err(r) == {
        "type": "SecurityGroupCannotRemoveDefault", "detail": "",
        "message": "Insufficient rights for removing default security group."}
    assert api.delete(f"{SG}/{default['id']}").status_code == 204
    again = default_sg(a)
    assert again["id"] != default["id"] and len(again["security_group_rules"]) == 4
    # deleting a group removes its rules and rules elsewhere that name it as remote group
    other = make_sg(a, name="other")
    ref = add_rule(a, other["id"], remote_group_id=sg["id"]).json()["security_group_rule"]
    assert a.delete(f"{SG}/{sg['id']}").status_code == 204
    assert a.get(f"{SG}/{sg['id']}").status_code == 404
    assert a.get(f"{RULES}/{ref['id']}").status_code == 404
    assert a.get(RULES, params={"security_group_id": sg["id"]}).json()["security_group_rules"] == []


def test_rule_delete_and_description_update_bump_revision(api: Api) -> None:
    a = api.as_("projA")
    sg = make_sg(a)
    rule = add_rule(a, sg["id"], protocol="tcp", port_range_min=5, port_range_max=6).json()["security_group_rule"]
    r = a.put(f"{RULES}/{rule['id']}", json={"security_group_rule": {"description": "five"}})
    assert r.status_code == 200 and r.json()["security_group_rule"]["description"] == "five"
    r = a.put(f"{RULES}/{rule['id']}", json={"security_group_rule": {"protocol": "udp"}})
    assert r.status_code == 400
    assert a.delete(f"{RULES}/{rule['id']}").status_code == 204
    assert a.delete(f"{RULES}/{rule['id']}").status_code == 404
    assert a.get(f"{SG}/{sg['id']}").json()["security_group"]["revision_number"] == 2


def test_group_in_use_409(api: Api) -> None:
    a = api.as_("projA")
    sg = make_sg(a)
    net = a.create("network")
    port = a.create("port", network_id=net["id"], security_groups=[sg["id"]])
    r = a.delete(f"{SG}/{sg['id']}")
    assert r.status_code == 409
    assert err(r) == {"type": "SecurityGroupInUse", "message": f"Security Group {sg['id']} in use.", "detail": ""}
    r = a.put(f"{SG}/{sg['id']}", json={"security_group": {"stateful": False}})
    assert r.status_code == 409 and err(r)["type"] == "SecurityGroupInUse"
    assert a.get(f"{SG}/{sg['id']}").status_code == 200
    assert a.delete(f"/v2.0/ports/{port['id']}").status_code == 204
    assert a.delete(f"{SG}/{sg['id']}").status_code == 204


def test_quotas_on_groups_and_rules(api: Api) -> None:
    a = api.as_("projA")
    a.get(SG)  # default group: 1 group, 4 rules
    assert api.put("/v2.0/quotas/projA", json={"quota": {"security_group": 2, "security_group_rule": 7}}).status_code \
        == 200
    sg = make_sg(a)  # 2 groups, 6 rules
    r = a.post(SG, json={"security_group": {"name": "third"}})
    assert r.status_code == 409 and err(r)["type"] == "OverQuota"
    assert "security_group" in err(r)["message"]
    assert add_rule(a, sg["id"], protocol="tcp", port_range_min=1, port_range_max=1).status_code == 201
    r = add_rule(a, sg["id"], protocol="tcp", port_range_min=2, port_range_max=2)
    assert r.status_code == 409 and err(r)["type"] == "OverQuota"
    assert len(a.get(SG).json()["security_groups"]) == 2
    assert len(a.get(RULES).json()["security_group_rules"]) == 7


def test_dashed_paths_and_bodies(api: Api) -> None:
    """Clients use /security-groups; bodies use security_groups (openstacksdk's resource keys)."""
    a = api.as_("projA")
    body = a.get(SG).json()
    assert set(body) == {"security_groups"}
    paged = a.get(SG, params={"limit": 1}).json()
    assert len(paged["security_groups"]) == 1
    assert set(a.get(RULES, params={"limit": 1}).json()) == {"security_group_rules", "security_group_rules_links"}
    sg = default_sg(a)
    assert a.put(f"{SG}/{sg['id']}/tags/blue").status_code == 201
    assert a.get(f"{SG}/{sg['id']}/tags").json() == {"tags": ["blue"]}
    assert [g["id"] for g in a.get(SG, params={"tags": "blue"}).json()["security_groups"]] == [sg["id"]]


def test_attribute_names_match_neutron_lib() -> None:
    """Attributes added to security groups/rules by neutron-lib's extension definitions are ours too."""
    pytest.importorskip("neutron_lib")
    from neutron_lib import constants
    from neutron_lib.api.definitions import (
        security_groups_normalized_cidr,
        security_groups_remote_address_group,
        security_groups_rules_belongs_to_default_sg,
        security_groups_shared_filtering,
        stateful_security_group,
    )

    from neutrino.api.definitions.security_groups import SECURITY_GROUP_RULES, SECURITY_GROUPS
    from neutrino.services import security_groups as svc

    for definition in (security_groups_normalized_cidr, security_groups_remote_address_group,
                       security_groups_rules_belongs_to_default_sg, security_groups_shared_filtering,
                       stateful_security_group):
        for collection, attrs in definition.RESOURCE_ATTRIBUTE_MAP.items():
            ours = {"security_groups": SECURITY_GROUPS, "security_group_rules": SECURITY_GROUP_RULES}[collection]
            for name, spec in attrs.items():
                assert name in ours.attrs, (collection, name)
                assert ours.attrs[name].post == spec.get("allow_post", False), (collection, name)
                assert ours.attrs[name].put == spec.get("allow_put", False), (collection, name)
    # the core attributes of the security-group extension (it lives in Neutron itself)
    core_rule = {"id", "security_group_id", "remote_group_id", "direction", "protocol", "port_range_min",
                 "port_range_max", "ethertype", "remote_ip_prefix", "tenant_id", "project_id", "description"}
    assert core_rule <= set(SECURITY_GROUP_RULES.attrs)
    sg_attrs = {"id", "name", "description", "tenant_id", "project_id", "security_group_rules"}
    assert sg_attrs <= set(SECURITY_GROUPS.attrs)
    assert svc.IP_PROTOCOL_MAP == constants.IP_PROTOCOL_MAP
    assert svc.IP_PROTOCOL_NUM_TO_NAME == constants.IP_PROTOCOL_NUM_TO_NAME_MAP
