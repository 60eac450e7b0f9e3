"""Migration 0012 moves a database with data in every partner table to the keys that
distribute, on both engines, and keeps every row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, func, inspect, select, text
from tests.conftest import database_at

from creditline.db import transaction
from creditline.db.migrate import upgrade
from creditline.db.tables import AuditEvent, Base, IdempotentRequest, UsageEvent
from creditline.ledger.verify import verify

DIST, SUB, CUSTOMER = 100_000_000_001, 100_000_000_002, 100_000_000_003
AT = "2026-11-01 00:00:00"


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0011(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own, migrated to 0011 only."""
    with database_at(request.param, "0011", tmp_path) as engine:
        yield engine


ROWS = [
    "INSERT INTO accounts (uin, kind, created_at) VALUES"
    f" ({DIST}, 'partner', :at), ({SUB}, 'partner', :at), ({CUSTOMER}, 'customer', :at)",
    "INSERT INTO partners (id, name, kind, parent_id, pool_total, pool_allocated,"
    " pool_from_distributor, thresholds, created_at) VALUES"
    f" ({DIST}, 'D', 'distributor', NULL, 100000, 30000, 0, '[75, 90, 100]', :at),"
    f" ({SUB}, 'S', 'sub-reseller', {DIST}, 20000, 0, 20000, '[75, 90, 100]', :at)",
    "INSERT INTO customers (uin, partner_id, name, type, email, mobile, remark,"
    " identity_status, associated_at, total_credit, consumed, fired_thresholds) VALUES"
    f" ({CUSTOMER}, {DIST}, 'C', 'personal', '', '', '', 0, :at, 10000, 9000, '[75, 90]')",
    "INSERT INTO allocation_records (id, partner_id, kind, customer_uin, sub_partner_id,"
    " operator, change, total_after, available_after, remark, source, created_at) VALUES"
    f" (1, {DIST}, 'grant', NULL, NULL, 'ops', 100000, 100000, 100000, '', 'cli', :at),"
    f" (2, {DIST}, 'pool_allocation', NULL, {SUB}, 'ops', 20000, 20000, 20000, '', 'cli', :at),"
    f" (3, {DIST}, 'allocation', {CUSTOMER}, NULL, 'ops', 10000, 10000, 10000, '', 'cli', :at)",
    "INSERT INTO usage_events (id, event_id, partner_id, customer_uin, product, kind,"
    " list_amount, voucher_amount, counted, occurred_at, ingested_at) VALUES"
    f" (1, 'ev-1', {DIST}, {CUSTOMER}, 'cvm', 'charge', 9000, 0, 9000, :at, :at)",
    "INSERT INTO alarms (id, partner_id, customer_uin, threshold, thresholds_reached,"
    " total_credit, consumed, cause, created_at) VALUES"
    f" (1, {DIST}, {CUSTOMER}, 90, '[75, 90]', 10000, 9000, 'usage', :at)",
    "INSERT INTO outbox_events (id, partner_id, type, payload, created_at) VALUES"
    f" (1, {DIST}, 'alarm.raised', '{{}}', :at)",
    "INSERT INTO webhook_endpoints (id, partner_id, url, event_types, description, secret,"
    " enabled, disabled_reason, created_at) VALUES"
    f" (1, {DIST}, 'https://example.com/h', '[]', '', 'x', true, '', :at)",
    "INSERT INTO deliveries (id, partner_id, event_id, channel, target, endpoint_id, status,"
    " attempts, next_attempt_at, give_up_at, last_error, created_at) VALUES"
    f" (1, {DIST}, 1, 'webhook', 'webhook:1', 1, 'pending', 1, :at, :at, '', :at)",
    "INSERT INTO delivery_attempts (id, partner_id, delivery_id, attempted_at, succeeded,"
    f" latency_ms, error) VALUES (1, {DIST}, 1, :at, false, 12, 'timeout')",
    "INSERT INTO partner_notices (id, partner_id, kind, message, endpoint_id, created_at)"
    f" VALUES (1, {DIST}, 'endpoint_disabled', 'm', 1, :at)",
    "INSERT INTO api_keys (id, secret_id, secret_encrypted, principal, partner_id,"
    " customer_uin, role, name, created_at) VALUES"
    " (1, 'AKplatform', 'x', 'platform', NULL, NULL, NULL, 'feed', :at),"
    f" (2, 'AKpartner', 'x', 'partner', {DIST}, NULL, 'admin', 'ops', :at)",
    "INSERT INTO idempotent_requests (id, api_key_id, partner_id, key, request_hash,"
    " status_code, response_body, created_at) VALUES"
    " (1, 1, NULL, 'k', 'h', 200, '{}', :at),"
    f" (2, 2, {DIST}, 'k', 'h', 200, '{{}}', :at)",
    "INSERT INTO credit_applications (id, partner_id, decider_id, amount, reason, status,"
    " requested_by, created_at, decision_note, record_id) VALUES"
    f" (1, {SUB}, {DIST}, 20000, '', 'approved', 's@example.com', :at, '', 2)",
    "INSERT INTO users (id, partner_id, email, password_hash, role, created_at) VALUES"
    f" (1, {DIST}, 'd@example.com', 'x', 'admin', :at),"
    " (2, NULL, 'p@example.com', 'x', 'platform', :at)",
    "INSERT INTO console_sessions (token_hash, user_id, partner_id, created_at, expires_at)"
    f" VALUES ('t', 1, {DIST}, :at, :at)",
    "INSERT INTO notification_settings (partner_id, email_recipients, email_customer,"
    f" updated_at) VALUES ({DIST}, '[]', false, :at)",
    "INSERT INTO audit_events (id, at, source, principal, partner_id, source_ip, request_id,"
    " action, object, outcome) VALUES"
    " (1, :at, 'cli', 'cli:ops', NULL, '', '', 'grant', '', 'ok'),"
    f" (2, :at, 'api', 'api-key:AKpartner', {DIST}, '', '', 'allocate', '', 'ok')",
]


def _counts(c: Connection) -> dict[str, int]:
    """Rows per table, of the tables 0011 has (later revisions add more)."""
    present = set(inspect(c).get_table_names())
    return {
        name: c.execute(select(func.count()).select_from(table)).scalar_one()
        for name, table in Base.metadata.tables.items()
        if name in present
    }


def test_every_row_survives_the_new_keys(at_0011: Engine) -> None:
    with at_0011.begin() as c:
        for statement in ROWS:
            c.execute(text(statement), {"at": AT})
        before = _counts(c)
        customers = c.execute(text("SELECT * FROM customers")).mappings().all()
    upgrade(at_0011, "0012")
    with at_0011.connect() as c:
        assert _counts(c) == before
        assert c.execute(text("SELECT * FROM customers")).mappings().all() == customers
        # The platform's rows: partner_id 0 in the database.
        stored = c.execute(text("SELECT partner_id FROM audit_events ORDER BY id")).scalars().all()
        assert stored == [0, DIST]
    upgrade(at_0011)
    with at_0011.connect() as c:
        # The primary keys are the declared ones (Alembic's comparison leaves them out).
        if at_0011.dialect.name == "postgresql":
            for name, table in Base.metadata.tables.items():
                declared = [col.name for col in table.primary_key.columns]
                assert inspect(c).get_pk_constraint(name)["constrained_columns"] == declared
    with transaction(at_0011) as s:
        assert verify(s) == []
        # ... and read back as no partner.
        platform = s.execute(select(AuditEvent).where(AuditEvent.id == 1)).scalar_one()
        assert platform.partner_id is None
        kept = s.execute(select(IdempotentRequest).order_by(IdempotentRequest.id)).scalars()
        assert [r.partner_id for r in kept] == [None, DIST]


def test_an_event_id_is_unique_per_partner_after_the_upgrade(at_0011: Engine) -> None:
    """What the new key means: another partner may hold the same event id; the same
    partner may not."""
    with at_0011.begin() as c:
        for statement in ROWS[:5]:
            c.execute(text(statement), {"at": AT})
        c.execute(
            text(
                "INSERT INTO accounts (uin, kind, created_at)"
                " VALUES (100000000009, 'customer', :at)"
            ),
            {"at": AT},
        )
        c.execute(
            text(
                "INSERT INTO customers (uin, partner_id, name, type, email, mobile, remark,"
                " identity_status, associated_at, total_credit, consumed, fired_thresholds)"
                f" VALUES (100000000009, {SUB}, 'C2', 'personal', '', '', '', 0, :at, 0, 0, '[]')"
            ),
            {"at": AT},
        )
    upgrade(at_0011)
    event = {
        "event_id": "ev-1",
        "customer_uin": 100000000009,
        "partner_id": SUB,
        "product": "cvm",
        "kind": "charge",
        "list_amount": 1,
        "voucher_amount": 0,
        "counted": 1,
        "occurred_at": AT,
        "ingested_at": AT,
    }
    columns = ", ".join(event)
    values = ", ".join(f":{k}" for k in event)
    with at_0011.begin() as c:
        c.execute(text(f"INSERT INTO usage_events ({columns}) VALUES ({values})"), event)
    with pytest.raises(Exception, match=r"(?i)unique"), at_0011.begin() as c:
        c.execute(text(f"INSERT INTO usage_events ({columns}) VALUES ({values})"), event)
    with transaction(at_0011) as s:
        assert s.execute(select(func.count()).select_from(UsageEvent)).scalar_one() == 2
