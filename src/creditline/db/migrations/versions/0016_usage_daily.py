"""usage_daily and the forecast columns: burn rate, projected exhaustion, forecast alarms

``usage_daily`` holds each customer's counted usage per UTC day, kept by usage ingestion
from now on and filled here from the usage events already stored. The customer row gains
its forecast (burn rate, the day it was computed for, its first day of usage, and
``runs_out_day``, generated from them and indexed for the sort by "runs out") and its
forecast alarm state; the partner gains its default forecast alarm window (7 days).
Forecasts are computed by the next usage batch or ``creditline forecasts refresh``: the
first day of usage is filled here so that the history is known. A webhook endpoint that
was subscribed to every event type there was also receives the new
``credit.forecast_exhaustion`` (one subscribed to a chosen few keeps its choice).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

RUNS_OUT = (
    "CASE WHEN burn_rate > 0 THEN forecast_day + CASE WHEN total_credit - consumed > 0 "
    "THEN (total_credit - consumed + burn_rate - 1) / burn_rate ELSE 0 END ELSE NULL END"
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "usage_daily",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_uin", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("counted", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id", "customer_uin"],
            ["customers.partner_id", "customers.uin"],
            name=op.f("fk_usage_daily_partner_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_usage_daily_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("partner_id", "customer_uin", "day", name=op.f("pk_usage_daily")),
    )
    # The UTC day of each event, whatever the connection's time zone.
    day = "date(occurred_at)" if sqlite else "(occurred_at AT TIME ZONE 'UTC')::date"
    op.execute(
        "INSERT INTO usage_daily (partner_id, customer_uin, day, counted) "
        f"SELECT partner_id, customer_uin, {day}, SUM(counted) FROM usage_events "
        f"GROUP BY partner_id, customer_uin, {day}"
    )
    op.add_column(
        "partners",
        sa.Column("forecast_days", sa.Integer(), server_default="7", nullable=False),
    )
    for column in (
        sa.Column("burn_rate", sa.BigInteger(), nullable=True),
        sa.Column("forecast_day", sa.Integer(), nullable=True),
        sa.Column("usage_since", sa.Integer(), nullable=True),
        sa.Column("forecast_days", sa.Integer(), nullable=True),
        sa.Column("forecast_fired", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("forecast_alarm_day", sa.Integer(), nullable=True),
    ):
        op.add_column("customers", column)
    if sqlite:
        # A line break before the expression: see 0011.
        op.execute(
            "ALTER TABLE customers ADD COLUMN runs_out_day BIGINT GENERATED ALWAYS AS"
            f"\n({RUNS_OUT})"
        )
    else:
        op.add_column(
            "customers", sa.Column("runs_out_day", sa.BigInteger(), sa.Computed(RUNS_OUT))
        )
    op.create_index(
        "ix_customers_partner_id_runs_out_day", "customers", ["partner_id", "runs_out_day"]
    )
    # The first day of usage, in days since 1970-01-01.
    first = (
        "CAST(julianday(MIN(d.day)) - julianday('1970-01-01') AS INTEGER)"
        if sqlite
        else "MIN(d.day) - DATE '1970-01-01'"
    )
    op.execute(
        f"UPDATE customers SET usage_since = (SELECT {first} FROM usage_daily d "
        "WHERE d.partner_id = customers.partner_id AND d.customer_uin = customers.uin)"
    )
    _subscriptions(_subscribe)


_OLD_TYPES = {"credit.threshold_reached", "credit.allocation_recorded"}
_NEW_TYPE = "credit.forecast_exhaustion"
_endpoints = sa.table(
    "webhook_endpoints",
    sa.column("partner_id", sa.BigInteger()),
    sa.column("id", sa.BigInteger()),
    sa.column("event_types", sa.JSON()),
)


def _subscriptions(change: Any) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_endpoints.c.partner_id, _endpoints.c.id, _endpoints.c.event_types)
    ).all()
    for partner_id, endpoint_id, types in rows:
        changed = change(list(types or []))
        if changed is not None:
            bind.execute(
                _endpoints.update()
                .where(_endpoints.c.partner_id == partner_id, _endpoints.c.id == endpoint_id)
                .values(event_types=changed)
            )


def _subscribe(types: list[str]) -> list[str] | None:
    return [*types, _NEW_TYPE] if set(types) >= _OLD_TYPES and _NEW_TYPE not in types else None


def _unsubscribe(types: list[str]) -> list[str] | None:
    return [t for t in types if t != _NEW_TYPE] if _NEW_TYPE in types else None


def downgrade() -> None:
    _subscriptions(_unsubscribe)
    op.drop_index("ix_customers_partner_id_runs_out_day", table_name="customers")
    # Not a batch on SQLite (see 0011): SQLite (3.35+) drops a column in place.
    for name in (
        "runs_out_day",
        "forecast_alarm_day",
        "forecast_fired",
        "forecast_days",
        "usage_since",
        "forecast_day",
        "burn_rate",
    ):
        op.drop_column("customers", name)
    op.drop_column("partners", "forecast_days")
    op.drop_table("usage_daily")
