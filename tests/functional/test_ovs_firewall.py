"""The OVS conntrack firewall (``[agent] l2_driver = openvswitch``) by the same real traffic as
the nftables firewall: the Linux-bridge tests' own functions, run here on an OVS cloud.

Skipped with the reason when Open vSwitch is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.compute import vif
from tests.functional import test_cloud, test_firewall_bypass, test_firewall_revoke, test_firewall_tenants
from tests.functional.cloud import Cloud, cloud
from tests.functional.ovs_lab import why_no_ovs

pytestmark = pytest.mark.skipif(why_no_ovs() is not None, reason=why_no_ovs() or "")


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    # Instances on an OVS host compute their own checksums (dataplane-notes gotcha 1). Compute
    # does so for ports bound with vif_type "ovs"; until the OVS mechanism driver binds them
    # so, every instance here is plugged that way.
    plug = vif.plug
    monkeypatch.setattr(vif, "plug", lambda *args, **kw: plug(*args, **{**kw, "checksum_offload": False}))
    with cloud(tmp_path, ns_prefix, l2_driver="openvswitch") as built:
        yield built


test_security_groups_through_the_api = test_cloud.test_security_groups_through_the_api
test_a_revoked_rule_cuts_the_connection_it_admitted = \
    test_firewall_revoke.test_a_revoked_rule_cuts_the_connection_it_admitted
test_a_unicast_packet_in_a_broadcast_frame_meets_the_receivers_ingress_rules = \
    test_firewall_bypass.test_a_unicast_packet_in_a_broadcast_frame_meets_the_receivers_ingress_rules
test_a_stateless_group_passes_a_reply_only_where_a_rule_allows_it = \
    test_firewall_tenants.test_a_stateless_group_passes_a_reply_only_where_a_rule_allows_it
