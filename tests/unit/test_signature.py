"""Meta's X-Hub-Signature-256 check and the subscribe handshake."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from layanify.whatsapp.signature import challenge_response, sign, signature_is_valid

SECRET = "test-app-secret"
BODY = b'{"object":"whatsapp_business_account","entry":[]}'
FIXTURE = Path(__file__).parent.parent / "data" / "whatsapp" / "text.json"


def test_signature_is_meta_hmac_sha256_of_the_raw_body() -> None:
    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY) == f"sha256={expected}"


def test_genuine_signature_is_accepted() -> None:
    assert signature_is_valid(SECRET, BODY, sign(SECRET, BODY))


def test_signature_from_another_app_secret_is_refused() -> None:
    assert not signature_is_valid(SECRET, BODY, sign("someone-else", BODY))


def test_tampered_body_is_refused() -> None:
    assert not signature_is_valid(SECRET, BODY + b" ", sign(SECRET, BODY))


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha256", "garbage"])
def test_missing_or_empty_signature_is_refused(header: str | None) -> None:
    assert not signature_is_valid(SECRET, BODY, header)


def test_bare_hex_without_prefix_is_refused() -> None:
    bare = sign(SECRET, BODY).removeprefix("sha256=")
    assert not signature_is_valid(SECRET, BODY, bare)


@pytest.mark.parametrize("prefix", ["sha1=", "SHA256=", "sha-256=", "sha512="])
def test_wrong_prefix_is_refused(prefix: str) -> None:
    digest = sign(SECRET, BODY).removeprefix("sha256=")
    assert not signature_is_valid(SECRET, BODY, prefix + digest)


def test_trailing_whitespace_around_the_header_is_tolerated() -> None:
    assert signature_is_valid(SECRET, BODY, sign(SECRET, BODY) + " \r\n")


def test_truncated_signature_is_refused() -> None:
    assert not signature_is_valid(SECRET, BODY, sign(SECRET, BODY)[:-1])


def test_signature_is_checked_on_the_raw_bytes_with_emoji() -> None:
    raw = FIXTURE.read_bytes()
    header = sign(SECRET, raw)
    reserialised = json.dumps(json.loads(raw)).encode()  # emoji become \ud83d\ude4f escapes

    assert "🙏".encode() in raw
    assert signature_is_valid(SECRET, raw, header)
    assert reserialised != raw
    assert not signature_is_valid(SECRET, reserialised, header)


def test_unicode_app_secret_signs_its_utf8_bytes() -> None:
    secret = "rahasia-🔑-é"
    body = "Terima kasih 🙏".encode()
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()

    assert sign(secret, body) == f"sha256={expected}"
    assert signature_is_valid(secret, body, sign(secret, body))


def test_non_ascii_signature_header_is_refused_rather_than_crashing() -> None:
    # Starlette decodes header bytes as latin-1, so an attacker can send any non-ASCII character.
    header = "sha256=" + "é" * 64
    assert signature_is_valid(SECRET, BODY, header) is False


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str | bytes, str | bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    header = sign(SECRET, BODY)

    assert signature_is_valid(SECRET, BODY, header)
    assert signature_is_valid(SECRET, BODY, sign("other", BODY)) is False
    assert len(calls) == 2
    as_text = [(_text(a), _text(b)) for a, b in calls]
    assert as_text == [(header, header), (header, sign("other", BODY))]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


# --- the subscribe handshake -------------------------------------------------------------------


def test_handshake_with_our_verify_token_echoes_the_bare_challenge() -> None:
    assert challenge_response("subscribe", "tok", "1158201444", "tok") == "1158201444"


def test_handshake_with_a_wrong_token_is_refused() -> None:
    assert challenge_response("subscribe", "wrong", "1158201444", "tok") is None


@pytest.mark.parametrize("mode", [None, "", "unsubscribe", "Subscribe"])
def test_handshake_other_than_subscribe_is_refused(mode: str | None) -> None:
    assert challenge_response(mode, "tok", "1158201444", "tok") is None


@pytest.mark.parametrize("expected", [None, ""])
def test_handshake_is_refused_when_no_verify_token_is_configured(expected: str | None) -> None:
    assert challenge_response("subscribe", "", "1158201444", expected) is None
    assert challenge_response("subscribe", None, "1158201444", expected) is None


def test_handshake_without_token_or_challenge_is_refused() -> None:
    assert challenge_response("subscribe", None, "1158201444", "tok") is None
    assert challenge_response("subscribe", "tok", None, "tok") is None


def test_handshake_accepts_a_unicode_verify_token() -> None:
    assert challenge_response("subscribe", "token-🔐", "42", "token-🔐") == "42"
    assert challenge_response("subscribe", "token-🔓", "42", "token-🔐") is None
