"""Keystone v3 JSON shapes: version documents, entities, the catalog and token bodies.

Clients (keystoneauth, openstacksdk, the CLI) parse these field by field, so they follow
Keystone's output exactly, including the keys that are always null here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from neutrino.config import Config
from neutrino.db.models.identity import Project, Role, User
from neutrino.identity.tokens import TokenInfo

Json = dict[str, Any]

VERSION_ID = "v3.14"
VERSION_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"
DOMAIN_REF = {"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME}
INTERFACES = ("public", "internal", "admin")


def isotime(value: dt.datetime) -> str:
    """Keystone's token timestamps: microseconds and a ``Z`` (``2026-11-21T10:00:00.000000Z``)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Views:
    """Renders rows with links under the advertised identity URL (``<public>/identity/v3``)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.root = f"{cfg.public_url}/identity"
        self.v3 = f"{self.root}/v3"

    def link(self, path: str) -> Json:
        return {"self": f"{self.v3}/{path}"}

    def collection(self, key: str, items: list[Json], path: str, query: str = "") -> Json:
        url = f"{self.v3}/{path}" + (f"?{query}" if query else "")
        return {key: items, "links": {"self": url, "previous": None, "next": None}}

    def version(self) -> Json:
        return {
            "id": VERSION_ID,
            "status": "stable",
            "updated": VERSION_UPDATED,
            "links": [{"rel": "self", "href": f"{self.v3}/"}],
            "media-types": MEDIA_TYPES,
        }

    def domain(self) -> Json:
        return {
            "id": DEFAULT_DOMAIN_ID,
            "name": DEFAULT_DOMAIN_NAME,
            "enabled": True,
            "description": "",
            "tags": [],
            "options": {},
            "links": self.link(f"domains/{DEFAULT_DOMAIN_ID}"),
        }

    def project(self, p: Project) -> Json:
        return {
            "id": p.id,
            "name": p.name,
            "domain_id": p.domain_id,
            "description": p.description or "",
            "enabled": bool(p.enabled),
            "is_domain": False,
            "parent_id": p.domain_id,
            "tags": list(p.tags or []),
            "options": {},
            "links": self.link(f"projects/{p.id}"),
        }

    def user(self, u: User) -> Json:
        out: Json = {
            "id": u.id,
            "name": u.name,
            "domain_id": u.domain_id,
            "enabled": bool(u.enabled),
            "password_expires_at": None,
            "options": {},
            "links": self.link(f"users/{u.id}"),
        }
        # Keystone shows these only once set (they are "extra" attributes there).
        for key in ("default_project_id", "email", "description"):
            if getattr(u, key) is not None:
                out[key] = getattr(u, key)
        return out

    def role(self, r: Role) -> Json:
        return {
            "id": r.id,
            "name": r.name,
            "domain_id": None,
            "description": r.description,
            "options": {},
            "links": self.link(f"roles/{r.id}"),
        }

    def assignment(self, u: User, p: Project, r: Role, names: bool) -> Json:
        user: Json = {"id": u.id}
        project: Json = {"id": p.id}
        role: Json = {"id": r.id}
        if names:
            user.update(name=u.name, domain=dict(DOMAIN_REF))
            project.update(name=p.name, domain=dict(DOMAIN_REF))
            role["name"] = r.name
        return {
            "user": user,
            "scope": {"project": project},
            "role": role,
            "links": {"assignment": f"{self.v3}/projects/{p.id}/users/{u.id}/roles/{r.id}"},
        }

    def _services(self) -> list[tuple[str, str, str]]:
        """(type, name, url) of each service this process offers."""
        return [("network", "neutron", self.cfg.public_url), ("identity", "keystone", self.root)]

    @staticmethod
    def _id(*parts: str) -> str:
        """Stable ids, so the catalog is the same on every start and in every process."""
        return uuid.uuid5(uuid.NAMESPACE_URL, "neutrino:" + ":".join(parts)).hex

    def catalog(self) -> list[Json]:
        region = self.cfg.identity.region
        return [
            {
                "id": self._id(kind),
                "type": kind,
                "name": name,
                "endpoints": [
                    {"id": self._id(kind, iface), "interface": iface, "region": region,
                     "region_id": region, "url": url}
                    for iface in INTERFACES
                ],
            }
            for kind, name, url in self._services()
        ]

    def services(self) -> list[Json]:
        return [
            {"id": self._id(kind), "type": kind, "name": name, "enabled": True, "description": "",
             "links": self.link(f"services/{self._id(kind)}")}
            for kind, name, _ in self._services()
        ]

    def endpoints(self) -> list[Json]:
        region = self.cfg.identity.region
        return [
            {"id": self._id(kind, iface), "interface": iface, "region": region, "region_id": region,
             "service_id": self._id(kind), "url": url, "enabled": True,
             "links": self.link(f"endpoints/{self._id(kind, iface)}")}
            for kind, _, url in self._services()
            for iface in INTERFACES
        ]

    def regions(self) -> list[Json]:
        region = self.cfg.identity.region
        return [{"id": region, "description": "", "parent_region_id": None,
                 "links": self.link(f"regions/{region}")}]

    def token(self, info: TokenInfo, catalog: bool = True) -> Json:
        body: Json = {
            "methods": list(info.methods),
            "user": {
                "id": info.user_id,
                "name": info.user_name,
                "domain": dict(DOMAIN_REF),
                "password_expires_at": None,
            },
            "audit_ids": [info.audit_id],
            "expires_at": isotime(info.expires_at),
            "issued_at": isotime(info.issued_at),
        }
        if info.project_id is not None:
            body["project"] = {"id": info.project_id, "name": info.project_name,
                               "domain": dict(DOMAIN_REF)}
            body["is_domain"] = False
            body["roles"] = [{"id": rid, "name": name} for rid, name in info.roles]
            if catalog:
                body["catalog"] = self.catalog()
        return {"token": body}
