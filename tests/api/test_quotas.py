"""Quota management over HTTP (Neutron's quotasv2): show/set/details/default/delete, policy,
validation, check_limit, and enforcement (OverQuota) on create."""

from __future__ import annotations

from tests.api.test_networks import err
from tests.conftest import Api

RESOURCES = {"network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule"}
DEFAULTS = {"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
            "security_group": 10, "security_group_rule": 100}


def test_show_default_and_set(api: Api) -> None:
    r = api.get("/v2.0/quotas/projA")
    assert r.status_code == 200 and r.json() == {"quota": DEFAULTS}
    assert api.get("/v2.0/quotas/projA/default").json() == {"quota": DEFAULTS}
    assert api.get("/v2.0/quotas").json() == {"quotas": []}
    # what `openstack quota set --networks 5 --ports 7 projA` sends (openstacksdk adds check_limit)
    r = api.put("/v2.0/quotas/projA", json={"quota": {"network": 5, "port": "7", "check_limit": True}})
    assert r.status_code == 200, r.text
    assert r.json() == {"quota": {**DEFAULTS, "network": 5, "port": 7}}
    assert api.get("/v2.0/quotas/projA").json()["quota"]["network"] == 5
    assert api.get("/v2.0/quotas/projA/default").json()["quota"]["network"] == 100
    listed = api.get("/v2.0/quotas").json()["quotas"]
    assert listed == [{**DEFAULTS, "network": 5, "port": 7, "project_id": "projA", "tenant_id": "projA"}]
    # -1 is unlimited; a second PUT changes only what it names
    assert api.put("/v2.0/quotas/projA", json={"quota": {"router": -1}}).json()["quota"] == {
        **DEFAULTS, "network": 5, "port": 7, "router": -1}
    # DELETE: back to the defaults; a second one finds nothing to delete
    assert api.delete("/v2.0/quotas/projA").status_code == 204
    assert api.get("/v2.0/quotas/projA").json() == {"quota": DEFAULTS}
    r = api.delete("/v2.0/quotas/projA")
    assert r.status_code == 404 and err(r)["type"] == "ProjectQuotaNotFound"
    assert api.get("/v2.0/quotas").json() == {"quotas": []}


def test_details_counts_usage(api: Api) -> None:
    a = api.as_("projA")
    net = a.create("network")
    a.create("subnet", network_id=net["id"], ip_version=4, cidr="10.0.0.0/24")
    r = a.get("/v2.0/quotas/projA/details")
    assert r.status_code == 200
    quota = r.json()["quota"]
    assert set(quota) == RESOURCES
    assert quota["network"] == {"limit": 100, "used": 1, "reserved": 0}
    assert quota["subnet"] == {"limit": 100, "used": 1, "reserved": 0}
    assert quota["security_group"] == {"limit": 10, "used": 1, "reserved": 0}  # the default group
    assert quota["security_group_rule"]["used"] == 4
    assert quota["router"] == {"limit": 10, "used": 0, "reserved": 0}


def test_over_quota_409(api: Api) -> None:
    a = api.as_("projA")
    assert api.put("/v2.0/quotas/projA", json={"quota": {"network": 2}}).status_code == 200
    a.create("network")
    a.create("network")
    r = a.post("/v2.0/networks", json={"network": {}})
    assert r.status_code == 409
    assert err(r)["type"] == "OverQuota" and "network" in err(r)["message"]
    assert len(a.get("/v2.0/networks").json()["networks"]) == 2
    # another project is not affected; an unlimited quota lifts the limit
    api.as_("projB").create("network")
    api.put("/v2.0/quotas/projA", json={"quota": {"network": -1}})
    a.create("network")
    # check_limit (the default, as openstackclient sends it): not below current usage
    r = api.put("/v2.0/quotas/projA", json={"quota": {"network": 1}})
    assert r.status_code == 400 and err(r)["type"] == "BadRequest", r.text
    r = api.put("/v2.0/quotas/projA", json={"quota": {"network": 1, "check_limit": True}})
    assert r.status_code == 400
    r = api.put("/v2.0/quotas/projA", json={"quota": {"network": 1, "force": True}})
    assert r.status_code == 200 and r.json()["quota"]["network"] == 1
    assert api.put("/v2.0/quotas/projA", json={"quota": {"network": 1, "check_limit": False}}).status_code == 200


def test_a_new_group_counts_its_default_rules_against_the_rule_quota(api: Api) -> None:
    """Neutron checks the security_group_rule quota for the egress rules a new group comes with
    (securitygroups_db ``quota_limit_check``): at the limit, creating a group is 409 OverQuota
    naming ``security_group_rule``, and no group is left behind."""
    a = api.as_("projR")
    groups = a.get("/v2.0/security-groups").json()["security_groups"]  # makes default (4 rules)
    used = sum(len(g["security_group_rules"]) for g in groups)
    assert api.put("/v2.0/quotas/projR", json={"quota": {"security_group_rule": used + 3}}).status_code == 200
    a.create("security_group", name="fits")  # 2 egress rules: used + 2 <= used + 3
    r = a.post("/v2.0/security-groups", json={"security_group": {"name": "over"}})
    assert r.status_code == 409, r.text
    assert err(r)["type"] == "OverQuota" and "security_group_rule" in err(r)["message"]
    assert [g["name"] for g in a.get("/v2.0/security-groups").json()["security_groups"]
            if g["name"] == "over"] == []


def test_policy(api: Api) -> None:
    a = api.as_("projA")
    assert a.get("/v2.0/quotas/projA").status_code == 200
    assert api.as_("projA", roles="reader").get("/v2.0/quotas/projA/details").status_code == 200
    for path in ("/v2.0/quotas/projB", "/v2.0/quotas/projB/details", "/v2.0/quotas/projB/default"):
        r = a.get(path)
        assert r.status_code == 403, path
        assert err(r)["type"] == "PolicyNotAuthorized"
    r = a.put("/v2.0/quotas/projA", json={"quota": {"network": 500}})
    assert r.status_code == 403 and err(r)["type"] == "PolicyNotAuthorized"
    assert a.delete("/v2.0/quotas/projA").status_code == 403
    # a member may not list quotas (Neutron's index asks get_quota); a manager lists its own only
    api.put("/v2.0/quotas/projA", json={"quota": {"network": 3}})
    api.put("/v2.0/quotas/projB", json={"quota": {"network": 4}})
    r = a.get("/v2.0/quotas")
    assert r.status_code == 403 and err(r)["type"] == "PolicyNotAuthorized"
    manager = api.as_("projA", roles="manager,member,reader")
    assert [q["project_id"] for q in manager.get("/v2.0/quotas").json()["quotas"]] == ["projA"]
    assert sorted(q["project_id"] for q in api.get("/v2.0/quotas").json()["quotas"]) == ["projA", "projB"]
    assert a.get("/v2.0/quotas/tenant").json() == {"tenant": {"tenant_id": "projA"}}
    assert a.get("/v2.0/quotas/project").json() == {"project": {"project_id": "projA"}}
    r = api.post("/v2.0/quotas", json={"quota": {"network": 1}})
    assert r.status_code == 501 and err(r)["type"] == "HTTPNotImplemented"


def test_validation(api: Api) -> None:
    cases = [
        ({"quota": {"bogus": 1}}, "Unrecognized attribute(s) 'bogus'"),
        ({"quota": {"network": -2}}, "Invalid input for network. Reason: '-2' is too small - must be at least '-1'."),
        ({"quota": {"network": 2**31}}, None),
        ({"quota": {"network": "ten"}}, "Invalid input for operation: 'ten' is not an integer."),
        ({"quota": {"network": 1, "check_limit": "maybe"}}, None),
        ({"quota": []}, None),
        ({"network": 1}, "Unable to find 'quota' in request body"),
    ]
    for body, message in cases:
        r = api.put("/v2.0/quotas/projA", json=body)
        assert r.status_code == 400, (body, r.text)
        if message:
            assert err(r)["message"] == message
    assert api.get("/v2.0/quotas/projA").json() == {"quota": DEFAULTS}
    assert api.get("/v2.0/quotas").json() == {"quotas": []}
