"""PostgreSQL's purchase check as one statement (served by api/fast.py, beside the
allocation's in creditline.fast_write): the customer and the policy that applies to it
looked up, the rule applied and the decision appended, in the ledger's one ``INSERT …
SELECT`` (:func:`creditline.ledger.purchases.check_insert`, the API key checked live in
it); the answer built from the decision's row, and the audit row — data-modifying CTEs,
sent in autocommit: one round trip, its own transaction, nothing to begin or commit.

Its JSON is built in SQL by twins of the Python that writes it on the ordinary path (the
answer's fields: :func:`answer_sql`; the message: :func:`purchases.message_sql`; amounts
and times: creditline.db.json_sql), held equal by tests/api/test_fast_path_equal.py.
Where the customer is not found, or the key is no longer live, nothing is written and no
row is returned: the ordinary path answers that in full."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Text, bindparam, cast, func, null, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ColumnElement

from creditline import audit
from creditline.auth import keys
from creditline.db import batched, json_sql
from creditline.db.batched import Batch
from creditline.ledger import purchases
from creditline.ledger.credit import Requirement


def check_statement(*, scoped: bool) -> Executable:
    """A purchase check as one statement returning its answer's JSON text (no row: not
    the plain case). ``scoped``: a partner's own customer (``check_partner_id``), else
    any partner's (the platform). Parameters: :func:`purchases.check_params`',
    ``require_key_id``, the audit row's (:func:`audit.row`, but its before and after) and
    ``fast_request`` (the request's body as the audit row keeps it, JSON text)."""
    return _statement(scoped=scoped, items=None)


def batch_statement(*, scoped: bool) -> tuple[Executable, Batch]:
    """:func:`check_statement` for several checks at once, of distinct customers, each
    read from its row of the returned :class:`Batch`'s ``asked`` (parameters: the
    one-statement's, each an array of the checks' values, :meth:`Batch.params`). It
    returns a row (the check's ordinal, its answer) for each check kept; one without a
    row kept nothing, and is the ordinary path's to answer."""
    one = check_statement(scoped=scoped)
    items = batched.batch(batched.item_parameters(one, _DIALECT))
    return _statement(scoped=scoped, items=items), items


_DIALECT = postgresql.psycopg.dialect()


def _statement(*, scoped: bool, items: Batch | None) -> Executable:
    live = Requirement(keys.LIVE_KEY, {})
    decision = purchases.check_insert(scoped=scoped, require=live, items=items).cte("decision")
    if items is None:
        answered = select(answer_sql(decision.c).label("body")).select_from(decision)
        rows: list[Any] = [answered.cte("answer")]
    else:
        # A check's decision is its customer's (the checks of a batch are of distinct
        # customers).
        answered = items.each(
            select(answer_sql(decision.c).label("body"), items.ordinal.label("n")).select_from(
                decision.join(items.asked, items.asked.c.check_uin == decision.c.customer_uin)
            )
        )
    answer = answered.cte("answer")
    rows = [answer] if items is None else [answer.join(items.asked, items.ordinal == answer.c.n)]
    audited = audit.insert_from(
        before=null(),
        after=func.json_build_object(
            "request",
            cast(bindparam("fast_request", type_=Text), JSON),
            "answer",
            answer.c.body,
        ),
        rows=rows,
    )
    if items is not None:
        audited = items.each(audited)
        return select(answer.c.n, cast(answer.c.body, Text)).add_cte(audited.cte("audit"))
    return select(cast(answer.c.body, Text)).add_cte(audited.cte("audit"))


def answer_sql(decision: Any) -> ColumnElement[Any]:
    """The answer (:meth:`creditline.api.purchases.PurchaseCheckOut.of`, its fields in
    their order) in SQL, from ``decision``: the columns of a kept decision."""
    d = decision
    return func.json_build_object(
        "id", d.id,
        "customer_uin", d.customer_uin,
        "partner_id", d.partner_id,
        "amount", json_sql.money_text(d.amount),
        "product", d.product,
        "answer", d.answer,
        "allowed", d.answer == "allowed",
        "reason", d.reason,
        "message", purchases.message_sql(d),
        "policy", d.policy,
        "tolerance", json_sql.money_text(d.tolerance),
        "available", json_sql.money_text(d.available),
        "available_after", json_sql.money_text(d.available - d.amount),
        "requested_by", d.requested_by,
        "decided_at", json_sql.time_text(d.decided_at, "z"),
    )  # fmt: skip
