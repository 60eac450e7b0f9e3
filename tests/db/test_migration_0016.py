"""Migration 0016 fills the daily totals and each customer's first day of usage from the
usage events already stored, and subscribes endpoints that took every event type to the
new forecast alarms; its downgrade undoes both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, select, text
from tests.conftest import database_at

from creditline.db import transaction
from creditline.db.migrate import alembic_config, upgrade
from creditline.db.tables import Customer, UsageDaily, WebhookEndpoint
from creditline.ledger import forecast

PARTNER, C1, C2 = 100_000_000_001, 100_000_000_002, 100_000_000_003
AT = "2026-11-01 00:00:00"

ROWS = [
    "INSERT INTO accounts (uin, kind, created_at) VALUES"
    f" ({PARTNER}, 'partner', :at), ({C1}, 'customer', :at), ({C2}, 'customer', :at)",
    "INSERT INTO partners (id, name, kind, parent_id, pool_total, pool_allocated,"
    " pool_from_distributor, thresholds, created_at) VALUES"
    f" ({PARTNER}, 'P', 'reseller', NULL, 100000, 0, 0, '[75, 90, 100]', :at)",
    "INSERT INTO customers (uin, partner_id, name, type, email, mobile, remark,"
    " identity_status, associated_at, total_credit, consumed, fired_thresholds) VALUES"
    f" ({C1}, {PARTNER}, 'A', 'personal', '', '', '', 0, :at, 0, 1400, '[]'),"
    f" ({C2}, {PARTNER}, 'B', 'personal', '', '', '', 0, :at, 0, 0, '[]')",
    "INSERT INTO usage_events (id, event_id, partner_id, customer_uin, product, kind,"
    " list_amount, voucher_amount, counted, occurred_at, ingested_at) VALUES"
    f" (1, 'e1', {PARTNER}, {C1}, 'cvm', 'charge', 1000, 100, 900, '2026-11-02 10:00:00', :at),"
    f" (2, 'e2', {PARTNER}, {C1}, 'cvm', 'charge', 600, 0, 600, '2026-11-02 23:59:59', :at),"
    f" (3, 'e3', {PARTNER}, {C1}, 'cvm', 'refund', 100, 0, -100, '2026-11-05 00:00:00', :at)",
    "INSERT INTO webhook_endpoints (id, partner_id, url, event_types, description, secret,"
    " enabled, disabled_reason, created_at) VALUES"
    f" (1, {PARTNER}, 'https://example.com/a',"
    " '[\"credit.threshold_reached\", \"credit.allocation_recorded\"]', '', 'x', true, '', :at),"
    f" (2, {PARTNER}, 'https://example.com/b', '[\"credit.allocation_recorded\"]', '', 'x',"
    " true, '', :at)",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0015(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with database_at(request.param, "0015", tmp_path) as engine:
        yield engine


def test_0016_backfills_daily_totals_and_subscriptions(at_0015: Engine) -> None:
    with at_0015.begin() as connection:
        for statement in ROWS:
            connection.execute(text(statement), {"at": AT})
    upgrade(at_0015, "0016")
    with transaction(at_0015) as s:
        daily = s.execute(
            select(UsageDaily.customer_uin, UsageDaily.day, UsageDaily.counted).order_by(
                UsageDaily.customer_uin, UsageDaily.day
            )
        ).all()
        assert [tuple(r) for r in daily] == [
            (C1, date(2026, 11, 2), 1500),
            (C1, date(2026, 11, 5), -100),
        ]
        since = dict(s.execute(select(Customer.uin, Customer.usage_since)).tuples().all())
        assert since == {C1: forecast.day_number(date(2026, 11, 2)), C2: None}
        first = s.execute(select(Customer).where(Customer.uin == C1)).scalar_one()
        assert (first.burn_rate, first.forecast_fired, first.forecast_days) == (None, False, None)
        types = dict(
            s.execute(select(WebhookEndpoint.id, WebhookEndpoint.event_types)).tuples().all()
        )
        assert types == {
            1: [
                "credit.threshold_reached",
                "credit.allocation_recorded",
                "credit.forecast_exhaustion",
            ],
            2: ["credit.allocation_recorded"],
        }
        assert s.execute(text("SELECT forecast_days FROM partners")).scalar_one() == 7
    config = alembic_config()
    with at_0015.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0015")
    with at_0015.connect() as connection:
        endpoint_types = connection.execute(
            text("SELECT event_types FROM webhook_endpoints WHERE id = 1")
        ).scalar_one()
        assert "forecast_exhaustion" not in str(endpoint_types)
