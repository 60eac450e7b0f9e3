"""PostgreSQL's allocation as one statement (served by api/fast.py for REST and by
tc3/fast.py for the Tencent-compatible action): the ledger's guarded UPDATEs and INSERT,
the answer, the idempotency key or the request's signature claimed with it, the outbox
event and the audit row, each the statement its module owns, with the JSON each module
writes in Python built in SQL (creditline.db.json_sql) — so that an allocation is one
round trip and its own transaction, with nothing to begin or commit."""

from __future__ import annotations

import functools
from typing import Any, Literal

from sqlalchemy import (
    CTE,
    JSON,
    BigInteger,
    ColumnElement,
    Numeric,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    null,
    select,
    true,
)
from sqlalchemy.sql import Executable

from creditline import audit
from creditline.auth import idempotency, keys, signatures
from creditline.db import json_sql
from creditline.db.tables import Customer, OutboxEvent, Partner
from creditline.ledger import alarms, credit, outbox, records

#: The SQLSTATE of ``creditline_refuse`` (migration 0018): the statement is undone whole.
REFUSED = "CL001"


#: What a one-statement allocation claims with its write: nothing, the caller's
#: idempotency key (REST), or its request's signature (the Tencent-compatible endpoint).
Claim = Literal["idempotency", "signature"] | None
#: Which answer it builds: REST's (``CreditChangeOut``) or the Tencent action's fields.
Answer = Literal["rest", "tencent"]


def one_statement(*, claim: Claim, answer: Answer = "rest") -> Executable:
    """PostgreSQL's allocation as one statement: the ledger's guarded UPDATEs and the
    record's INSERT (:func:`credit.combined_ctes`, the key checked live and what
    ``claim`` names unused), the answer (``answer``: REST's, or the Tencent action's)
    built from their rows, the idempotency key or the signature claimed with that answer,
    the outbox event and the audit row — each the INSERT its module owns, with the JSON
    its module writes in Python built in SQL (creditline.db.json_sql). The customer
    changes only when the alarm rule raises no alarm (re-arming what it falls below; an
    alarm is the ordinary path's to raise). Where the pool gave and something after
    refused (the customer, a claim taken meanwhile), the statement raises
    :data:`REFUSED` and nothing of it stays."""
    amount = bindparam("credit_amount", type_=BigInteger)

    def fired_after(default: Any) -> ColumnElement[Any]:
        return alarms.fired_after_sql(
            thresholds=func.coalesce(Customer.thresholds, default),
            total_credit=Customer.total_credit + amount,
            consumed=Customer.consumed,
            fired=Customer.fired_thresholds,
        )

    # The pool gives only where the customer, as the statement first sees it, would take
    # it without an alarm to raise, the key is live and the claim unused: the common
    # refusals change nothing and raise nothing. The customer's own UPDATE checks again
    # under its row lock (a concurrent change between the two is refused by raising), and
    # re-arms the thresholds it falls below. The checks are a row of their own (``seen``,
    # with the partner's thresholds read apart from the row the pool's UPDATE locks),
    # joined to that UPDATE: an allocation that waited for a concurrent one's lock on the
    # pool, every allocation's row, then rechecks that row alone with the row ``seen``
    # gave, where a condition inside the UPDATE would be computed all over again.
    partner = Partner.__table__.alias("partner_seen")
    thresholds_seen = (
        select(partner.c.thresholds).where(partner.c.id == credit.PARTNER).scalar_subquery()
    )
    checks = [keys.LIVE_KEY, *credit.customer_guard(), fired_after(thresholds_seen).is_not(None)]
    if claim == "idempotency":
        checks.append(idempotency.UNUSED)
    elif claim == "signature":
        checks.append(signatures.UNUSED)
    seen = (
        select(true().label("ok"))
        .select_from(Customer)
        .where(*checks)
        .cte("seen")
        .prefix_with("MATERIALIZED")
    )
    pool, customer, record = credit.combined_ctes(
        credit.Requirement(seen.c.ok, {}),
        customer_also=lambda pool: fired_after(select(pool.c.thresholds).scalar_subquery()).is_not(
            None
        ),
        customer_sets=lambda pool: {
            "fired_thresholds": fired_after(select(pool.c.thresholds).scalar_subquery())
        },
    )
    text_param = functools.partial(bindparam, type_=Text)
    if answer == "rest":
        body = func.json_build_object(
            "record",
            records.payload_sql(record.c, created_at=text_param("fast_created_z")),
            "customer",
            _customer_json(customer.c),
            "pool",
            _pool_json(pool.c),
            "alarm_id",
            null(),
        )
    else:
        # As the action's answer is audited: its amounts in cents.
        body = func.json_build_object(
            "TotalCredit",
            customer.c.total_credit,
            "RemainingCredit",
            customer.c.total_credit - customer.c.consumed,
        )
    answered = select(body.label("body")).select_from(pool, customer, record).cte("answer")
    written: list[CTE] = [
        outbox.insert_from(
            partner_id=record.c.partner_id,
            type=outbox.ALLOCATION_RECORDED,
            payload=records.payload_sql(record.c, created_at=text_param("fast_created_iso")),
            rows=[record],
            # No endpoint of the partner takes the event: handed over already (as the
            # delivery worker's expansion would find it, with nothing to deliver).
            handed_over=case(
                (outbox.taken(record.c.partner_id, outbox.ALLOCATION_RECORDED), null()),
                else_=bindparam("outbox_created_at", type_=OutboxEvent.created_at.type),
            ),
        ).cte("outbox"),
        audit.insert_from(
            before=func.json_build_object(
                text_param("fast_pool_label"),
                audit.state_sql(
                    Partner.__tablename__, pool.c, pool_allocated=pool.c.pool_allocated - amount
                ),
                text_param("fast_customer_label"),
                audit.state_sql(
                    Customer.__tablename__,
                    customer.c,
                    total_credit=customer.c.total_credit - amount,
                ),
            ),
            after=func.json_build_object(
                text_param("fast_pool_label"),
                audit.state_sql(Partner.__tablename__, pool.c),
                text_param("fast_customer_label"),
                audit.state_sql(Customer.__tablename__, customer.c),
                "request",
                cast(text_param("fast_request"), JSON),
                "answer",
                answered.c.body,
            ),
            rows=[pool, customer, answered],
        ).cte("audit"),
    ]
    plain = and_(
        audit.plain_sql(Partner.__tablename__, pool.c),
        audit.plain_sql(Customer.__tablename__, customer.c),
    )
    joined = pool.outerjoin(customer, true()).outerjoin(answered, true())
    done = and_(customer.c.uin.is_not(None), plain)
    if claim == "idempotency":
        taken = idempotency.claim_answered(answered.c.body, rows=[answered]).cte("claim")
        joined = joined.outerjoin(taken, true())
        done = and_(done, taken.c.id.is_not(None))
    elif claim == "signature":
        written.append(signatures.FORGET_EXPIRED.cte("forget"))
        taken = signatures.claim_from(rows=[answered]).cte("claim")
        joined = joined.outerjoin(taken, true())
        done = and_(done, taken.c.signature_hash.is_not(None))
    refused = func.creditline_refuse(
        "the customer, the alarm rule or the claim refused after the pool gave"
    )
    return (
        select(cast(answered.c.body, Text), case((~done, refused), else_=true()))
        .select_from(joined)
        .add_cte(*written)
    )


def _pool_json(pool: Any) -> ColumnElement[Any]:
    """The answer's pool (:meth:`creditline.api.pool.Pool.of`) in SQL."""
    return func.json_build_object(
        "partner_id", pool.id,
        "total", json_sql.money_text(pool.pool_total),
        "allocated", json_sql.money_text(pool.pool_allocated),
        "remaining", json_sql.money_text(pool.pool_total - pool.pool_allocated),
    )  # fmt: skip


def _customer_json(customer: Any) -> ColumnElement[Any]:
    """The answer's customer (:func:`creditline.api.customers.customer_fields`) in SQL."""
    total, consumed = customer.total_credit, customer.consumed
    utilization = cast(func.floor(cast(consumed, Numeric) * 10_000 / total), BigInteger)
    return func.json_build_object(
        "uin", customer.uin,
        "name", customer.name,
        "type", customer.type,
        "email", customer.email,
        "mobile", customer.mobile,
        "remark", customer.remark,
        "identity_status", customer.identity_status,
        "associated_at", json_sql.time_text(customer.associated_at, "z"),
        "total_credit", json_sql.money_text(total),
        "consumed", json_sql.money_text(consumed),
        "available_credit", json_sql.money_text(total - consumed),
        "max_withdrawable",
        json_sql.money_text(func.greatest(func.least(total - consumed, total), 0)),
        "utilization_percent",
        case((total <= 0, null()), else_=json_sql.money_text(utilization)),
        "thresholds", customer.thresholds,
        "forecast", null(),  # null in write answers (docs/ledger.md)
    )  # fmt: skip
