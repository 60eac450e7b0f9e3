"""Storage: engine, transactions, tables and migrations."""

from creditline.db.engine import is_postgres, make_engine, transaction

__all__ = ["is_postgres", "make_engine", "transaction"]
