"""Settings, read from the environment, `.env` and `.env.local` (the seed's file)."""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - a placeholder production refuses
# 32 zero-ish bytes, base64: good enough to develop with, refused in production.
DEV_ENCRYPTION_KEY = "dev:" + base64.b64encode(b"layanify-dev-key-not-for-prod!!!").decode()
META_MAX_WEBHOOK_BYTES = 3 * 1024 * 1024


class ConfigurationError(RuntimeError):
    """The settings cannot run the product safely; the message says what to change."""


class Settings(BaseSettings):
    """Everything the product reads from its environment. Nothing is read at import time."""

    model_config = SettingsConfigDict(
        env_prefix="LAYANIFY_",
        env_file=(".env", ".env.local"),
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,
    )

    # The seed's names (no prefix).
    whatsapp_verify_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("WHATSAPP_VERIFY_TOKEN", "whatsapp_verify_token")
    )
    whatsapp_access_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("WHATSAPP_ACCESS_TOKEN", "whatsapp_access_token")
    )
    whatsapp_phone_number_id: str | None = Field(
        default=None, validation_alias=AliasChoices("WHATSAPP_PHONE_NUMBER_ID", "whatsapp_phone_number_id")
    )
    whatsapp_business_account_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("WHATSAPP_BUSINESS_ACCOUNT_ID", "whatsapp_business_account_id"),
    )
    whatsapp_app_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("WHATSAPP_APP_SECRET", "whatsapp_app_secret")
    )

    env: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite+aiosqlite:///./data/layanify.db"
    redis_url: str | None = None
    graph_api_base_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v23.0"
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    # Comma-separated `key_id:base64(32 bytes)`; the first one encrypts, all of them decrypt.
    encryption_keys: SecretStr = SecretStr(DEV_ENCRYPTION_KEY)
    sentry_dsn: SecretStr | None = None
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    host: str = "127.0.0.1"
    port: int = 8000
    # Webhook ingestion and processing.
    webhook_max_body_bytes: int = META_MAX_WEBHOOK_BYTES
    webhook_ingest_batch: int = Field(default=512, ge=1, le=10_000)
    worker_batch_size: int = Field(default=100, ge=1, le=1000)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    worker_coalesce_seconds: float = Field(default=0.05, ge=0, le=5)
    worker_max_defer_seconds: float = Field(default=1.0, ge=0, le=60)
    worker_max_attempts: int = Field(default=8, ge=1)
    worker_retry_base_seconds: float = Field(default=2.0, gt=0)
    in_process_workers: int = Field(default=1, ge=0, le=32)
    session_max_age_seconds: int = 14 * 24 * 3600
    # Sending: the outbox, pacing and the Graph client.
    default_region: str = Field(default="ID", min_length=2, max_length=2)
    graph_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    outbox_concurrency: int = Field(default=64, ge=1, le=1000)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_lease_seconds: float = Field(default=60.0, gt=0)
    outbox_reconcile_seconds: float = Field(default=120.0, ge=0)
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)
    outbox_retry_base_seconds: float = Field(default=2.0, gt=0)
    outbox_retry_max_seconds: float = Field(default=600.0, gt=0)
    rate_limit_per_second: int = Field(default=80, ge=1, le=10_000)
    pair_rate: str = "10 per minute"
    connection_check_seconds: float = Field(default=900.0, ge=0)
    # Media: inbound files downloaded into a local directory, uploads of outbound media.
    media_dir: Path = Path("./data/media")
    media_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    media_poll_seconds: float = Field(default=1.0, gt=0)
    media_concurrency: int = Field(default=4, ge=1, le=100)
    media_lease_seconds: float = Field(default=300.0, gt=0)
    media_max_attempts: int = Field(default=8, ge=1, le=100)
    media_retry_base_seconds: float = Field(default=5.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept plain `postgresql://` / `sqlite://` URLs and pick the async driver for them."""
        if url.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url.split("://", 1)[1]
        return url

    @field_validator("pair_rate")
    @classmethod
    def _rate_readable(cls, value: str) -> str:
        """Refuse a pair rate `limits` cannot read, at start rather than at the first send."""
        from limits import parse

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate like '10 per minute': {value!r}") from exc
        return value

    @property
    def is_sqlite(self) -> bool:
        """True when the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def graph_api_url(self) -> str:
        """The Graph API root including the version, e.g. https://graph.facebook.com/v23.0."""
        return f"{self.graph_api_base_url.rstrip('/')}/{self.graph_api_version}"

    @property
    def seed_number_configured(self) -> bool:
        """True when the seed's WHATSAPP_* variables describe a number to register on start."""
        return bool(self.whatsapp_phone_number_id and self.whatsapp_access_token)

    def sqlite_path(self) -> Path | None:
        """The SQLite database file, when the database is a SQLite file."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        if not path or path.startswith(":memory:"):
            return None
        return Path(path.split("?", 1)[0])

    def check_production(self) -> None:
        """Refuse to run in production with development secrets or without Meta's app secret."""
        if self.env != "production":
            return
        problems = []
        if (
            self.secret_key.get_secret_value() == DEV_SECRET_KEY
            or len(self.secret_key.get_secret_value()) < 32
        ):
            problems.append("LAYANIFY_SECRET_KEY must be set to a random value of at least 32 characters")
        current_key = self.encryption_keys.get_secret_value().split(",", 1)[0].strip()
        if current_key == DEV_ENCRYPTION_KEY:
            problems.append(
                "LAYANIFY_ENCRYPTION_KEYS must be set (generate one with `layanify keys generate`)"
            )
        if not self.whatsapp_app_secret or not self.whatsapp_app_secret.get_secret_value():
            problems.append("WHATSAPP_APP_SECRET must be set: webhooks cannot be verified without it")
        if not self.whatsapp_verify_token or not self.whatsapp_verify_token.get_secret_value():
            problems.append("WHATSAPP_VERIFY_TOKEN must be set for Meta's webhook verification")
        if problems:
            raise ConfigurationError("Refusing to start in production: " + "; ".join(problems))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    return Settings()
