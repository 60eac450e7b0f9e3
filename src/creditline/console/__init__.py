"""The partner console: server-rendered pages over the ledger core (Partner Center)."""

from creditline.console.site import install

__all__ = ["install"]
