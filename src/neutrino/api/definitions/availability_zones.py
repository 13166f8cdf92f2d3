"""availability_zones: the availability_zone extension's list (name, resource, state)."""

from neutrino.api.attributes import Attr, Resource

AVAILABILITY_ZONES = Resource(
    member="availability_zone",
    collection="availability_zones",
    attrs={
        "name": Attr(),
        "resource": Attr(),
        "state": Attr(),
    },
)
