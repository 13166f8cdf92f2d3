"""The DHCP agent: per-network qdhcp namespaces with dnsmasq serving static leases."""
