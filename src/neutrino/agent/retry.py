"""Per-object retries for the host agent: exponential back-off, rate-limited logs, a failure list.

One object the agent cannot realise (a DHCP server, a router, a port's firewall) must hurt
only itself: the pass applies everything else, and the failed object is tried again later,
after 1, 2, 4 ... up to ``MAX_DELAY`` seconds, or at once when what is wanted of it changed
(a fix through the API is picked up by the next pass). Its failure is logged when it first
happens, when the reason changes, and then at most once per ``LOG_EVERY`` seconds, so a
broken object never floods the log; :meth:`Retries.failures` is what the agent reports.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson

LOG = logging.getLogger(__name__)
BASE_DELAY = 1.0
MAX_DELAY = 60.0
LOG_EVERY = 60.0


@dataclass
class _Failure:
    reason: str
    attempts: int
    next_at: float
    fingerprint: object
    logged_at: float


class Retries:
    """The objects that failed, when each may be tried again, and why it failed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, base: float = BASE_DELAY,
                 cap: float = MAX_DELAY, log_every: float = LOG_EVERY) -> None:
        self._clock = clock
        self._base, self._cap, self._log_every = base, cap, log_every
        self._failed: dict[str, _Failure] = {}
        self._lock = threading.Lock()  # the heartbeat thread reads failures() while a pass writes

    def due(self, key: str, fingerprint: object = None) -> bool:
        """May ``key`` be tried now: never failed, its back-off is over, or its input changed."""
        with self._lock:
            failure = self._failed.get(key)
            return failure is None or failure.fingerprint != fingerprint or self._clock() >= failure.next_at

    def failed(self, key: str, reason: str, fingerprint: object = None, exc_info: bool = False,
               timed: bool = True) -> None:
        """Record one more failure of ``key``; log it unless it was logged recently for the same reason.

        ``timed`` false: the object is re-evaluated by every pass anyway (a value that cannot be
        rendered), so no retry is scheduled for it; it is only reported and logged.
        """
        now = self._clock()
        with self._lock:
            prior = self._failed.get(key)
            attempts = prior.attempts + 1 if prior is not None else 1
            delay = min(self._cap, self._base * 2 ** (attempts - 1))
            loud = prior is None or prior.reason != reason or now - prior.logged_at >= self._log_every
            logged_at = now if loud else prior.logged_at  # type: ignore[union-attr]
            self._failed[key] = _Failure(reason, attempts, now + delay if timed else math.inf, fingerprint, logged_at)
        if loud and timed:
            LOG.warning("%s failed (attempt %d, next try in %.0f s): %s", key, attempts, delay, reason,
                        exc_info=exc_info)
        elif loud:
            LOG.warning("%s cannot be realised (left out until it changes): %s", key, reason)

    def succeeded(self, key: str) -> None:
        with self._lock:
            prior = self._failed.pop(key, None)
        if prior is not None:
            LOG.info("%s recovered after %d failed attempt(s)", key, prior.attempts)

    def keep_only(self, keys: Iterable[str], prefix: str) -> None:
        """Forget failures under ``prefix`` whose object is no longer wanted on this host."""
        wanted = set(keys)
        with self._lock:
            for key in [k for k in self._failed if k.startswith(prefix) and k not in wanted]:
                del self._failed[key]

    def failures(self, prefix: str = "") -> dict[str, str]:
        """Each failed object's key and reason (what the agent reports)."""
        with self._lock:
            return {k: f.reason for k, f in sorted(self._failed.items()) if k.startswith(prefix)}

    def next_due(self) -> float | None:
        """The monotonic time of the earliest retry, or None when nothing failed."""
        with self._lock:
            return min((f.next_at for f in self._failed.values() if f.next_at != math.inf), default=None)


def fingerprint(obj: object) -> bytes:
    """What is wanted of one object, to retry it at once when that changes."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
