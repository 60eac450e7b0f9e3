"""PostgreSQL's allocation as one statement (served by api/fast.py for REST and by
tc3/fast.py for the Tencent-compatible action): the ledger's guarded UPDATEs and INSERT,
the answer, the idempotency key or the request's signature claimed with it, the outbox
event and the audit row, each the statement its module owns, with the JSON each module
writes in Python built in SQL (creditline.db.json_sql) — so that an allocation is one
round trip and its own transaction, with nothing to begin or commit."""

from __future__ import annotations

import functools
from collections.abc import Callable
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
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import Executable

from creditline import audit
from creditline.auth import idempotency, keys, signatures
from creditline.db import batched, json_sql
from creditline.db.batched import Batch
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
    return _statement(claim=claim, answer=answer, items=None)


def batch_statement(*, claim: Claim, answer: Answer = "rest") -> tuple[Executable, Batch]:
    """:func:`one_statement` for several allocations at once, of distinct partners, each
    read from its row of the returned :class:`Batch`'s ``asked`` (parameters: the
    one-statement's, each an array of the items' values, :meth:`Batch.params`). It
    returns a row (the item's ordinal, its answer) for each allocation written; one not
    written (its customer, key, claim, pool or the alarm rule refused at first sight)
    changed nothing and is the ordinary path's to answer. Where the pool gave and
    something after refused, it raises :data:`REFUSED` and nothing of the batch stays."""
    one = one_statement(claim=claim, answer=answer)
    items = batched.batch(batched.item_parameters(one, _DIALECT))
    return _statement(claim=claim, answer=answer, items=items), items


_DIALECT = postgresql.psycopg.dialect()


def _statement(*, claim: Claim, answer: Answer, items: Batch | None) -> Executable:
    amount = bindparam("credit_amount", type_=BigInteger)
    each: Callable[[Any], Any] = (lambda found: found) if items is None else items.each

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
    if items is None:
        seen = select(true().label("ok")).select_from(Customer).where(*checks)
    else:
        seen = select(items.ordinal.label("n")).select_from(Customer).where(*map(each, checks))
    seen_cte = seen.cte("seen").prefix_with("MATERIALIZED")
    if items is None:
        gives = credit.Requirement(seen_cte.c.ok, {})
    else:
        # The batch's pool rows locked in the order of their ids, the one order of every
        # batch, before the pool's UPDATE changes them: two batches that share partners
        # never wait for each other both ways (every writer locks a customer's partner
        # before the customer: the customers follow).
        locked = (
            select(Partner.id)
            .where(Partner.id.in_(select(items.asked.c.credit_partner_id)))
            .order_by(Partner.id)
            .with_for_update()
            .cte("locked")
            .prefix_with("MATERIALIZED")
        )
        gives = credit.Requirement(
            and_(seen_cte.c.n == items.ordinal, locked.c.id == Partner.id), {}
        )

    def pool_thresholds(pool: CTE) -> Any:
        return select(pool.c.thresholds).where(pool.c.id == Customer.partner_id).scalar_subquery()

    pool, customer, record = credit.combined_ctes(
        gives,
        customer_also=lambda pool: fired_after(pool_thresholds(pool)).is_not(None),
        customer_sets=lambda pool: {"fired_thresholds": fired_after(pool_thresholds(pool))},
        items=items,
    )
    # The rows of one allocation: its pool, customer and record (and its item).
    rows: list[Any] = [pool, customer, record]
    if items is not None:
        rows = [
            items.asked.join(pool, pool.c.n == items.ordinal)
            .join(customer, customer.c.n == items.ordinal)
            .join(
                record,
                and_(
                    record.c.partner_id == customer.c.partner_id,
                    record.c.customer_uin == customer.c.uin,
                ),
            )
        ]
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
    plain = and_(
        audit.plain_sql(Partner.__tablename__, pool.c),
        audit.plain_sql(Customer.__tablename__, customer.c),
    )
    if items is None:
        answered = select(body.label("body")).select_from(*rows).cte("answer")
        # Its rows and its answer, for the INSERTs after it.
        with_answer: list[Any] = [pool, customer, answered]
    else:
        answered = (
            each(select(body.label("body"), items.ordinal.label("n"), plain.label("plain")))
            .select_from(*rows)
            .cte("answer")
        )
        with_answer = [
            items.asked.join(pool, pool.c.n == items.ordinal)
            .join(customer, customer.c.n == items.ordinal)
            .join(answered, answered.c.n == items.ordinal)
        ]
    written: list[CTE] = [
        each(
            outbox.insert_from(
                partner_id=record.c.partner_id,
                type=outbox.ALLOCATION_RECORDED,
                payload=records.payload_sql(record.c, created_at=text_param("fast_created_iso")),
                rows=rows[-1:] if items is not None else [record],
                # No endpoint of the partner takes the event: handed over already (as the
                # delivery worker's expansion would find it, with nothing to deliver).
                handed_over=case(
                    (outbox.taken(record.c.partner_id, outbox.ALLOCATION_RECORDED), null()),
                    else_=bindparam("outbox_created_at", type_=OutboxEvent.created_at.type),
                ),
            )
        ).cte("outbox"),
        each(
            audit.insert_from(
                before=func.json_build_object(
                    text_param("fast_pool_label"),
                    audit.state_sql(
                        Partner.__tablename__,
                        pool.c,
                        pool_allocated=pool.c.pool_allocated - amount,
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
                rows=with_answer,
            )
        ).cte("audit"),
    ]
    claims: Any = None
    if claim == "idempotency":
        claims = each(idempotency.claim_answered(answered.c.body, rows=with_answer[-1:]))
    elif claim == "signature":
        written.append(each(signatures.FORGET_EXPIRED).cte("forget"))
        claims = each(signatures.claim_from(rows=with_answer[-1:]))
    refused = func.creditline_refuse(
        "the customer, the alarm rule or the claim refused after the pool gave"
    )
    if items is None:
        joined = pool.outerjoin(customer, true()).outerjoin(answered, true())
        done = and_(customer.c.uin.is_not(None), plain)
        if claims is not None:
            taken = claims.cte("claim")
            joined = joined.outerjoin(taken, true())
            done = and_(done, next(iter(taken.c)).is_not(None))
        return (
            select(cast(answered.c.body, Text), case((~done, refused), else_=true()))
            .select_from(joined)
            .add_cte(*written)
        )
    # Every allocation the pool gave to is answered (its customer changed and its rows
    # plain), and every answer's claim taken: else the batch is undone whole.
    done = and_(answered.c.n.is_not(None), answered.c.plain)
    if claims is not None:
        taken = claims.cte("claim")
        counted = select(func.count()).select_from(taken).scalar_subquery()
        done = and_(done, counted == select(func.count()).select_from(answered).scalar_subquery())
    return (
        select(answered.c.n, cast(answered.c.body, Text), case((~done, refused), else_=true()))
        .select_from(pool.outerjoin(answered, answered.c.n == pool.c.n))
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
