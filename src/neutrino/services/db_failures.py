"""Which database failures are not bugs of ours, for the API layers to word as their clients expect.

One classification for both APIs (Neutron's and Keystone's), so that the HTTP layers never
look at driver exceptions themselves: the server is unreachable (the client should retry
later: 503), or it refused a value it cannot store (the client's input: 400). Anything else
is a bug and stays a 500.
"""

from __future__ import annotations

import logging
from typing import Literal

from sqlalchemy.exc import DataError, DBAPIError

from neutrino.db.engine import unreachable

LOG = logging.getLogger(__name__)


def classify(exc: BaseException) -> Literal["unavailable", "invalid"] | None:
    if not isinstance(exc, DBAPIError):
        return None
    if unreachable(exc):
        LOG.warning("database unreachable: %s", str(exc.orig).strip().splitlines()[0] if str(exc.orig) else exc)
        return "unavailable"
    if isinstance(exc, DataError):
        return "invalid"
    return None
