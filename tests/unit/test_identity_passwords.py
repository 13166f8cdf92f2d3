"""Password hashes: salted, self-describing, and never matching an empty or foreign hash."""

from __future__ import annotations

from neutrino.identity.passwords import hash_password, verify_password


def test_hash_is_salted_and_verifies() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second and "s3cret" not in first
    assert first.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret", first) and verify_password("s3cret", second)
    assert not verify_password("S3cret", first)


def test_missing_or_garbled_hashes_never_match() -> None:
    for stored in (None, "", "plain", "md5$x$y", "scrypt$a$b$c$d$e"):
        assert not verify_password("", stored)
        assert not verify_password("anything", stored)
