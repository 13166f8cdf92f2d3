"""The token cache's expiry and invalidation rules, and Keystone's role inference."""

from __future__ import annotations

import datetime as dt

from neutrino.identity.tokens import TokenCache, TokenInfo, _implied, audit_id, hash_token


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def info(expires_in: float, clock: Clock) -> TokenInfo:
    expires = dt.datetime.fromtimestamp(clock.now + expires_in, dt.UTC).replace(tzinfo=None)
    return TokenInfo(token_hash=hash_token("t"), user_id="u", user_name="user", project_id=None,
                     project_name=None, roles=(), methods=("password",), issued_at=expires,
                     expires_at=expires, context=None)


def test_entries_expire_with_the_token_or_the_ttl() -> None:
    clock = Clock()
    cache = TokenCache(clock, ttl=30)
    cache.put("short", info(10, clock), cache.generation)
    cache.put("long", info(3600, clock), cache.generation)
    assert cache.get("short") and cache.get("long")
    clock.now += 11
    assert cache.get("short") is None and cache.get("long")
    clock.now += 20  # past the ttl: revalidate from the database
    assert cache.get("long") is None


def test_clear_rejects_answers_read_before_it() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    generation = cache.generation  # a validation starts reading the database...
    cache.clear()  # ...an identity write commits...
    cache.put("t", info(60, clock), generation)  # ...and its stale answer is dropped
    assert cache.get("t") is None
    cache.put("t", info(60, clock), cache.generation)
    assert cache.get("t") is not None


def test_cache_is_bounded() -> None:
    clock = Clock()
    cache = TokenCache(clock, max_entries=3)
    for n in range(7):
        cache.put(f"t{n}", info(60, clock), cache.generation)
    assert sum(cache.get(f"t{n}") is not None for n in range(7)) <= 3
    assert cache.get("t6") is not None


def test_role_inference_follows_keystone_defaults() -> None:
    assert _implied(["admin"]) == {"member", "reader"}
    assert _implied(["member"]) == {"reader"}
    assert _implied(["reader", "auditor"]) == set()


def test_hashes_and_audit_ids() -> None:
    assert hash_token("a") != hash_token("b") and len(hash_token("a")) == 64
    assert len(audit_id(hash_token("a"))) == 22
