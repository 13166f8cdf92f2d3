"""agents: the agent extension plus availability_zone (on agents) and agent-resources-synced.

Read-only but for admin_state_up and description; admin-only as a whole (see services/agents.py).
"""

from neutrino.api import validators as v
from neutrino.api.attributes import Attr, Resource

AGENTS = Resource(
    member="agent",
    collection="agents",
    attrs={
        "id": Attr(validate=v.uuid_),
        "agent_type": Attr(),
        "binary": Attr(),
        "topic": Attr(),
        "host": Attr(),
        "admin_state_up": Attr(put=True, convert=v.to_boolean, validate=v.boolean),
        "alive": Attr(convert_filter=v.to_boolean),
        "availability_zone": Attr(),
        "created_at": Attr(filter=False),
        "started_at": Attr(filter=False),
        "heartbeat_timestamp": Attr(filter=False),
        "description": Attr(put=True, validate=v.string_or_none(255)),
        "configurations": Attr(filter=False, sort=False),
        "resources_synced": Attr(filter=False, sort=False),
    },
)
