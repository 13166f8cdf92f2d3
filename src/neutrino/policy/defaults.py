"""Neutron's default policy rules, as data: rule name -> check string in policy-file syntax.

Copied from Neutron's ``neutron/conf/policies/*.py`` (the new, role-based defaults that Neutron
enforces since 2023.2: ``admin``, project ``member``/``reader``, ``manager``, ``service``), for
the resources neutrino serves, plus ``update_security_group_rule`` (see there). The names are
Neutron's, so an operator's ``policy.yaml`` written for Neutron overrides the same rules here.
Rules Neutron keeps only for extensions neutrino does not serve (trunks, QoS, RBAC, ...) are
left out; an override may still name them.
"""

from __future__ import annotations

RULES: dict[str, str] = {
    # --- neutron/conf/policies/base.py
    "context_is_admin": "role:admin",
    "context_with_global_access": "!",
    # neutron_lib/policy/_engine.py: who may name another project in a request body ("!": only
    # admins, whom the code lets through before asking)
    "context_can_set_project_id": "!",
    "service_api": "role:service",
    "owner": "project_id:%(project_id)s",
    "admin_or_owner": "rule:context_is_admin or rule:owner",
    "context_is_advsvc": "role:advsvc",
    "admin_or_network_owner": "rule:context_is_admin or project_id:%(network:project_id)s",
    "admin_owner_or_network_owner": "rule:owner or rule:admin_or_network_owner",
    "network_owner": "project_id:%(network:project_id)s",
    "admin_only": "rule:context_is_admin",
    "regular_user": "",
    "shared": "field:networks:shared=True",
    "default": "rule:admin_or_owner",
    "admin_or_ext_parent_owner": "rule:context_is_admin or project_id:%(ext_parent:project_id)s",
    "ext_parent_owner": "project_id:%(ext_parent:project_id)s",
    "sg_owner": "project_id:%(security_group:project_id)s",
    # --- neutron/conf/policies/network.py
    "external": "field:networks:router:external=True",
    "create_network": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "create_network:shared": "rule:admin_only",
    "create_network:router:external": "rule:admin_only",
    "create_network:is_default": "rule:admin_only",
    "create_network:port_security_enabled": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "create_network:segments": "rule:admin_only",
    "create_network:provider:network_type": "rule:admin_only",
    "create_network:provider:physical_network": "rule:admin_only",
    "create_network:provider:segmentation_id": "rule:admin_only",
    "create_network:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "get_network": (
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or "
        "rule:service_api or rule:shared or rule:external or rule:context_is_advsvc"
    ),
    "get_network:segments": "rule:admin_only",
    "get_network:provider:network_type": "rule:admin_only",
    "get_network:provider:physical_network": "rule:admin_only",
    "get_network:provider:segmentation_id": "rule:admin_only",
    "get_network:tags": (
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:shared"
        " or rule:external or rule:context_is_advsvc"
    ),
    "update_network": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "update_network:segments": "rule:admin_only",
    "update_network:shared": "rule:admin_only",
    "update_network:provider:network_type": "rule:admin_only",
    "update_network:provider:physical_network": "rule:admin_only",
    "update_network:provider:segmentation_id": "rule:admin_only",
    "update_network:router:external": "rule:admin_only",
    "update_network:is_default": "rule:admin_only",
    "update_network:port_security_enabled": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "update_network:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "delete_network": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "delete_network:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    # --- neutron/conf/policies/subnet.py
    "external_network": "field:subnets:router:external=True",
    "create_subnet": "(rule:admin_only) or (role:member and rule:network_owner)",
    "create_subnet:segment_id": "rule:admin_only",
    "create_subnet:service_types": "rule:admin_only",
    "create_subnet:tags": (
        "role:member and project_id:%(project_id)s or (rule:admin_only) or "
        "(role:member and rule:network_owner)"
    ),
    "get_subnet": (
        "role:reader and project_id:%(project_id)s or rule:shared or "
        "rule:external_network or (rule:admin_only) or "
        "(role:reader and rule:network_owner) or rule:service_api"
    ),
    "get_subnet:segment_id": "rule:admin_only",
    "get_subnet:tags": (
        "role:reader and project_id:%(project_id)s or rule:shared or "
        "rule:external_network or (rule:admin_only) or "
        "(role:reader and rule:network_owner)"
    ),
    "update_subnet": (
        "role:member and project_id:%(project_id)s or (rule:admin_only) or "
        "(role:member and rule:network_owner)"
    ),
    "update_subnet:segment_id": "rule:admin_only",
    "update_subnet:service_types": "rule:admin_only",
    "update_subnet:tags": (
        "role:member and project_id:%(project_id)s or (rule:admin_only) or "
        "(role:member and rule:network_owner)"
    ),
    "delete_subnet": (
        "role:member and project_id:%(project_id)s or (rule:admin_only) or "
        "(role:member and rule:network_owner)"
    ),
    "delete_subnet:tags": (
        "role:member and project_id:%(project_id)s or (rule:admin_only) or "
        "(role:member and rule:network_owner)"
    ),
    # --- neutron/conf/policies/port.py
    "network_device": "field:port:device_owner=~^network:",
    "admin_or_data_plane_int": "rule:context_is_admin or role:data_plane_integrator",
    # Neutron master (change 6ffe5056af, 2026) folded the removed OwnershipValidationHook into
    # this rule as "... or rule:shared", without a role: any token of any project, a reader or
    # one with no role at all, could then create ports on a shared network. Neutron 2024.1 to
    # 2025.2 asked role:member (ADMIN_OR_PROJECT_MEMBER) and the hook asked network owner or
    # shared; this is that answer in master's form (a member on a shared network).
    "create_port": (
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner"
        " or role:member and rule:shared"
    ),
    "create_port:device_id": "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:service_api",
    "create_port:device_owner": (
        "not rule:network_device or (rule:admin_only) or (rule:service_api) or "
        "role:member and rule:network_owner"
    ),
    "create_port:mac_address": "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
    "create_port:fixed_ips": (
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner"
        " or rule:shared"
    ),
    "create_port:fixed_ips:ip_address": "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
    "create_port:fixed_ips:subnet_id": (
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner"
        " or rule:shared"
    ),
    "create_port:port_security_enabled": (
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner"
    ),
    "create_port:binding:host_id": "(rule:admin_only) or (rule:service_api)",
    "create_port:binding:profile": "rule:service_api",
    "create_port:binding:vnic_type": (
        "(rule:admin_only) or (role:member and project_id:%(project_id)s) or "
        "rule:service_api"
    ),
    "create_port:allowed_address_pairs": (
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api"
    ),
    "create_port:allowed_address_pairs:mac_address": (
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api"
    ),
    "create_port:allowed_address_pairs:ip_address": (
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api"
    ),
    "create_port:hints": "rule:admin_only",
    "create_port:trusted": "rule:admin_only",
    "create_port:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:context_is_advsvc",
    "get_port": (
        "(rule:admin_only) or (rule:service_api) or role:reader and rule:network_owner"
        " or role:reader and project_id:%(project_id)s"
    ),
    "get_port:binding:vif_type": "(rule:admin_only) or (rule:service_api)",
    "get_port:binding:vif_details": "(rule:admin_only) or (rule:service_api)",
    "get_port:binding:host_id": "(rule:admin_only) or (rule:service_api)",
    "get_port:binding:profile": "(rule:admin_only) or (rule:service_api)",
    "get_port:resource_request": "rule:admin_only",
    "get_port:hints": "rule:admin_only",
    "get_port:trusted": "rule:admin_only",
    "get_port:tags": (
        "rule:context_is_advsvc or (rule:admin_only) or "
        "(role:reader and rule:network_owner) or "
        "role:reader and project_id:%(project_id)s"
    ),
    "update_port": "(rule:admin_only) or (rule:service_api) or role:member and project_id:%(project_id)s",
    "update_port:device_id": "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:service_api",
    "update_port:device_owner": (
        "not rule:network_device or (rule:admin_only) or (rule:service_api) or "
        "role:member and rule:network_owner"
    ),
    "update_port:mac_address": "(rule:admin_only) or (rule:service_api) or role:manager and rule:network_owner",
    "update_port:fixed_ips": "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
    "update_port:fixed_ips:ip_address": "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
    "update_port:fixed_ips:subnet_id": (
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner"
        " or rule:shared"
    ),
    "update_port:port_security_enabled": (
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner"
    ),
    "update_port:binding:host_id": "(rule:admin_only) or (rule:service_api)",
    "update_port:binding:profile": "rule:service_api",
    "update_port:binding:vnic_type": (
        "(rule:admin_only) or (rule:service_api) or "
        "role:member and project_id:%(project_id)s"
    ),
    "update_port:allowed_address_pairs": (
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api"
    ),
    "update_port:allowed_address_pairs:mac_address": (
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api"
    ),
    "update_port:allowed_address_pairs:ip_address": (
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api"
    ),
    "update_port:data_plane_status": "rule:admin_only or role:data_plane_integrator",
    "update_port:hints": "rule:admin_only",
    "update_port:trusted": "rule:admin_only",
    "update_port:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:context_is_advsvc",
    "delete_port": (
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner"
        " or role:member and project_id:%(project_id)s"
    ),
    "delete_port:tags": (
        "rule:context_is_advsvc or role:member and project_id:%(project_id)s or "
        "(rule:admin_only) or (role:member and rule:network_owner)"
    ),
    # --- neutron/conf/policies/router.py
    "create_router": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "create_router:distributed": "rule:admin_only",
    "create_router:ha": "rule:admin_only",
    "create_router:external_gateway_info": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "create_router:external_gateway_info:network_id": (
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)"
    ),
    "create_router:external_gateway_info:enable_snat": "rule:admin_only",
    "create_router:external_gateway_info:external_fixed_ips": "rule:admin_only",
    "create_router:enable_default_route_bfd": "rule:admin_only",
    "create_router:enable_default_route_ecmp": "rule:admin_only",
    "create_router:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "get_router": "(rule:admin_only) or (role:reader and project_id:%(project_id)s)",
    "get_router:distributed": "rule:admin_only",
    "get_router:ha": "rule:admin_only",
    "get_router:tags": "(rule:admin_only) or (role:reader and project_id:%(project_id)s)",
    "update_router": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "update_router:distributed": "rule:admin_only",
    "update_router:ha": "rule:admin_only",
    "update_router:external_gateway_info": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "update_router:external_gateway_info:network_id": (
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)"
    ),
    "update_router:external_gateway_info:enable_snat": "rule:admin_only",
    "update_router:external_gateway_info:external_fixed_ips": "rule:admin_only",
    "update_router:enable_default_route_bfd": "rule:admin_only",
    "update_router:enable_default_route_ecmp": "rule:admin_only",
    "update_router:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "delete_router": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "delete_router:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "add_router_interface": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "remove_router_interface": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "add_extraroutes": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "remove_extraroutes": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "add_external_gateways": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "add_external_gateways:external_gateways": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "add_external_gateways:external_gateways:network_id": (
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)"
    ),
    "add_external_gateways:external_gateways:enable_snat": "rule:admin_only",
    "add_external_gateways:external_gateways:external_fixed_ips": "rule:admin_only",
    "update_external_gateways": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "update_external_gateways:external_gateways": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "update_external_gateways:external_gateways:network_id": (
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)"
    ),
    "update_external_gateways:external_gateways:enable_snat": "rule:admin_only",
    "update_external_gateways:external_gateways:external_fixed_ips": "rule:admin_only",
    "remove_external_gateways": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "remove_external_gateways:external_gateways": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    # --- neutron/conf/policies/floatingip.py
    "create_floatingip": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "create_floatingip:floating_ip_address": "(rule:admin_only) or (role:manager and project_id:%(project_id)s)",
    "create_floatingip:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "get_floatingip": "(rule:admin_only) or (role:reader and project_id:%(project_id)s)",
    "get_floatingip:tags": "(rule:admin_only) or (role:reader and project_id:%(project_id)s)",
    "update_floatingip": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "update_floatingip:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "delete_floatingip": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "delete_floatingip:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    # --- neutron/conf/policies/security_group.py
    "admin_or_sg_owner": "rule:context_is_admin or project_id:%(security_group:project_id)s",
    "admin_owner_or_sg_owner": "rule:owner or rule:admin_or_sg_owner",
    "shared_security_group": "field:security_groups:shared=True",
    "rule_default_sg": "field:security_group_rules:belongs_to_default_sg=True",
    "create_security_group": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "create_security_group:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "get_security_group": (
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or "
        "rule:shared_security_group"
    ),
    "get_security_group:tags": (
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or "
        "rule:shared_security_group"
    ),
    "update_security_group": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "update_security_group:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "delete_security_group": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "delete_security_group:tags": "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
    "create_security_group_rule": "(rule:admin_only) or (role:member and rule:sg_owner)",
    "get_security_group_rule": "(rule:admin_only) or (role:reader and rule:sg_owner)",
    "delete_security_group_rule": "(rule:admin_only) or (role:member and rule:sg_owner)",
    # Not one of Neutron's rules: Neutron's plugin has no update_security_group_rule (a PUT never
    # writes there), so its policy leaves the action to "default" (admin_or_owner, which asks no
    # role). neutrino lets a rule's description change, so the action gets the rule its siblings
    # have: a project reader passing "default" would otherwise write (readers never write).
    "update_security_group_rule": "(rule:admin_only) or (role:member and rule:sg_owner)",
    # --- neutron/conf/policies/quotas.py
    "get_quota": "(rule:admin_only) or (role:manager and project_id:%(project_id)s)",
    "update_quota": "rule:admin_only",
    "delete_quota": "rule:admin_only",
    # --- neutron/conf/policies/agent.py
    "create_agent": "rule:admin_only",
    "get_agent": "rule:admin_only",
    "update_agent": "rule:admin_only",
    "delete_agent": "rule:admin_only",
    "create_dhcp-network": "rule:admin_only",
    "get_dhcp-networks": "rule:admin_only",
    "delete_dhcp-network": "rule:admin_only",
    "create_l3-router": "rule:admin_only",
    "get_l3-routers": "rule:admin_only",
    "update_l3-router": "rule:admin_only",
    "delete_l3-router": "rule:admin_only",
    "get_dhcp-agents": "rule:admin_only",
    "get_l3-agents": "rule:admin_only",
    # --- neutron/conf/policies/availability_zone.py
    "get_availability_zone": "role:reader",
    # --- neutron/conf/policies/network_ip_availability.py
    "get_network_ip_availability": "(rule:admin_only) or (rule:service_api)",
}
