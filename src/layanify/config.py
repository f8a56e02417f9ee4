"""Settings, read from the environment, `.env` and `.env.local` (the seed's file)."""

from __future__ import annotations

import base64
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from layanify.proxies import Network, parse_networks

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - a placeholder production refuses
# 32 zero-ish bytes, base64: good enough to develop with, refused in production.
DEV_ENCRYPTION_KEY = "dev:" + base64.b64encode(b"layanify-dev-key-not-for-prod!!!").decode()
META_MAX_WEBHOOK_BYTES = 3 * 1024 * 1024
API_MAX_BODY_BYTES = 1024 * 1024


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
    # Message content encrypted at rest for new workspaces (owners change it for theirs); auto = on in
    # production. `off` also leaves raw webhook bodies unsealed (docs/security.md).
    content_encryption: Literal["auto", "on", "off"] = "auto"
    sentry_dsn: SecretStr | None = None
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    host: str = "127.0.0.1"
    port: int = 8000
    # Where Meta and browsers reach this server (https in production); the webhook URL is built on it.
    public_base_url: str | None = None
    # Edge security: comma-separated CIDRs. Proxies whose X-Forwarded-For/-Proto are believed, and the
    # only networks whose webhook POSTs are accepted (empty: any, the signature still applies).
    trusted_proxies: Annotated[list[Network], NoDecode] = Field(default_factory=list)
    webhook_allowed_ips: Annotated[list[Network], NoDecode] = Field(default_factory=list)
    # Largest JSON body of /api/v1/* (media uploads have their own limit).
    api_max_body_bytes: int = Field(default=API_MAX_BODY_BYTES, ge=1024)
    # Webhook ingestion and processing.
    webhook_max_body_bytes: int = META_MAX_WEBHOOK_BYTES
    webhook_ingest_batch: int = Field(default=512, ge=1, le=10_000)
    # Who commits webhook receipts: a child process of the server (`process`), the server itself
    # (`in-process`), or `auto`: the child on SQLite where this process may use two cores or more, the
    # server itself on PostgreSQL, where the child measured no faster (decision 39).
    webhook_writer: Literal["auto", "process", "in-process"] = "auto"
    worker_batch_size: int = Field(default=100, ge=1, le=1000)
    # On SQLite (separate workers always, in-process ones while webhooks arrive) a batch keeps to about
    # this long, since the web UI's and API's writes wait for SQLite's one write lock (0: full batches).
    worker_batch_budget_ms: float = Field(default=40.0, ge=0, le=10_000)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    worker_coalesce_seconds: float = Field(default=0.05, ge=0, le=5)
    worker_max_defer_seconds: float = Field(default=1.0, ge=0, le=60)
    # While webhooks arrive more than twice as fast as an in-process worker processes events, its batches
    # take at most this share of the time; the rest is left to the receipts (1: no limit; decision 42).
    worker_overload_share: float = Field(default=0.5, gt=0, le=1)
    worker_max_attempts: int = Field(default=8, ge=1)
    worker_retry_base_seconds: float = Field(default=2.0, gt=0)
    in_process_workers: int = Field(default=1, ge=0, le=32)
    session_max_age_seconds: int = 14 * 24 * 3600
    # Accounts: idle sessions end, repeated failed logins lock the email, passwords have a policy.
    session_idle_seconds: int = Field(default=8 * 3600, ge=60)
    password_min_length: int = Field(default=12, ge=8, le=128)
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    login_lockout_seconds: int = Field(default=15 * 60, ge=1)
    login_ip_max_failures: int = Field(default=30, ge=1, le=100_000)
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

    @field_validator("trusted_proxies", "webhook_allowed_ips", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        """Read `10.0.0.0/8, 2001:db8::/32, 203.0.113.7` (a comma-separated list) as networks."""
        if isinstance(value, str):
            return parse_networks(value)
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, url: str | None) -> str | None:
        """An absolute http(s) URL without a trailing slash, e.g. https://wa.example.com."""
        if url is None or not url.strip():
            return None
        url = url.strip().rstrip("/")
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
            raise ValueError(f"not an absolute http(s) URL like https://wa.example.com: {url!r}")
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
    def webhook_url(self) -> str | None:
        """The callback URL to give Meta, from the public base URL (None until that is set)."""
        return f"{self.public_base_url}/api/webhooks/whatsapp" if self.public_base_url else None

    @property
    def new_workspaces_encrypt_content(self) -> bool:
        """Whether a new workspace starts with its message content encrypted at rest."""
        if self.content_encryption == "auto":
            return self.env == "production"
        return self.content_encryption == "on"

    @property
    def graph_api_url(self) -> str:
        """The Graph API root including the version, e.g. https://graph.facebook.com/v23.0."""
        return f"{self.graph_api_base_url.rstrip('/')}/{self.graph_api_version}"

    @property
    def seed_number_configured(self) -> bool:
        """True when the seed's WHATSAPP_* variables describe a number to register on start."""
        return bool(self.whatsapp_phone_number_id and self.whatsapp_access_token)

    def webhook_writer_process(self) -> bool:
        """True when webhook receipts should be committed by a child process of the server."""
        if self.webhook_writer == "auto":
            return self.is_sqlite and usable_cpus() >= 2
        return self.webhook_writer == "process"

    def sqlite_path(self) -> Path | None:
        """The SQLite database file, when the database is a SQLite file."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        if not path or path.startswith(":memory:"):
            return None
        return Path(path.split("?", 1)[0])

    def check_production(self) -> None:
        """Refuse to run in production with development secrets, without Meta's app secret or https."""
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
        if not (self.public_base_url or "").lower().startswith("https://"):
            problems.append(
                "LAYANIFY_PUBLIC_BASE_URL must be the https:// address Meta and browsers use "
                "(Meta only delivers webhooks over HTTPS; logins and tokens must not cross in clear text)"
            )
        if problems:
            raise ConfigurationError("Refusing to run in production: " + "; ".join(problems))


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it, as on Linux; else all)."""
    if hasattr(os, "sched_getaffinity"):  # not on macOS
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    return Settings()
