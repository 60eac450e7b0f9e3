"""Storage: engine, transactions, tables and migrations."""

from creditline.db.engine import (
    is_conflict,
    is_postgres,
    is_unavailable,
    make_engine,
    pipelined,
    read_transaction,
    sqlstate,
    transaction,
)

__all__ = [
    "is_conflict",
    "is_postgres",
    "is_unavailable",
    "make_engine",
    "pipelined",
    "read_transaction",
    "sqlstate",
    "transaction",
]
