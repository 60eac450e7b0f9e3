"""The event types of the outbox, as delivery knows them. The core writes the events
(:mod:`creditline.ledger.outbox`); notifications only read and deliver them."""

from __future__ import annotations

from creditline.ledger.outbox import (
    ALLOCATION_RECORDED,
    EVENT_TYPES,
    FORECAST_EXHAUSTION,
    THRESHOLD_REACHED,
    TOP_UP_REFUSED,
)

__all__ = [
    "ALLOCATION_RECORDED",
    "EVENT_TYPES",
    "FORECAST_EXHAUSTION",
    "THRESHOLD_REACHED",
    "TOP_UP_REFUSED",
]
