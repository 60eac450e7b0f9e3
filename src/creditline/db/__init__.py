"""Storage: engine, transactions, tables and migrations."""

from creditline.db.engine import (
    is_postgres,
    is_unavailable,
    make_engine,
    read_transaction,
    transaction,
)

__all__ = ["is_postgres", "is_unavailable", "make_engine", "read_transaction", "transaction"]
