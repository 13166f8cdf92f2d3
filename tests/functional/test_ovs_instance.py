"""kernel/ovs.py on the real thing: one OVS instance per namespace, OVSDB through ovsdbapp, flows by bundle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from neutrino.kernel import links, netns, ovs
from tests.functional.ovs_lab import instances, requires_ovs, run_dirs

pytestmark = requires_ovs

FLOWS = ("cookie=0x1,table=0,priority=1,in_port=1,actions=goto_table:60\n"
         "cookie=0x1,table=60,priority=1,actions=NORMAL\n")
LEARNED = 0x2


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_instance_lifecycle_ovsdb_and_flows(ns_prefix: str) -> None:
    one, two = ns_prefix + "h1", ns_prefix + "h2"
    for ns in (one, two):
        netns.ensure_namespace(ns)
    with run_dirs() as base, instances(ovs.OvsInstance(one, f"{base}/h1"),
                                       ovs.OvsInstance(two, f"{base}/h2")) as (a, b):
        assert a.start() and b.start()
        pids = (a.pid("ovsdb-server"), a.pid("ovs-vswitchd"))
        assert all(pids) and a.start() is False  # reused, not started twice
        assert (a.pid("ovsdb-server"), a.pid("ovs-vswitchd")) == pids
        assert netns.get_sysctl(one, "net.ipv6.conf.all.disable_ipv6") == "1"
        assert netns.get_sysctl(one, "net.ipv6.conf.default.disable_ipv6") == "1"
        assert set(os.listdir(f"{base}/h1")) >= {"conf.db", "db.sock", "ovs-vswitchd.pid", "ovsdb-server.pid"}

        # bridges: idempotent, and each instance is its own (ovsdbapp keeps connections per class)
        assert a.ensure_bridge("br-int", other_config={"mac-table-size": "2048"})
        assert not a.ensure_bridge("br-int", other_config={"mac-table-size": "2048"})
        assert b.ensure_bridge("br-tun")
        assert a.list_bridges() == ["br-int"] and b.list_bridges() == ["br-tun"]
        info = a.bridge("br-int")
        assert info is not None and (info.datapath_type, info.fail_mode) == ("netdev", "secure")
        assert info.other_config["mac-table-size"] == "2048"

        # ports: several in one transaction, read back with ofports; changes only where they differ
        links.ensure_veth(one, "tapa", one, "tapb")
        assert links.disable_tx_checksum(one, "tapa") and not links.disable_tx_checksum(one, "tapa")
        specs = [ovs.instance_port("tapa", 5, "port-a", "FA:16:3E:00:00:0A"),
                 ovs.patch_port("patch-tun", "patch-int"),
                 ovs.tunnel_port("vxlan-0a000002", "vxlan", "10.0.0.2", "10.0.0.1")]
        assert a.ensure_ports("br-int", specs) and not a.ensure_ports("br-int", specs)
        ports = {p.name: p for p in a.ports("br-int")}
        assert ports["tapa"].tag == 5 and ports["tapa"].ofport
        assert ports["tapa"].external_ids == {"iface-id": "port-a", "attached-mac": "fa:16:3e:00:00:0a",
                                              "iface-status": "active"}
        assert ports["patch-tun"].options == {"peer": "patch-int"}
        assert ports["vxlan-0a000002"].options == {"remote_ip": "10.0.0.2", "local_ip": "10.0.0.1", "key": "flow"}
        assert set(a.ofports("br-int")) >= {"tapa", "patch-tun", "vxlan-0a000002"}
        assert a.ensure_ports("br-int", [ovs.PortSpec("tapa", tag=7, external_ids={"iface-id": "port-a"})])
        tapa = next(p for p in a.ports("br-int") if p.name == "tapa")
        assert (tapa.tag, tapa.external_ids) == (7, {"iface-id": "port-a"})
        assert a.ensure_ports("br-int", [ovs.PortSpec("tapa")])
        assert next(p for p in a.ports("br-int") if p.name == "tapa").tag is None
        assert a.delete_ports("br-int", ["vxlan-0a000002", "nonexistent"])
        assert not a.delete_ports("br-int", ["vxlan-0a000002"])
        assert {p.name for p in a.ports("br-int")} == {"br-int", "tapa", "patch-tun"}

        # flows: one bundle; converged means untouched; switch-learned cookies can be ignored
        assert a.replace_flows("br-int", FLOWS) and not a.replace_flows("br-int", FLOWS)
        assert a.dump_flows("br-int") == ["cookie=0x1, priority=1,in_port=1 actions=goto_table:60",
                                          "cookie=0x1, table=60, priority=1 actions=NORMAL"]
        learned = FLOWS + "cookie=0x2,table=20,priority=1,dl_dst=fa:16:3e:00:00:01,actions=drop\n"
        assert a.replace_flows("br-int", learned)
        assert not a.replace_flows("br-int", FLOWS, keep_cookies=[LEARNED])
        assert len(a.dump_flows("br-int")) == 3
        assert a.replace_flows("br-int", FLOWS) and len(a.dump_flows("br-int")) == 2
        assert a.dump_flows("br-int", "table=60") == ["cookie=0x1, table=60, priority=1 actions=NORMAL"]

        # vswitchd alone restarts: ovsdb-server and the rows stay, the flows are gone
        a.restart_vswitchd()
        assert a.pid("ovsdb-server") == pids[0] and a.pid("ovs-vswitchd") not in (None, pids[1])
        assert not alive(pids[1])
        assert a.dump_flows("br-int") == [] and a.list_bridges() == ["br-int"]
        assert "Open vSwitch" in a.appctl("version")

        # stop: by its own PIDs, both daemons gone; a restart finds the same database
        running = [a.pid("ovsdb-server"), a.pid("ovs-vswitchd")]
        assert a.stop() and not a.stop()
        assert not any(alive(p) for p in running if p)
        assert b.is_running()
        assert a.start() and a.list_bridges() == ["br-int"]


def test_flood_settings_of_many_ports_in_one_openflow_session(ns_prefix: str) -> None:
    """set_floods changes many ports at once (kernel.openflow: PORT_MODs and a barrier on one
    connection); ovs-ofctl, reading on its own, sees exactly what no_flood reads."""
    import re
    import subprocess

    import pytest

    from neutrino.kernel import KernelError

    ns = ns_prefix + "fl"
    netns.ensure_namespace(ns)
    with run_dirs() as base, instances(ovs.OvsInstance(ns, f"{base}/fl")) as (sw,):
        sw.start()
        sw.ensure_bridge("br-int")
        sw.ensure_ports("br-int", [ovs.internal_port(f"p{i}") for i in range(12)])
        ofports = sorted(n for name, n in sw.ofports("br-int").items() if name != "br-int")  # not LOCAL
        assert len(ofports) == 12 and sw.no_flood("br-int") == set()

        def shown() -> set[int]:  # ovs-ofctl's own view, as an operator would look
            out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow10", "show", sw.mgmt("br-int")], capture_output=True,
                                 text=True, check=True).stdout
            found, port = set(), None
            for line in out.splitlines():
                head = re.match(r"^ (\d+)\(", line)
                port = int(head.group(1)) if head else port
                if not head and port is not None and "config:" in line and "NO_FLOOD" in line:
                    found.add(port)
            return found

        off = set(ofports[::2])
        sw.set_floods("br-int", dict.fromkeys(off, False))
        assert sw.no_flood("br-int") == shown() == off
        sw.set_floods("br-int", {ofports[0]: True, ofports[1]: False})
        assert sw.no_flood("br-int") == shown() == (off - {ofports[0]}) | {ofports[1]}
        sw.set_flood("br-int", ofports[1], True)
        assert shown() == off - {ofports[0]}
        with pytest.raises(KernelError, match="no port 999"):
            sw.set_floods("br-int", {999: False})
        with pytest.raises(ValueError):
            sw.set_floods("br-int", {0: False})
        sw.set_floods("br-int", {})  # nothing to do: no connection at all
        assert shown() == off - {ofports[0]}


def test_an_ovs_tool_that_times_out_says_so(ns_prefix: str) -> None:
    """A switch too slow to answer is TimedOut, not a refusal (the driver then does not go
    looking for a guilty port's flows one by one); flow tables get time by their size."""
    import socket

    import pytest

    from neutrino.kernel import TimedOut

    ns = ns_prefix + "to"
    netns.ensure_namespace(ns)
    with run_dirs() as base:
        sw = ovs.OvsInstance(ns, base, timeout=1)
        with socket.socket(socket.AF_UNIX) as hung:  # accepts, never answers: a switch busy elsewhere
            hung.bind(sw.mgmt("br-int")[len("unix:"):])
            hung.listen(1)
            with pytest.raises(TimedOut, match="signal 14"):
                sw.dump_flows("br-int")
            with pytest.raises(TimedOut, match="no answer"):
                sw.no_flood("br-int")


def test_a_snapshot_reads_ports_once_until_its_own_write(ns_prefix: str) -> None:
    """Inside snapshot() the ports are read once (an agent pass asks a dozen times) and again
    after a write through the same object; outside it every read is fresh."""
    import subprocess
    import time

    from tests.functional.cloud import wait_for

    ns = ns_prefix + "sn"
    netns.ensure_namespace(ns)
    with run_dirs() as base, instances(ovs.OvsInstance(ns, f"{base}/sn")) as (sw,):
        sw.start()
        sw.ensure_bridge("br-int")
        sw.ensure_ports("br-int", [ovs.internal_port("p1", tag=5)])

        def tag() -> int | None:
            return next(p.tag for p in sw.ports("br-int") if p.name == "p1")

        def behind_our_back(value: int) -> None:
            subprocess.run(["ovs-vsctl", f"--db={sw.db_url}", "set", "Port", "p1", f"tag={value}"], check=True)
            other = ovs.OvsInstance(ns, f"{base}/sn")  # another client: once it sees it, so has ours
            try:
                assert wait_for(lambda: next(p.tag for p in other.ports("br-int") if p.name == "p1") == value)
                time.sleep(0.2)
            finally:
                other.close()

        with sw.snapshot():
            assert tag() == 5
            behind_our_back(6)
            assert tag() == 5  # the pass's own view
            sw.ensure_ports("br-int", [ovs.internal_port("p2")])  # a write of ours: read again
            assert tag() == 6 and "p2" in sw.ofports("br-int")
        behind_our_back(7)
        assert tag() == 7


def test_a_flow_change_sends_only_the_lines_that_changed(ns_prefix: str) -> None:
    """After the first replace, a change is the difference alone (``add``/``delete_strict`` in one
    bundle), checked against what the switch then has; a restarted ovs-vswitchd (another
    PID, no flows) and ``forget_flows`` make the next call ask the switch again."""
    ns = f"{ns_prefix}node"
    netns.ensure_namespace(ns)
    with run_dirs() as run, instances(ovs.OvsInstance(ns, f"{run}/h1")) as (a,):
        a.start()
        a.ensure_bridge("br-int", "netdev")
        calls: list[tuple[str, ...]] = []
        real = a._ofctl

        def spy(what: str, bridge: str, *args: str, **kw: Any) -> str:
            calls.append(args)
            return real(what, bridge, *args, **kw)
        a._ofctl = spy  # type: ignore[method-assign]
        a.forget_flows()  # a full pass just after the bridge was made: its table is still known empty
        base = [f"cookie=0x1,table=60,priority=10,dl_vlan={v},actions=NORMAL" for v in range(1, 40)]
        assert a.replace_flows("br-int", "".join(f"{f}\n" for f in base))
        assert [c[1] for c in calls] == ["add-flows"]  # "delete" and the adds in one bundle, no diff-flows
        assert Path(calls[0][-1]).read_text().startswith("delete\n") and len(a.dump_flows("br-int")) == 39
        calls.clear()
        changed = [*base[1:], "cookie=0x1,table=60,priority=10,dl_vlan=2,actions=drop",
                   "cookie=0x1,table=60,priority=10,dl_vlan=99,actions=NORMAL"]
        changed.remove("cookie=0x1,table=60,priority=10,dl_vlan=2,actions=NORMAL")
        assert a.replace_flows("br-int", "".join(f"{f}\n" for f in changed))
        assert [c[1] for c in calls] == ["add-flows"]  # no diff-flows, no replace-flows of 40 lines
        sent = Path(calls[0][-1]).read_text().splitlines()
        assert sorted(sent) == ["add cookie=0x1,table=60,priority=10,dl_vlan=2,actions=drop",
                                "add cookie=0x1,table=60,priority=10,dl_vlan=99,actions=NORMAL",
                                "delete_strict table=60,priority=10,dl_vlan=1"]
        have = a.dump_flows("br-int")
        assert len(have) == 39 and not any("dl_vlan=1 " in f for f in have)
        assert any("dl_vlan=2 actions=drop" in f for f in have)
        calls.clear()
        assert not a.replace_flows("br-int", "".join(f"{f}\n" for f in changed)) and calls == []
        a.forget_flows()
        assert not a.replace_flows("br-int", "".join(f"{f}\n" for f in changed))
        assert [c[0] for c in calls] == ["diff-flows"]
        a.restart_vswitchd()
        assert a.replace_flows("br-int", "".join(f"{f}\n" for f in changed)) and len(a.dump_flows("br-int")) == 39
