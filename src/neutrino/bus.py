"""The bus between the API server and the agents: change events out, wake-ups in.

Events only wake agents up; agents then fetch the desired state and reconcile, so an event
carries no state of its own and losing one is repaired by the next periodic resync
(DESIGN.md, data flow). An event names the hosts it concerns and the parts of their state it
touched (networks, routers, security groups): it reaches only those hosts, and they fetch
only those parts (``sync(host, scope)``). An event without hosts reaches every host, and one
without parts makes its hosts fetch everything. ``inproc://`` delivers in this process:
subscribers are called on the publisher's thread and must only record the event (set a flag,
put on a queue).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

LOG = logging.getLogger(__name__)

CHANGES = "neutrino.changes"


@dataclass(frozen=True)
class Event:
    """``{resource, id, action}`` of one committed write (id is "" for a collection POST), with
    the hosts it concerns (None: every host) and the parts of their state it touched."""

    resource: str
    id: str
    action: str
    hosts: frozenset[str] | None = None
    networks: frozenset[str] = frozenset()
    routers: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    first: frozenset[str] = frozenset()  # of ``hosts``, those to tell first: the port's own host waits for it

    def reaches(self, host: str | None) -> bool:
        """Whether a subscriber for ``host`` (None: for every host) gets this event."""
        return host is None or self.hosts is None or host in self.hosts

    @property
    def partial(self) -> bool:
        """Whether the parts it names are all that changed (else its hosts fetch everything)."""
        return bool(self.networks or self.routers or self.groups)


Handler = Callable[[Event], None]


class Bus(Protocol):
    def publish(self, topic: str, event: Event) -> None: ...

    def subscribe(self, topic: str, handler: Handler, host: str | None = None) -> Callable[[], None]:
        """Start delivering ``topic`` to ``handler``, only the events that reach ``host`` when one
        is given; returns the call that stops it."""
        ...


class InprocBus:
    """Publish/subscribe within one process (the all-in-one default)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[str, list[tuple[Handler, str | None]]] = {}

    def publish(self, topic: str, event: Event) -> None:
        with self._lock:
            handlers = [h for h, host in self._handlers.get(topic, ()) if event.reaches(host)]
        for handler in handlers:
            try:
                handler(event)
            except Exception:  # a broken subscriber must not fail the API request that published
                LOG.exception("bus subscriber failed on %s", event)

    @property
    def listened(self) -> bool:
        """Whether anyone subscribed: a server alone need not work out whom a write reaches."""
        with self._lock:
            return any(self._handlers.values())

    def subscribe(self, topic: str, handler: Handler, host: str | None = None) -> Callable[[], None]:
        entry = (handler, host)
        with self._lock:
            self._handlers.setdefault(topic, []).append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._handlers.get(topic, []):
                    self._handlers[topic].remove(entry)

        return unsubscribe


def make_bus(url: str, prefix: str = "neutrino") -> Bus:
    """The bus a URL names: ``inproc://`` (one process) or ``amqp://user:pass@host:5672/``."""
    if url in ("", "inproc://"):
        return InprocBus()
    if url.startswith("amqp://"):
        from neutrino.amqp import AmqpBus

        return AmqpBus(url, prefix)
    raise ValueError(f"unsupported transport_url {url!r}: use inproc:// or amqp://user:pass@host:5672/")
