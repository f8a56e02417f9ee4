"""Settings: the seed's WHATSAPP_* names, LAYANIFY_* options, and production refusals."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from layanify.config import (
    DEV_ENCRYPTION_KEY,
    DEV_SECRET_KEY,
    META_MAX_WEBHOOK_BYTES,
    ConfigurationError,
    Settings,
)

PROD_SECRET_KEY = "k" * 48
PROD_ENCRYPTION_KEYS = "prod:" + base64.b64encode(b"p" * 32).decode()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test from an environment without the product's variables."""
    for name in list(os.environ):
        if name.upper().startswith(("LAYANIFY_", "WHATSAPP_")):
            monkeypatch.delenv(name)


def settings(**values: Any) -> Settings:
    """Settings from the environment only (never a developer's .env)."""
    return Settings(_env_file=None, **values)


def production(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "production",
        "secret_key": PROD_SECRET_KEY,
        "encryption_keys": PROD_ENCRYPTION_KEYS,
        "whatsapp_app_secret": "app-secret",
        "whatsapp_verify_token": "verify-token",
        "public_base_url": "https://wa.example.com",
    }
    values.update(overrides)
    return settings(**values)


# --- reading the environment -------------------------------------------------------------------


def test_seed_whatsapp_variables_are_read_without_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_VERIFY_TOKEN", "verify-me")
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "EAAG-token")
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "106540352242922")
    monkeypatch.setenv("WHATSAPP_BUSINESS_ACCOUNT_ID", "102290129340398")
    monkeypatch.setenv("WHATSAPP_APP_SECRET", "app-secret")

    s = settings()

    assert s.whatsapp_verify_token is not None
    assert s.whatsapp_verify_token.get_secret_value() == "verify-me"
    assert s.whatsapp_access_token is not None
    assert s.whatsapp_access_token.get_secret_value() == "EAAG-token"
    assert s.whatsapp_phone_number_id == "106540352242922"
    assert s.whatsapp_business_account_id == "102290129340398"
    assert s.whatsapp_app_secret is not None
    assert s.whatsapp_app_secret.get_secret_value() == "app-secret"
    assert s.seed_number_configured


def test_secrets_are_not_shown_when_settings_are_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "EAAG-very-secret")
    monkeypatch.setenv("WHATSAPP_APP_SECRET", "app-very-secret")
    monkeypatch.setenv("LAYANIFY_SECRET_KEY", "session-very-secret")

    shown = repr(settings())

    assert "very-secret" not in shown


def test_seed_number_needs_both_id_and_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "106540352242922")
    assert not settings().seed_number_configured


def test_product_options_use_the_layanify_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYANIFY_ENV", "test")
    monkeypatch.setenv("LAYANIFY_PORT", "9001")
    monkeypatch.setenv("LAYANIFY_LOG_FORMAT", "json")
    monkeypatch.setenv("LAYANIFY_WORKER_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("LAYANIFY_GRAPH_API_VERSION", "v24.0")

    s = settings()

    assert s.env == "test"
    assert s.port == 9001
    assert s.log_format == "json"
    assert s.worker_max_attempts == 3
    assert s.graph_api_version == "v24.0"


def test_unprefixed_product_options_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    assert settings().port == 8000


def test_defaults_are_for_local_development() -> None:
    s = settings()

    assert s.env == "development"
    assert s.is_sqlite
    assert s.database_url == "sqlite+aiosqlite:///./data/layanify.db"
    assert s.secret_key.get_secret_value() == DEV_SECRET_KEY
    assert s.encryption_keys.get_secret_value() == DEV_ENCRYPTION_KEY
    assert s.webhook_max_body_bytes == META_MAX_WEBHOOK_BYTES == 3 * 1024 * 1024
    assert s.whatsapp_app_secret is None
    assert not s.seed_number_configured


def test_development_encryption_key_is_a_valid_32_byte_key() -> None:
    key_id, encoded = DEV_ENCRYPTION_KEY.split(":", 1)
    assert key_id == "dev"
    assert len(base64.b64decode(encoded)) == 32


def test_out_of_range_option_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYANIFY_WORKER_BATCH_SIZE", "0")
    with pytest.raises(ValueError, match="worker_batch_size"):
        settings()


# --- database URL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@db:5432/layanify", "postgresql+asyncpg://u:p@db:5432/layanify"),
        (
            "postgresql://u:p@db/layanify?sslmode=require",
            "postgresql+asyncpg://u:p@db/layanify?sslmode=require",
        ),
        ("postgresql+asyncpg://u@db/layanify", "postgresql+asyncpg://u@db/layanify"),
        ("sqlite:///./data/x.db", "sqlite+aiosqlite:///./data/x.db"),
        ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
    ],
)
def test_plain_database_urls_get_the_async_driver(
    monkeypatch: pytest.MonkeyPatch, given: str, used: str
) -> None:
    monkeypatch.setenv("LAYANIFY_DATABASE_URL", given)
    assert settings().database_url == used


def test_postgres_url_is_not_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYANIFY_DATABASE_URL", "postgres://db/layanify")

    s = settings()

    assert not s.is_sqlite
    assert s.sqlite_path() is None


def test_sqlite_file_path_is_known_and_memory_has_none() -> None:
    assert str(settings(database_url="sqlite:///./data/x.db?mode=rwc").sqlite_path()) == "data/x.db"
    assert settings(database_url="sqlite:///:memory:").sqlite_path() is None


# --- Graph API URL -----------------------------------------------------------------------------


def test_graph_api_url_includes_the_version() -> None:
    assert settings().graph_api_url == "https://graph.facebook.com/v23.0"


def test_graph_api_url_with_a_trailing_slash_on_the_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYANIFY_GRAPH_API_BASE_URL", "http://127.0.0.1:8001/")
    monkeypatch.setenv("LAYANIFY_GRAPH_API_VERSION", "v24.0")

    assert settings().graph_api_url == "http://127.0.0.1:8001/v24.0"


# --- production refusals -----------------------------------------------------------------------


def test_development_with_default_secrets_starts() -> None:
    settings().check_production()


def test_production_with_proper_values_starts() -> None:
    production().check_production()


def test_production_from_the_environment_with_proper_values_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYANIFY_ENV", "production")
    monkeypatch.setenv("LAYANIFY_SECRET_KEY", PROD_SECRET_KEY)
    monkeypatch.setenv("LAYANIFY_ENCRYPTION_KEYS", PROD_ENCRYPTION_KEYS)
    monkeypatch.setenv("WHATSAPP_APP_SECRET", "app-secret")
    monkeypatch.setenv("WHATSAPP_VERIFY_TOKEN", "verify-token")
    monkeypatch.setenv("LAYANIFY_PUBLIC_BASE_URL", "https://wa.example.com")

    settings().check_production()


def test_production_refuses_the_default_secret_key() -> None:
    with pytest.raises(ConfigurationError, match="LAYANIFY_SECRET_KEY"):
        production(secret_key=DEV_SECRET_KEY).check_production()


def test_production_refuses_a_short_secret_key() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        production(secret_key="s" * 31).check_production()


def test_production_accepts_a_secret_key_of_exactly_32_characters() -> None:
    production(secret_key="s" * 32).check_production()


def test_production_refuses_the_default_encryption_keys() -> None:
    with pytest.raises(ConfigurationError, match=r"LAYANIFY_ENCRYPTION_KEYS.*layanify keys generate"):
        production(encryption_keys=DEV_ENCRYPTION_KEY).check_production()


def test_production_refuses_the_development_key_as_the_current_encryption_key() -> None:
    # The development key is public (it is in the source): new secrets must not be encrypted with it.
    with pytest.raises(ConfigurationError, match="LAYANIFY_ENCRYPTION_KEYS"):
        production(encryption_keys=f"{DEV_ENCRYPTION_KEY},{PROD_ENCRYPTION_KEYS}").check_production()


@pytest.mark.parametrize("value", [None, ""])
def test_production_refuses_a_missing_app_secret(value: str | None) -> None:
    with pytest.raises(ConfigurationError, match=r"WHATSAPP_APP_SECRET.*cannot be verified"):
        production(whatsapp_app_secret=value).check_production()


@pytest.mark.parametrize("value", [None, ""])
def test_production_refuses_a_missing_verify_token(value: str | None) -> None:
    with pytest.raises(ConfigurationError, match="WHATSAPP_VERIFY_TOKEN"):
        production(whatsapp_verify_token=value).check_production()


def test_production_lists_every_problem_at_once() -> None:
    s = settings(env="production")

    with pytest.raises(ConfigurationError) as caught:
        s.check_production()

    message = str(caught.value)
    assert message.startswith("Refusing to run in production: ")
    for name in (
        "LAYANIFY_SECRET_KEY",
        "LAYANIFY_ENCRYPTION_KEYS",
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
    ):
        assert name in message
