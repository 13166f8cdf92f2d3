"""The metadata socket is for our haproxy alone (issue 7 §6, second reading).

haproxy connects to the agent's unix socket after it became nobody/nogroup, so the socket is
open to that group; dnsmasq runs as the same nobody/nogroup (as in Neutron), and so may any
other daemon of the machine. Whoever can connect can write the X-Neutron-Router-ID and
X-Forwarded-For headers the server trusts, and so read any instance's metadata. The server
now takes a connection only from root or from a haproxy that root started from a root-owned
config (its pidfile names that very process).
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess

from tests.functional.test_metadata import INSTANCES, ROUTER, Lab, instance_id, lab  # noqa: F401 - the fixture

# Connect to argv[1] and ask for an instance's id with the headers only our haproxy may set.
FORGE = """import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(("GET /latest/meta-data/instance-id HTTP/1.0\\r\\nX-Neutron-Router-ID: %s\\r\\n"
           "X-Forwarded-For: %s\\r\\n\\r\\n" % (sys.argv[2], sys.argv[3])).encode())
data = b""
try:
    while chunk := s.recv(4096):
        data += chunk
except OSError:
    pass
sys.stdout.write(data.decode(errors="replace"))
"""


def as_nobody() -> None:
    os.setgroups([])
    os.setgid(grp.getgrnam("nogroup").gr_gid)
    os.setuid(pwd.getpwnam("nobody").pw_uid)


def test_a_nobody_process_that_is_not_our_haproxy_cannot_use_the_metadata_socket(lab: Lab) -> None:  # noqa: F811
    md = lab.proxy()
    try:
        assert md.apply() == "started"
        assert lab.fetch("vm1") == (200, instance_id("vm1")), "our haproxy (nobody) still gets in"
        address = INSTANCES["vm2"][2]
        done = subprocess.run(["/usr/bin/python3", "-S", "-c", FORGE, lab.socket_path, ROUTER, address],
                              capture_output=True, text=True, timeout=20, preexec_fn=as_nobody)
        assert instance_id("vm2") not in done.stdout, "a nobody process read another instance's metadata"
        assert lab.fetch("vm2") == (200, instance_id("vm2"))
    finally:
        md.teardown()
