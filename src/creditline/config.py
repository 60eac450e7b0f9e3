"""Settings from the environment (``CREDITLINE_*``), with the embedded defaults."""

from __future__ import annotations

from functools import lru_cache

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
    #: Milliseconds SQLite waits for a lock held by another connection before giving up.
    sqlite_busy_timeout_ms: int = 10_000
    #: Server key that encrypts API secrets at rest (any long random text). Required on
    #: PostgreSQL; on SQLite, when unset, one is generated once into a file readable only by
    #: its owner beside the database (``<database>.secret-key``).
    secret_key: str | None = None
    #: REST limits: largest request body, and requests per minute per API key (0: no limit).
    api_max_body_bytes: int = 2_000_000
    api_rate_limit_per_minute: int = 6_000


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
