"""L3 agent: qrouter- namespaces with qr-/qg- interfaces, routes, and SNAT/floating-IP NAT rendered for nftables."""
