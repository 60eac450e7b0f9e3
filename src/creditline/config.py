"""Settings from the environment (``CREDITLINE_*``), with the embedded defaults."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything creditline reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="CREDITLINE_", extra="ignore")

    #: SQLAlchemy URL. ``sqlite:///creditline.db`` (the working directory) by default;
    #: ``postgresql://user@host/db`` for production (driven by psycopg 3).
    database_url: str = "sqlite:///creditline.db"
    #: Connections kept open per process on PostgreSQL (the pool's size) and allowed beyond it.
    pool_size: int = 10
    pool_overflow: int = 10
    #: Usage batches one process writes at once (0: no limit). A batch holds most of its
    #: customers' rows locked from its consumption's update to its commit, so batches
    #: beyond a few only wait for each other in PostgreSQL, holding their transactions
    #: (and the row versions they still see) open; here they wait in the process, before
    #: their transaction begins, and decode and check their records meanwhile. Two at
    #: once write faster than one (one's statements leave the database idle between its
    #: round trips) and than three or four (docs/benchmarks.md runs 18 and 19): two per
    #: process, as ``creditline serve`` runs one; with ``--workers 2``, set 1.
    usage_writers: int = 2
    #: Milliseconds SQLite waits for a lock held by another connection before giving up.
    sqlite_busy_timeout_ms: int = 10_000
    #: Server key that encrypts API secrets at rest (any long random text). Required on
    #: PostgreSQL; on SQLite, when unset, one is generated once into a file readable only by
    #: its owner beside the database (``<database>.secret-key``).
    secret_key: str | None = None
    #: REST limits: largest request body, and requests per minute per API key (0: no limit).
    api_max_body_bytes: int = 2_000_000
    api_rate_limit_per_minute: int = 6_000

    #: Outgoing mail for alarm emails. No host means no email is sent (webhooks and the
    #: message centre still work).
    smtp_host: str = ""
    smtp_port: int = 25
    #: ``none`` (plain), ``starttls`` (upgrade after connecting) or ``tls`` (implicit TLS).
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "creditline@localhost"
    #: Seconds an SMTP conversation may take before the attempt counts as failed.
    smtp_timeout_s: float = 10.0
    #: Base URL of the web console, for links in emails (customer at ``/customers/<uin>``).
    public_url: str = "http://127.0.0.1:8000"
    #: Seconds a webhook POST may take before the attempt counts as failed.
    webhook_timeout_s: float = 10.0
    #: Let webhooks reach private, loopback, link-local and other non-public addresses.
    #: Off: an endpoint must point at the public internet, checked when it is added and
    #: again on every delivery. For tests and local development only.
    webhook_allow_private_targets: bool = False


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()


def app_settings(app: Any) -> Settings:
    """The settings an ASGI app was made with (``create_app`` keeps them in its state),
    else the environment's."""
    settings = getattr(app.state, "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()
