"""An instance's resolv.conf: the DHCP hook writes one line per well-formed value and nothing else.

Issue 7 section 2 (resolv.conf): udhcpc hands the hook whatever the DHCP server on the wire
sent (busybox checks little); the hook is the renderer and must keep each value to its own
line: ``search <domain>`` only for a DNS name, ``nameserver <address>`` only per dotted quad.
Run with a fake ip(8) first on PATH, as tests/unit/test_compute.py does: nothing touches the host.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from neutrino import tokens
from tests.security.render_support import PROPERTY, hostile
from tests.unit.test_compute import BOUND, Hook


def _env_safe(value: str) -> str:
    return value.replace("\x00", "")  # the one character an environment variable cannot hold


@PROPERTY
@given(domain=hostile("openstacklocal", "example.org"),
       dns=st.lists(st.one_of(st.sampled_from(["10.20.0.2", "198.51.100.53"]), hostile("10.20.0.3")), max_size=3))
def test_resolv_conf_holds_one_line_per_well_formed_value(domain: str, dns: list[str]) -> None:
    domain, words = _env_safe(domain), [_env_safe(d) for d in dns]
    with tempfile.TemporaryDirectory(prefix="nt-render-") as tmp:
        hook = Hook(Path(tmp))
        hook.run("bound", {**BOUND, "domain": domain, "dns": " ".join(words)})
        lines = hook.resolv.read_text().split("\n")
    assert lines.pop() == ""
    split = re.split("[ \t\n]+", " ".join(words))  # as the shell splits $dns (IFS), not as str.split()
    wanted = [f"nameserver {ip}" for word in split if word and (ip := tokens.ipv4(word)) == word]
    search = [f"search {domain}"] if tokens.fqdn(domain) == domain else []
    assert lines == search + wanted
