"""The dnsmasq files and argv rendered for a small network, line by line."""

from __future__ import annotations

from typing import Any

from neutrino.agent.dhcp import render

NET = {"id": "net-1", "mtu": 1450}
S1 = {"id": "sub-a", "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.0.1", "enable_dhcp": True,
      "dns_nameservers": [], "host_routes": [{"destination": "172.16.0.0/16", "nexthop": "10.0.0.254"}],
      "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.254"}]}
S2 = {"id": "sub-b", "cidr": "10.1.0.0/26", "ip_version": 4, "gateway_ip": None, "enable_dhcp": True,
      "dns_nameservers": ["198.51.100.53"], "host_routes": [], "allocation_pools": []}
S_OFF = {"id": "sub-off", "cidr": "10.2.0.0/24", "ip_version": 4, "gateway_ip": "10.2.0.1", "enable_dhcp": False,
         "dns_nameservers": [], "host_routes": [], "allocation_pools": []}
S_V6 = {"id": "sub-6", "cidr": "2001:db8::/64", "ip_version": 6, "gateway_ip": "2001:db8::1", "enable_dhcp": True,
        "dns_nameservers": [], "host_routes": [], "allocation_pools": []}
SUBNETS = [S1, S2, S_OFF, S_V6]
DHCP_PORT: dict[str, Any] = {"id": "p-dhcp", "mac_address": "fa:16:3e:00:00:02", "device_owner": "network:dhcp",
                             "fixed_ips": [{"subnet_id": "sub-a", "ip_address": "10.0.0.2"},
                                           {"subnet_id": "sub-b", "ip_address": "10.1.0.2"}]}
VM1: dict[str, Any] = {"id": "p-vm1", "mac_address": "fa:16:3e:00:00:05", "device_owner": "compute:nova",
                       "fixed_ips": [{"subnet_id": "sub-a", "ip_address": "10.0.0.5"},
                                     {"subnet_id": "sub-off", "ip_address": "10.2.0.5"},
                                     {"subnet_id": "sub-6", "ip_address": "2001:db8::5"}],
                       "dns_assignment": [{"hostname": "web1", "ip_address": "10.0.0.5",
                                           "fqdn": "web1.openstacklocal."}],
                       "extra_dhcp_opts": [{"opt_name": "tftp-server", "opt_value": "10.0.0.9", "ip_version": 4},
                                           {"opt_name": "66", "opt_value": "boot.example", "ip_version": 4},
                                           {"opt_name": "bootfile-name", "opt_value": "x", "ip_version": 6}]}
VM2: dict[str, Any] = {"id": "p-vm2", "mac_address": "fa:16:3e:00:00:06", "device_owner": "compute:nova",
                       "fixed_ips": [{"subnet_id": "sub-b", "ip_address": "10.1.0.7"}], "extra_dhcp_opts": []}
PORTS = [DHCP_PORT, VM1, VM2]


def test_hosts_file_has_one_line_per_served_address() -> None:
    assert render.render_hosts(PORTS, SUBNETS).splitlines() == [
        "fa:16:3e:00:00:02,host-10-0-0-2.openstacklocal,10.0.0.2",
        "fa:16:3e:00:00:02,host-10-1-0-2.openstacklocal,10.1.0.2",
        "fa:16:3e:00:00:05,set:port-p-vm1,web1.openstacklocal,10.0.0.5",
        "fa:16:3e:00:00:06,host-10-1-0-7.openstacklocal,10.1.0.7",
    ]


def test_addn_hosts_names_every_address() -> None:
    assert render.render_addn_hosts(PORTS, SUBNETS).splitlines() == [
        "10.0.0.2\thost-10-0-0-2.openstacklocal host-10-0-0-2",
        "10.1.0.2\thost-10-1-0-2.openstacklocal host-10-1-0-2",
        "10.0.0.5\tweb1.openstacklocal web1",
        "10.1.0.7\thost-10-1-0-7.openstacklocal host-10-1-0-7",
    ]


def test_opts_file_per_subnet_and_per_port() -> None:
    assert render.render_opts(NET, SUBNETS, PORTS, DHCP_PORT).splitlines() == [
        "tag:subnet-sub-a,option:router,10.0.0.1",
        "tag:subnet-sub-a,option:dns-server,10.0.0.2",
        "tag:subnet-sub-a,option:classless-static-route,172.16.0.0/16,10.0.0.254,10.1.0.0/26,0.0.0.0,"
        "0.0.0.0/0,10.0.0.1",
        "tag:subnet-sub-a,249,172.16.0.0/16,10.0.0.254,10.1.0.0/26,0.0.0.0,0.0.0.0/0,10.0.0.1",
        "tag:subnet-sub-a,option:mtu,1450",
        "tag:subnet-sub-b,option:router",
        "tag:subnet-sub-b,option:dns-server,198.51.100.53",
        "tag:subnet-sub-b,option:classless-static-route,10.0.0.0/24,0.0.0.0",
        "tag:subnet-sub-b,249,10.0.0.0/24,0.0.0.0",
        "tag:subnet-sub-b,option:mtu,1450",
        "tag:port-p-vm1,option:tftp-server,10.0.0.9",
        "tag:port-p-vm1,66,boot.example",
    ]


def test_a_host_route_to_default_replaces_the_gateway_route() -> None:
    subnet = {**S1, "host_routes": [{"destination": "0.0.0.0/0", "nexthop": "10.0.0.254"}]}
    opts = render.render_opts({"id": "n", "mtu": None}, [subnet], [], DHCP_PORT).splitlines()
    assert "tag:subnet-sub-a,option:classless-static-route,0.0.0.0/0,10.0.0.254" in opts
    assert not any("option:mtu" in line for line in opts)


def test_args_serve_static_leases_on_the_dhcp_subnets_only() -> None:
    paths = render.Paths(pidfile="/s/pid", hosts="/s/host", addn_hosts="/s/addn_hosts", opts="/s/opts")
    assert render.render_args(paths, "ns-p-dhcp", SUBNETS, user="root") == [
        "dnsmasq", "--no-hosts", "--no-resolv", "--strict-order", "--except-interface=lo", "--conf-file=/dev/null",
        "--pid-file=/s/pid", "--dhcp-hostsfile=/s/host", "--addn-hosts=/s/addn_hosts", "--dhcp-optsfile=/s/opts",
        "--leasefile-ro", "--dhcp-authoritative", "--bind-interfaces", "--interface=ns-p-dhcp",
        "--dhcp-range=set:subnet-sub-a,10.0.0.0,static,255.255.255.0,86400s",
        "--dhcp-range=set:subnet-sub-b,10.1.0.0,static,255.255.255.192,86400s",
        "--domain=openstacklocal", "--user=root",
    ]


def test_host_pairs_read_back_what_render_hosts_writes() -> None:
    from neutrino.agent.dhcp.dnsmasq import _host_pairs

    text = "fa:16:3e:00:00:01,host-10-0-0-5.openstacklocal,10.0.0.5\n" \
           "fa:16:3e:00:00:02,set:port-x,host-10-0-0-6.openstacklocal,10.0.0.6\n\n"
    assert _host_pairs(text) == {("fa:16:3e:00:00:01", "10.0.0.5"), ("fa:16:3e:00:00:02", "10.0.0.6")}
    assert _host_pairs("") == set()
