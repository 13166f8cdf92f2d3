"""The real `openstack` CLI against `neutrino server`, through the generated clouds.yaml."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.server_process import BIN, RunningServer


def osc(running: RunningServer, cloud: str, *args: str, ok: bool = True, env: dict[str, str] | None = None) -> Any:
    cmd = [str(BIN / "openstack"), *(["--os-cloud", cloud] if cloud else []), *args]
    wants_json = args and args[-1] != "--" and any(a in ("list", "show", "create", "issue") for a in args[:4])
    if wants_json:
        cmd += ["-f", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env or running.env(), timeout=120)
    if ok:
        assert r.returncode == 0, f"{' '.join(args)}\n{r.stdout}\n{r.stderr}"
    else:
        assert r.returncode != 0, f"{' '.join(args)} unexpectedly worked: {r.stdout}"
        return r.stderr
    return json.loads(r.stdout) if wants_json and r.stdout.strip() else r.stdout


def test_clouds_yaml_works_with_nothing_else(running: RunningServer) -> None:
    assert osc(running, "demo", "network", "list") == []
    token = osc(running, "demo", "token", "issue")
    assert token["project_id"] and token["user_id"]


def test_network_subnet_port_lifecycle(running: RunningServer) -> None:
    net = osc(running, "demo", "network", "create", "--description", "d", "--tag", "blue", "cli-net")
    assert net["name"] == "cli-net" and net["mtu"] == 1450 and net["tags"] == ["blue"]
    sub = osc(running, "demo", "subnet", "create", "--network", "cli-net", "--subnet-range", "10.10.0.0/24",
              "--dns-nameserver", "10.10.0.53", "--allocation-pool", "start=10.10.0.10,end=10.10.0.100",
              "cli-sub")
    assert sub["cidr"] == "10.10.0.0/24" and sub["gateway_ip"] == "10.10.0.1"
    port = osc(running, "demo", "port", "create", "--network", "cli-net", "--fixed-ip",
               "subnet=cli-sub,ip-address=10.10.0.20", "cli-port")
    assert port["fixed_ips"][0]["ip_address"] == "10.10.0.20"
    osc(running, "demo", "port", "set", "--name", "cli-port2", "--description", "x", "cli-port")
    shown = osc(running, "demo", "port", "show", "cli-port2")
    assert shown["description"] == "x" and shown["status"] == "DOWN"
    listed = osc(running, "demo", "port", "list", "--network", "cli-net", "--long")
    assert [p["Name"] for p in listed] == ["cli-port2"]
    osc(running, "demo", "network", "set", "--name", "cli-net2", "--tag", "red", "cli-net")
    osc(running, "demo", "network", "unset", "--tag", "blue", "cli-net2")
    assert osc(running, "demo", "network", "show", "cli-net2")["tags"] == ["red"]
    osc(running, "demo", "subnet", "set", "--dns-nameserver", "10.10.0.54", "cli-sub")
    osc(running, "demo", "subnet", "unset", "--dns-nameserver", "10.10.0.53", "cli-sub")
    assert osc(running, "demo", "subnet", "show", "cli-sub")["dns_nameservers"] == ["10.10.0.54"]
    err = osc(running, "demo", "network", "delete", "cli-net2", ok=False)
    assert "409" in err or "in use" in err.lower()
    osc(running, "demo", "port", "delete", "cli-port2")
    osc(running, "demo", "subnet", "delete", "cli-sub")
    osc(running, "demo", "network", "delete", "cli-net2")
    assert osc(running, "demo", "network", "list") == []


def test_router_external_gateway_and_floating_ip(running: RunningServer) -> None:
    served = osc(running, "admin", "extension", "list", "--network")
    assert "router" in {e["Alias"] for e in served}
    osc(running, "admin", "network", "create", "--external", "public")
    osc(running, "admin", "subnet", "create", "--network", "public", "--subnet-range", "203.0.113.0/24",
        "--no-dhcp", "public-sub")
    osc(running, "demo", "network", "create", "rnet")
    osc(running, "demo", "subnet", "create", "--network", "rnet", "--subnet-range", "10.20.0.0/24", "rsub")
    osc(running, "demo", "router", "create", "r1")
    osc(running, "demo", "router", "add", "subnet", "r1", "rsub")
    osc(running, "demo", "router", "set", "--external-gateway", "public", "r1")
    router = osc(running, "demo", "router", "show", "r1")
    assert router["external_gateway_info"]["network_id"]
    port = osc(running, "demo", "port", "create", "--network", "rnet", "vm")
    fip = osc(running, "demo", "floating", "ip", "create", "public")
    assert fip["floating_ip_address"].startswith("203.0.113.")
    osc(running, "demo", "floating", "ip", "set", "--port", port["id"], fip["floating_ip_address"])
    shown = osc(running, "demo", "floating", "ip", "show", fip["floating_ip_address"])
    assert shown["port_id"] == port["id"] and shown["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    osc(running, "demo", "floating", "ip", "unset", "--port", fip["floating_ip_address"])
    assert osc(running, "demo", "floating", "ip", "show", fip["floating_ip_address"])["port_id"] is None
    osc(running, "demo", "floating", "ip", "delete", fip["floating_ip_address"])
    osc(running, "demo", "router", "unset", "--external-gateway", "r1")
    osc(running, "demo", "router", "remove", "subnet", "r1", "rsub")
    osc(running, "demo", "router", "delete", "r1")


def test_security_groups_and_rules(running: RunningServer) -> None:
    groups = osc(running, "demo", "security", "group", "list")
    assert "default" in [g["Name"] for g in groups]
    sg = osc(running, "demo", "security", "group", "create", "--description", "web", "web")
    rule = osc(running, "demo", "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
               "--remote-ip", "10.0.0.0/8", "web")
    assert rule["port_range_min"] == 22 and rule["remote_ip_prefix"] == "10.0.0.0/8"
    rules = osc(running, "demo", "security", "group", "rule", "list", "web")
    assert rule["id"] in [r["ID"] for r in rules]
    osc(running, "demo", "security", "group", "set", "--name", "web2", sg["id"])
    osc(running, "demo", "security", "group", "rule", "delete", rule["id"])
    osc(running, "demo", "security", "group", "delete", "web2")


def test_quota_and_identity_admin(running: RunningServer) -> None:
    osc(running, "admin", "project", "create", "cli-lab")
    osc(running, "admin", "user", "create", "--project", "cli-lab", "--password", "pw-alice", "alice")
    osc(running, "admin", "role", "add", "--project", "cli-lab", "--user", "alice", "member")
    osc(running, "admin", "quota", "set", "--networks", "1", "cli-lab")
    quota = osc(running, "admin", "quota", "show", "--network", "cli-lab")
    flat = json.dumps(quota)
    assert "network" in flat
    env = running.env(OS_AUTH_URL=f"{running.url}/identity/v3", OS_USERNAME="alice", OS_PASSWORD="pw-alice",
                      OS_PROJECT_NAME="cli-lab", OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default",
                      OS_IDENTITY_API_VERSION="3")
    env.pop("OS_CLIENT_CONFIG_FILE")
    net = osc(running, "", "network", "create", "alice-net", env=env)
    assert net["name"] == "alice-net"
    err = osc(running, "", "network", "create", "alice-net2", ok=False, env=env)
    assert "quota" in err.lower()
    groups = osc(running, "", "security", "group", "list", env=env)
    assert [g["Name"] for g in groups] == ["default"]
