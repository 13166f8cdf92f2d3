"""The bus between the API server and the agents: change events out, wake-ups in.

Events only wake agents up; agents then fetch the desired state and reconcile, so an event
carries no state of its own and losing one is repaired by the next periodic resync
(DESIGN.md, data flow). ``inproc://`` delivers in this process: subscribers are called on
the publisher's thread and must only record the event (set a flag, put on a queue).
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
    """``{resource, id, action}`` of one committed API write (id is "" for a collection POST)."""

    resource: str
    id: str
    action: str


Handler = Callable[[Event], None]


class Bus(Protocol):
    def publish(self, topic: str, event: Event) -> None: ...

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        """Start delivering ``topic`` to ``handler``; returns the call that stops it."""
        ...


class InprocBus:
    """Publish/subscribe within one process (the all-in-one default)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[str, list[Handler]] = {}

    def publish(self, topic: str, event: Event) -> None:
        with self._lock:
            handlers = list(self._handlers.get(topic, ()))
        for handler in handlers:
            try:
                handler(event)
            except Exception:  # a broken subscriber must not fail the API request that published
                LOG.exception("bus subscriber failed on %s", event)

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        with self._lock:
            self._handlers.setdefault(topic, []).append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers.get(topic, []):
                    self._handlers[topic].remove(handler)

        return unsubscribe


def make_bus(url: str, prefix: str = "neutrino") -> Bus:
    """The bus a URL names: ``inproc://`` (one process) or ``amqp://user:pass@host:5672/``."""
    if url in ("", "inproc://"):
        return InprocBus()
    if url.startswith("amqp://"):
        from neutrino.amqp import AmqpBus

        return AmqpBus(url, prefix)
    raise ValueError(f"unsupported transport_url {url!r}: use inproc:// or amqp://user:pass@host:5672/")
