"""Instance metadata (the Nova/Neutron 169.254.169.254 service) without TCP in the root namespace.

Two halves, as in Neutron: an haproxy per router (or network) namespace (``proxy``) that
receives the instances' requests, strips anything they could forge and stamps the router or
network ID plus the caller's address on them; and one HTTP server (``server``) on a unix
socket in the agent's namespace that answers from those headers alone. A unix socket needs
no address in the root namespace, where 127.0.0.1:9697 is already taken on these machines.

The constants live here, free of kernel imports, so pure renderers (``l3.nat``) can use them.
"""

from __future__ import annotations

METADATA_IP = "169.254.169.254"  # link-local, the address every cloud image asks
PROXY_PORT = 9697  # Neutron's port for the proxy inside router/DHCP namespaces
