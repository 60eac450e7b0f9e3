"""How each table would be placed on a distributed PostgreSQL (Citus), declared once.

- ``distributed``: sharded by ``partner_id`` (``partners`` by its own ``id``, the same
  value), all in one co-location group, so that one partner's rows of every table live on
  one shard and a partner's transaction stays on one node. Every primary key and unique
  key includes the distribution column, every foreign key between two of them includes it
  on both sides, and the column is never NULL (Citus refuses all three otherwise).
- ``reference``: small, rarely written, copied to every node; any table may refer to it.
- ``local``: kept on the coordinator only, because it is looked up by a global identifier
  (an email address, a secret id, a session token) before any partner is known. No foreign
  key joins it to a distributed table, in either direction.

``tests/db/test_distribution.py`` holds the tables of :mod:`creditline.db.tables` to these
rules; ``docs/scaling.md`` turns them into the Citus DDL.
"""

from __future__ import annotations

from typing import Literal

TableClass = Literal["distributed", "reference", "local"]

#: The class of every table, by table name.
TABLE_CLASS: dict[str, TableClass] = {
    "accounts": "reference",
    "partners": "distributed",
    "customers": "distributed",
    "customer_search": "distributed",
    "allocation_records": "distributed",
    "usage_events": "distributed",
    "usage_daily": "distributed",
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
    "partner_purchase_policies": "distributed",
    "customer_purchase_policies": "distributed",
    "purchase_checks": "distributed",
    "customer_view_settings": "distributed",
    "customer_alarm_settings": "distributed",
    "customer_alarms": "distributed",
    "partner_top_up_rules": "distributed",
    "customer_top_up_rules": "distributed",
    "top_up_months": "distributed",
    "api_keys": "local",
    "users": "local",
    "console_sessions": "local",
    "login_attempts": "local",
    "tc3_signatures": "local",
    "rate_buckets": "local",
}

#: Why each table is in its class.
REASON: dict[str, str] = {
    "accounts": "the one UIN space of partners and customers: one short row per account, "
    "written once when an account is made, referred to by partners and customers",
    "partners": "its pool changes with every allocation, so it must sit on the partner's own "
    "shard (a reference table would write every node); sharded by id, the partner_id of "
    "every other table. The distributor/sub-reseller hierarchy (parent_id) crosses "
    "partners, so it is no foreign key",
    "customers": "a partner's customers, changed by every allocation and usage batch",
    "customer_search": "what the customers search looks in, one row per customer, beside "
    "it on the partner's shard (kept by triggers on customers)",
    "allocation_records": "a partner's ledger; a pool allocation names another partner "
    "(sub_partner_id), which is therefore no foreign key",
    "usage_events": "the largest table: a partner's customers' charges and refunds",
    "usage_daily": "a partner's customers' counted usage per day, written by the usage "
    "batch that counts the events (on their shard) and read for the forecasts",
    "alarms": "a partner's alarms, raised in the transaction of the change",
    "outbox_events": "written in the transaction of its cause, on the cause's shard",
    "idempotent_requests": "written in the transaction of the write it guards; a platform "
    "key's rows carry partner_id 0 (PLATFORM_PARTNER_ID)",
    "credit_applications": "a partner's applications; the decider (a distributor) and the "
    "approval's record (the distributor's pool allocation) cross partners, so they are no "
    "foreign keys",
    "notification_settings": "one row per partner",
    "webhook_endpoints": "a partner's endpoints",
    "deliveries": "a partner's outbox events expanded per target",
    "delivery_attempts": "the log of a partner's deliveries",
    "partner_notices": "a partner's message centre",
    "audit_events": "appended in the transaction of the write it describes; the platform's "
    "own rows carry partner_id 0 (PLATFORM_PARTNER_ID)",
    "partner_purchase_policies": "one row per partner: its default purchase policy",
    "customer_purchase_policies": "a partner's customers' own purchase policies",
    "purchase_checks": "every purchase check a partner's customers were answered",
    "customer_view_settings": "one row per partner: what its customers see and receive",
    "customer_alarm_settings": "a partner's per-customer alarm overrides",
    "customer_alarms": "the copies of a partner's alarms its customers received",
    "partner_top_up_rules": "one row per partner: its default top-up rule",
    "customer_top_up_rules": "a partner's customers' own top-up rules, read by the usage "
    "batch that may trigger them",
    "top_up_months": "a partner's customers' top-ups per month, written in the transaction "
    "of the top-up (on the partner's shard, beside its pool and customer rows)",
    "api_keys": "looked up by secret id on every request, before the partner is known",
    "users": "looked up by email address at login; platform admins have no partner",
    "console_sessions": "looked up by the cookie's token hash on every page",
    "login_attempts": "counted by email address and client, partner unknown",
    "tc3_signatures": "looked up by signature hash, before the partner is known",
    "rate_buckets": "counted by an API key's secret id on its requests; no partner data",
}

#: The distribution column of a distributed table: ``partner_id``, except ``partners``.
DISTRIBUTION_COLUMN: dict[str, str] = {
    name: "id" if name == "partners" else "partner_id"
    for name, kind in TABLE_CLASS.items()
    if kind == "distributed"
}

#: ``partner_id`` of a distributed row that belongs to no partner: what a platform key or
#: a platform admin did (a distribution column is never NULL). No partner has UIN 0
#: (UINs start at ``tables.FIRST_UIN``); Python reads it back as None.
PLATFORM_PARTNER_ID = 0
