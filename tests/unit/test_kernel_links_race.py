"""A link that vanishes between its lookup by name and its read by index is simply gone.

`neutrino down` deletes the node namespace and then the machine-side end of its veth: the
kernel removes that peer asynchronously, so the name may still resolve to an index whose read
answers ENODEV. CI once saw `down` fail with a traceback there.
"""

from __future__ import annotations

import errno
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from neutrino.kernel import links


class VanishingLink:
    """An IPRoute stand-in: the name resolves, the index is already gone."""

    def __init__(self, code: int) -> None:
        self.code = code

    def link_lookup(self, ifname: str) -> list[int]:
        return [42]

    def get_links(self, index: int) -> Any:
        raise NetlinkError(self.code, "No such device")


def test_a_link_gone_after_its_lookup_is_not_found() -> None:
    assert links._find(VanishingLink(errno.ENODEV), "neutrino-public") is None  # type: ignore[arg-type]


def test_other_netlink_errors_still_raise() -> None:
    with pytest.raises(NetlinkError):
        links._find(VanishingLink(errno.EPERM), "neutrino-public")  # type: ignore[arg-type]
