"""Passwords, API keys and session cookies."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from layanify.accounts.security import (
    API_KEY_PREFIX,
    SessionSigner,
    api_key_digest,
    hash_password,
    new_api_key,
    password_needs_rehash,
    verify_password,
)

PASSWORD = "kopi-gayo-250g 🙏"
SECRET = "s" * 48
FORTNIGHT = 14 * 24 * 3600


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


# --- passwords ---------------------------------------------------------------------------------


def test_right_password_is_accepted(password_hash: str) -> None:
    assert verify_password(password_hash, PASSWORD) is True


def test_password_is_not_stored_in_clear(password_hash: str) -> None:
    assert PASSWORD not in password_hash
    assert password_hash.startswith("$argon2id$")


def test_same_password_hashes_differently_each_time(password_hash: str) -> None:
    assert hash_password(PASSWORD) != password_hash


@pytest.mark.parametrize("attempt", ["", "kopi-gayo-250g", PASSWORD.upper(), PASSWORD + " "])
def test_wrong_password_is_refused(password_hash: str, attempt: str) -> None:
    assert verify_password(password_hash, attempt) is False


@pytest.mark.parametrize(
    "corrupt",
    ["", "not-a-hash", "$argon2id$v=19$m=65536,t=3,p=4$garbage", "$2b$12$" + "a" * 53],
)
def test_corrupt_hash_refuses_login_without_crashing(corrupt: str) -> None:
    assert verify_password(corrupt, PASSWORD) is False


def test_truncated_hash_refuses_login_without_crashing(password_hash: str) -> None:
    assert verify_password(password_hash[:-8], PASSWORD) is False


def test_hash_with_non_ascii_characters_refuses_login_without_crashing() -> None:
    # A hash column mangled by an encoding mishap must not turn a login into a server error.
    assert verify_password("$argon2id$v=19$m=65536,t=3,p=4$sél$hásh", PASSWORD) is False


def test_fresh_hash_needs_no_rehash(password_hash: str) -> None:
    assert password_needs_rehash(password_hash) is False


# --- API keys ----------------------------------------------------------------------------------


def test_api_key_has_the_lay_prefix_and_enough_randomness() -> None:
    key = new_api_key()

    assert API_KEY_PREFIX == "lay_"
    assert key.startswith("lay_")
    assert len(key) >= len("lay_") + 43  # 32 random bytes, url-safe base64


def test_api_keys_are_unique() -> None:
    assert len({new_api_key() for _ in range(50)}) == 50


def test_api_key_digest_is_stable_sha256_hex() -> None:
    key = "lay_example"

    digest = api_key_digest(key)

    assert digest == api_key_digest(key)
    assert digest == hashlib.sha256(b"lay_example").hexdigest()
    assert key not in digest


def test_different_api_keys_have_different_digests() -> None:
    assert api_key_digest(new_api_key()) != api_key_digest(new_api_key())


# --- session cookies ---------------------------------------------------------------------------


def test_session_cookie_names_the_user_and_workspace() -> None:
    signer = SessionSigner(SECRET, FORTNIGHT)
    assert signer.loads(signer.dumps(7, 3)) == (7, 3)


def test_tampered_session_cookie_is_refused() -> None:
    signer = SessionSigner(SECRET, FORTNIGHT)
    cookie = signer.dumps(7, 3)
    head, signature = cookie.rsplit(".", 1)
    middle = len(signature) // 2  # the last character partly holds padding bits: flip one in the middle
    flipped = "A" if signature[middle] != "A" else "z"
    tampered = f"{head}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"

    assert signer.loads(tampered) is None


def test_session_cookie_for_another_user_cannot_be_forged_by_editing_the_payload() -> None:
    signer = SessionSigner(SECRET, FORTNIGHT)
    payload, rest = signer.dumps(7, 3).split(".", 1)
    other_payload = signer.dumps(1, 1).split(".", 1)[0]

    assert signer.loads(f"{other_payload}.{rest}") is None
    assert signer.loads(f"{payload}.{rest}") == (7, 3)


def test_session_cookie_signed_with_another_secret_is_refused() -> None:
    cookie = SessionSigner("another-secret-" + "x" * 40, FORTNIGHT).dumps(7, 3)
    assert SessionSigner(SECRET, FORTNIGHT).loads(cookie) is None


@pytest.mark.parametrize("cookie", ["", "garbage", "a.b.c", "é"])
def test_garbage_session_cookie_is_refused(cookie: str) -> None:
    assert SessionSigner(SECRET, FORTNIGHT).loads(cookie) is None


def test_session_cookie_is_valid_until_it_expires() -> None:
    signer = SessionSigner(SECRET, FORTNIGHT)
    start = datetime(2025, 11, 24, 9, 0, tzinfo=UTC)

    with time_machine.travel(start, tick=False):
        cookie = signer.dumps(7, 3)
    with time_machine.travel(start + timedelta(days=13, hours=23), tick=False):
        assert signer.loads(cookie) == (7, 3)
    with time_machine.travel(start + timedelta(days=14, seconds=1), tick=False):
        assert signer.loads(cookie) is None


def test_session_cookie_expires_immediately_with_a_negative_max_age() -> None:
    signer = SessionSigner(SECRET, -1)
    assert signer.loads(signer.dumps(7, 3)) is None
