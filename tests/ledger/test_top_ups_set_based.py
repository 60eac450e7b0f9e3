"""Set-based top-ups (issue 16.5) leave exactly what one allocation after another left.

One scenario — three partners, rules of every kind (the default, a customer's own with a
ceiling, a customer set off, the utilisation trigger), top-ups made, every refusal (the
ceiling, the monthly cap, a short pool part-way through a batch), a refusal repeated (not
alarmed again), a refusal cleared by a later top-up (alarmed again), a partner whose
webhook takes allocation events and one whose does not, batches whose events come in no
order — runs twice on one empty database: once through the one-by-one top-ups the ledger
made before (``tests/ledger/one_by_one_top_ups.py``), once through the set-based
:func:`creditline.ledger.top_ups.after_usage`. Every table (records, outbox events,
notices, months, customers, pools, alarms, the usage batches' audit rows), ids included,
and every answer must be the same; only the times differ."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import count
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from tests.ledger import one_by_one_top_ups, scenario
from tests.ledger.scenario import OPS, charge, post_usage, reseller, snapshot

from creditline import audit
from creditline.clock import utcnow
from creditline.db import transaction
from creditline.db.tables import Base, WebhookEndpoint
from creditline.ledger import pools, records, top_ups, usage
from creditline.ledger.alarms import set_thresholds
from creditline.ledger.outbox import ALLOCATION_RECORDED, TOP_UP_REFUSED
from creditline.ledger.verify import verify

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}")
ACTOR = audit.Actor(source="api", principal="billing-feed", partner_id=None, request_id="r")


def _timeless(value: Any) -> Any:
    """``value`` with every time (a datetime, an ISO 8601 text) replaced by ``<time>``."""
    if isinstance(value, datetime) or (isinstance(value, str) and _TIME.match(value)):
        return "<time>"
    if isinstance(value, Mapping):
        return {k: _timeless(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_timeless(v) for v in value]
    return value


def _fresh(engine: Engine) -> None:
    """Every table emptied and every id and UIN numbered from the start again."""
    names = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            quoted = ", ".join(f'"{name}"' for name in names)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
            connection.execute(
                text("ALTER TABLE accounts ALTER COLUMN uin RESTART WITH 100000000001")
            )
        else:
            for name in reversed(names):
                connection.execute(text(f'DELETE FROM "{name}"'))
            connection.execute(text("DELETE FROM sqlite_sequence"))


def _rule(**given: int | None) -> top_ups.Rule:
    return top_ups.check_rule(**given)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _World:
    a: list[int]
    b: list[int]
    c: list[int]
    b_id: int


def _world(engine: Engine) -> _World:
    a = reseller(engine, pool=1_000_00, credits=(100_00,) * 6)
    # B: 150.00 left once its customers hold theirs, so one top-up of 100.00 fits, not two.
    b = reseller(engine, pool=4 * 50_00 + 150_00, credits=(50_00,) * 4)
    c = reseller(engine, pool=100_00, credits=(100_00,))
    with transaction(engine) as s:
        top_ups.set_partner_rule(
            s, partner_id=a.id, rule=_rule(below=50_00, amount=100_00, monthly_cap=200_00)
        )
        top_ups.set_customer_rule(
            s,
            partner_id=a.id,
            customer_uin=a.customers[1],
            mode="own",
            rule=_rule(utilization_percent=80, amount=30_00, monthly_cap=300_00, ceiling=160_00),
        )
        top_ups.set_customer_rule(s, partner_id=a.id, customer_uin=a.customers[2], mode="off")
        set_thresholds(s, partner_id=a.id, customer_uin=a.customers[3], thresholds=[10, 50])
        top_ups.set_partner_rule(
            s, partner_id=b.id, rule=_rule(below=20_00, amount=100_00, monthly_cap=1_000_00)
        )
        # B's webhook takes both kinds of event: its allocation events wait for delivery.
        s.add(
            WebhookEndpoint(
                partner_id=b.id,
                url="https://hooks.example.com/b",
                event_types=[ALLOCATION_RECORDED, TOP_UP_REFUSED],
                description="",
                secret="not-a-real-secret",
                enabled=True,
                disabled_reason="",
                created_at=utcnow(),
            )
        )
    return _World(a.customers, b.customers, c.customers, b.id)


def _answer(result: usage.IngestResult) -> list[Any]:
    """Everything a batch's top-ups answer, times left out."""
    found: list[Any] = []
    for t in result.top_ups:
        change = t.change
        found.append(
            (
                t.partner_id,
                t.customer_uin,
                t.scope,
                t.rule,
                t.month,
                t.refused,
                t.alarmed,
                None
                if change is None
                else (
                    _timeless(records.as_payload(change.record)),
                    change.total_credit,
                    change.consumed,
                    change.pool,
                    None if change.alarm is None else change.alarm.threshold,
                    change.customer.total_credit,
                    [(c.table, _timeless(c.before), _timeless(c.after)) for c in change.changes],
                ),
            )
        )
    return found


def _post(engine: Engine, *raws: Mapping[str, object]) -> list[Any]:
    """A usage batch as REST posts it: audited, its answer naming its top-ups."""
    with transaction(engine) as s:
        audit.watch(s)
        result = post_usage(s, *raws)
        answer = {
            "top_ups": [
                [t.customer_uin, None if t.change is None else t.change.record.id, t.refused]
                for t in result.top_ups
            ]
        }
        audit.record(s, ACTOR, action="POST /v1/usage-batches", after=answer)
    return _answer(result)


def _scenario(engine: Engine) -> tuple[list[Any], dict[str, Any]]:
    """The scenario on an empty database: every batch's answer, then every table."""
    _fresh(engine)
    scenario._event_ids = count(1)  # the same event ids in each run
    w = _world(engine)
    a, b, c = w.a, w.b, w.c
    answers = [
        # A: a0 below 50.00, a1 at 85 % (its own rule), a2 off, a3 below 50.00 with its
        # own thresholds fired (its top-up re-arms them), a4 refunded, a5 netting below
        # zero; B: b0 served, b1 and b2 refused (the pool keeps 50.00); C has no rule. In
        # reverse order of customers.
        _post(
            engine,
            charge(c[0], "5.00"),
            charge(b[2], "35.00"),
            charge(b[1], "45.00"),
            charge(b[0], "40.00"),
            charge(a[5], "60.00"),
            charge(a[5], "70.00", kind="refund"),
            charge(a[4], "5.00", kind="refund"),
            charge(a[3], "10.00"),
            charge(a[3], "45.00"),
            charge(a[2], "90.00"),
            charge(a[1], "85.00"),
            charge(a[0], "60.00"),
        ),
        # a0 again (its cap reached exactly), a1 again (its ceiling reached exactly); b1 and
        # b2 refused again: not alarmed again.
        _post(
            engine,
            charge(b[2], "1.00"),
            charge(a[1], "30.00"),
            charge(b[1], "1.00"),
            charge(a[0], "100.00"),
        ),
        # a0 past its cap, a1 past its ceiling: refused, alarmed.
        _post(engine, charge(a[1], "20.00"), charge(a[0], "200.00")),
        # a0 past its cap again: refused, not alarmed again; then a duplicate: nothing.
        _post(engine, charge(a[0], "1.00", event_id="once")),
        _post(engine, charge(a[0], "1.00", event_id="once")),
    ]
    with transaction(engine) as s:
        pools.grant(s, partner_id=w.b_id, amount=200_00, origin=OPS)
    answers += [
        # B's pool holds two more: b1 and b2 served (their refusals cleared), b3 refused.
        _post(engine, charge(b[3], "49.00"), charge(b[2], "1.00"), charge(b[1], "1.00")),
        # b1 refused again, alarmed again (its last top-up cleared its refusal).
        _post(engine, charge(b[1], "200.00")),
    ]
    with transaction(engine) as s:
        assert verify(s) == []
    return answers, {name: _timeless(rows) for name, rows in snapshot(engine).items()}


def _statements(engine: Engine, run: Callable[[], Any]) -> tuple[Any, list[str]]:
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", note)
    try:
        return run(), seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_set_based_top_ups_leave_what_one_by_one_left(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(usage, "after_usage", one_by_one_top_ups.after_usage)
        (expected_answers, expected), one_by_one = _statements(engine, lambda: _scenario(engine))
    (answers, tables), set_based = _statements(engine, lambda: _scenario(engine))
    assert answers == expected_answers
    for name in expected:
        assert tables[name] == expected[name], name
    # The scenario did what it says: every kind of outcome, alarmed once each.
    outcomes = [(t[5], t[6]) for batch in answers for t in batch]
    assert outcomes.count((None, False)) == 8  # made
    assert sorted(o for o in outcomes if o[0] is not None) == [
        ("ceiling", True),
        ("monthly_cap", False),
        ("monthly_cap", True),
        ("pool_short", False),
        ("pool_short", False),
        ("pool_short", True),
        ("pool_short", True),
        ("pool_short", True),
        ("pool_short", True),
    ]
    assert [len(batch) for batch in answers] == [6, 4, 2, 1, 0, 3, 1]
    assert len(set_based) < len(one_by_one)
