"""Client addresses behind trusted proxies, and the settings that name the networks."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from layanify.config import ConfigurationError, Settings
from layanify.proxies import apply_forwarded, client_ip, forwarded_scheme, is_allowed, parse_networks

TRUSTED = parse_networks("10.0.0.0/8, 2001:db8::/32")


@pytest.fixture(autouse=True)
def _empty_database() -> None:
    """No database for pure logic."""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("LAYANIFY_", "WHATSAPP_")):
            monkeypatch.delenv(name)


def scope(peer: str | None, **headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "http",
        "path": "/",
        "client": (peer, 50000) if peer else None,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() -> None:
    s = scope("203.0.113.9", x_forwarded_for="198.51.100.1")
    assert client_ip(s, []) == "203.0.113.9"


def test_an_untrusted_peer_cannot_forge_its_address() -> None:
    s = scope("203.0.113.9", x_forwarded_for="10.0.0.5, 198.51.100.1")
    assert client_ip(s, TRUSTED) == "203.0.113.9"


def test_behind_trusted_proxies_the_client_is_the_right_most_untrusted_hop() -> None:
    # The client forged the first entry; our proxies (10.x) appended the rest.
    s = scope("10.0.0.2", x_forwarded_for="1.1.1.1, 198.51.100.7, 10.0.0.9")
    assert client_ip(s, TRUSTED) == "198.51.100.7"


def test_repeated_forwarded_for_headers_are_read_as_one_list() -> None:
    s = scope("10.0.0.2")
    s["headers"] = [(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-for", b"10.0.0.9")]
    assert client_ip(s, TRUSTED) == "198.51.100.7"


def test_when_every_hop_is_ours_the_left_most_is_the_client() -> None:
    assert client_ip(scope("10.0.0.2", x_forwarded_for="10.1.1.1, 10.0.0.9"), TRUSTED) == "10.1.1.1"
    assert client_ip(scope("10.0.0.2"), TRUSTED) == "10.0.0.2"


def test_a_garbled_hop_makes_the_client_unknown() -> None:
    s = scope("10.0.0.2", x_forwarded_for="198.51.100.7, not-an-ip")
    assert client_ip(s, TRUSTED) is None


def test_ipv6_and_ipv4_mapped_addresses() -> None:
    assert client_ip(scope("2001:db8::1", x_forwarded_for="[2001:db9::5]:443"), TRUSTED) == "2001:db9::5"
    assert client_ip(scope("::ffff:10.0.0.2", x_forwarded_for="198.51.100.7"), TRUSTED) == "198.51.100.7"


def test_client_ip_takes_a_request_and_is_idempotent_after_the_scope_was_rewritten() -> None:
    s = scope("10.0.0.2", x_forwarded_for="198.51.100.7, 10.0.0.9", x_forwarded_proto="https")
    apply_forwarded(s, TRUSTED)
    assert s["client"][0] == "198.51.100.7"
    assert s["scheme"] == "https"
    assert client_ip(Request(s), TRUSTED) == "198.51.100.7"


def test_forwarded_proto_is_believed_only_from_a_trusted_proxy() -> None:
    assert forwarded_scheme(scope("10.0.0.2", x_forwarded_proto="https"), TRUSTED) == "https"
    assert forwarded_scheme(scope("10.0.0.2", x_forwarded_proto="http, https"), TRUSTED) == "https"
    assert forwarded_scheme(scope("10.0.0.2", x_forwarded_proto="gopher"), TRUSTED) is None
    untrusted = scope("203.0.113.9", x_forwarded_proto="https")
    apply_forwarded(untrusted, TRUSTED)
    assert untrusted["scheme"] == "http"


def test_allow_list_membership() -> None:
    allowed = parse_networks("173.252.64.0/18, 2a03:2880::/32")
    assert is_allowed("173.252.88.1", allowed)
    assert is_allowed("::ffff:173.252.88.1", allowed)
    assert is_allowed("2a03:2880:1::1", allowed)
    assert not is_allowed("203.0.113.9", allowed)
    assert not is_allowed(None, allowed)
    assert not is_allowed("garbage", allowed)


def test_settings_read_comma_separated_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYANIFY_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1")
    monkeypatch.setenv("LAYANIFY_WEBHOOK_ALLOWED_IPS", "173.252.64.0/18,2a03:2880::/32")
    s = Settings(_env_file=None)
    assert [str(n) for n in s.trusted_proxies] == ["10.0.0.0/8", "192.168.1.1/32"]
    assert [str(n) for n in s.webhook_allowed_ips] == ["173.252.64.0/18", "2a03:2880::/32"]


def test_empty_network_settings_mean_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYANIFY_WEBHOOK_ALLOWED_IPS", "")
    s = Settings(_env_file=None)
    assert s.webhook_allowed_ips == []
    assert s.trusted_proxies == []


def test_a_bad_network_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYANIFY_TRUSTED_PROXIES", "10.0.0.0/8, nginx")
    with pytest.raises(ValidationError, match="nginx"):
        Settings(_env_file=None)


def production(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "production",
        "secret_key": "k" * 48,
        "encryption_keys": "prod:" + base64.b64encode(b"p" * 32).decode(),
        "whatsapp_app_secret": "app-secret",
        "whatsapp_verify_token": "verify-token",
    }
    return Settings(_env_file=None, **(values | overrides))


@pytest.mark.parametrize("url", [None, "http://wa.example.com"])
def test_production_refuses_a_public_base_url_that_is_not_https(url: str | None) -> None:
    with pytest.raises(ConfigurationError, match="LAYANIFY_PUBLIC_BASE_URL"):
        production(public_base_url=url).check_production()


def test_production_starts_with_an_https_public_base_url() -> None:
    settings = production(public_base_url="https://wa.example.com/")
    settings.check_production()
    assert settings.webhook_url == "https://wa.example.com/api/webhooks/whatsapp"


@pytest.mark.parametrize("url", ["wa.example.com", "ftp://wa.example.com", "https://", "https:///x"])
def test_a_public_base_url_must_be_an_absolute_http_url(url: str) -> None:
    with pytest.raises(ValidationError, match="absolute"):
        Settings(_env_file=None, public_base_url=url)
