"""Which tables a distributed database (Citus) would spread across its nodes, and how.

Each table has exactly one class:

- ``distributed``: partner data, sharded by the partner (``partner_id``; ``partners`` by
  its own ``id``, the value every ``partner_id`` refers to). Every statement on such a
  table names one partner, so it runs on that partner's shard alone.
- ``reference``: small or shared by every partner, copied to every node.
- ``local``: stays on the coordinator; looked up by a global identifier (a login address,
  an API key's secret id, a session token), never joined with partner data.
"""

from __future__ import annotations

from typing import Literal

TableClass = Literal["distributed", "reference", "local"]

TABLE_CLASS: dict[str, TableClass] = {
    # One UIN space for partners and customers; every node checks UINs against it.
    "accounts": "reference",
    "partners": "distributed",
    "customers": "distributed",
    "allocation_records": "distributed",
    "usage_events": "distributed",
    "alarms": "distributed",
    "outbox_events": "distributed",
    "idempotent_requests": "distributed",
    "credit_applications": "distributed",
    "notification_settings": "distributed",
    "webhook_endpoints": "distributed",
    "deliveries": "distributed",
    "delivery_attempts": "distributed",
    "partner_notices": "distributed",
    "audit_events": "distributed",
    # The partner's purchase policies and every purchase check it answered.
    "partner_purchase_policies": "distributed",
    "customer_purchase_policies": "distributed",
    "purchase_checks": "distributed",
    # What the partner's customers see and receive, and the alarms they received.
    "customer_view_settings": "distributed",
    "customer_alarm_settings": "distributed",
    "customer_alarms": "distributed",
    # Found by a global identifier before the partner is known.
    "api_keys": "local",
    "tc3_signatures": "local",
    "users": "local",
    "login_attempts": "local",
    "console_sessions": "local",
    # Rate-limit buckets, by an API key's global secret id (no partner data).
    "rate_buckets": "local",
}
