"""One REST allocation's statements, pinned as a count: the benchmark's allocation rate is
bounded by round trips to the database (docs/benchmarks.md, run 5), so a change that adds
one shows here. A count, never a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from tests.api.conftest import World

from creditline.db import transaction
from creditline.db.engine import round_trips
from creditline.db.tables import AllocationRecord, AuditEvent, Customer, Partner
from creditline.ledger import accounts, credit, records, top_ups

#: Statements sent for one allocation with a fresh Idempotency-Key (COMMITs counted too).
#: No authentication of its own: the key comes from the key cache, and the write's own
#: statement checks it is not revoked. BEGIN (SQLite: BEGIN IMMEDIATE), the idempotency
#: claim, the pool's and the customer's guarded UPDATEs and the record's INSERT, the
#: outbox INSERT, the idempotency answer UPDATE, the audit INSERT (from what the UPDATEs
#: returned: no read after), COMMIT. Both engines answer it on the fast path, so the
#: engine's pool sees none of them: api/fast_sqlite.py on its own connection, api/fast.py
#: through its own connection pool in ONE statement, its own transaction (autocommit): the
#: ledger's guarded UPDATEs and INSERT, the answer, the idempotency key claimed with it,
#: the outbox event and the audit row, all data-modifying CTEs (api.fast.one_statement).
EXPECTED = {"sqlite": 9, "postgresql": 1}
#: On PostgreSQL, round trips: the one statement (no BEGIN, no COMMIT).
FAST_ROUND_TRIPS = 1
#: The ordinary path's round trips on PostgreSQL (pipelined): BEGIN, the claim and the
#: write's statement; then the outbox event, the stored answer, the audit row and COMMIT.
ROUND_TRIPS = 2
#: The first request of a key: the ordinary path, which looks the key up in a transaction
#: of its own (the key, then its partner's kind: keys and partners are never joined, see
#: creditline.db.distribution) and keeps it, leases the key's first rate-limit tokens from
#: the shared bucket (one statement, outside any transaction; the next requests spend them
#: from memory), then writes the same statements. On PostgreSQL (key, partner, COMMIT), the
#: lease, and the write in the same two round trips (psycopg begins implicitly;
#: pipelined); on SQLite (BEGIN, key, partner, COMMIT), the lease in a transaction of its
#: own (BEGIN, lease, COMMIT) and the fast path's nine.
FIRST_REQUEST = {"sqlite": 16, "postgresql": 10}


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def _on_execute(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()))

    def _on_commit(_connection: Any) -> None:
        seen.append("COMMIT")

    event.listen(engine, "before_cursor_execute", _on_execute)
    event.listen(engine, "commit", _on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", _on_execute)
        event.remove(engine, "commit", _on_commit)


def test_one_allocation_makes_a_pinned_number_of_statements(
    client: TestClient, world: World, engine: Engine
) -> None:
    path = f"/v1/customers/{world.a_customer}/allocate"
    warm = world.h("a_operator", **{"Idempotency-Key": "warm-up"})
    trips = round_trips(engine)
    with _statements(engine) as first:
        assert client.post(path, json={"amount": "1.00"}, headers=warm).status_code == 200
    dialect = engine.dialect.name
    postgres = dialect == "postgresql"
    assert len(first) == FIRST_REQUEST[dialect], first
    if postgres:
        assert round_trips(engine) - trips == ROUND_TRIPS
    # The customer and the pool are read neither before their UPDATEs (scope, audit) nor
    # after them (answer, audit): the UPDATEs' RETURNING is all of it.
    # (Authentication reads the key's partner's kind, nothing of its pool.)
    assert not [
        s
        for s in first
        if s.startswith(("SELECT customers.", "SELECT partners."))
        and not s.startswith("SELECT partners.kind FROM")
    ]
    headers = world.h("a_operator", **{"Idempotency-Key": "counted"})
    fast = client.app.state.fast_credit  # type: ignore[attr-defined]
    fast_before = (fast.statements, getattr(fast, "round_trips", 0))
    with _statements(engine) as seen:
        answer = client.post(path, json={"amount": "2.00"}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["customer"]["total_credit"] == "3.00"
    assert not seen, seen  # the fast path, not the engine's pool
    assert fast.statements - fast_before[0] == EXPECTED[dialect]
    if postgres:
        assert fast.round_trips - fast_before[1] == FAST_ROUND_TRIPS


def test_a_replay_reads_its_stored_answer_and_changes_nothing(
    client: TestClient, world: World, engine: Engine
) -> None:
    path = f"/v1/customers/{world.a_customer}/allocate"
    headers = world.h("a_operator", **{"Idempotency-Key": "again"})
    first = client.post(path, json={"amount": "2.00"}, headers=headers)
    before = _state(engine, world)
    with _statements(engine) as seen:
        second = client.post(path, json={"amount": "2.00"}, headers=headers)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    # The write's guarded statement ran and, its key taken, changed nothing.
    assert _state(engine, world) == before
    assert not [s for s in seen if s.startswith(("INSERT INTO allocation", "DELETE"))], seen


def _state(engine: Engine, world: World) -> tuple[Any, ...]:
    with transaction(engine) as s:
        return (
            s.scalar(select(Customer.total_credit).where(Customer.uin == world.a_customer)),
            s.scalar(select(Partner.pool_allocated).where(Partner.id == world.a)),
            s.scalar(select(func.count()).select_from(AllocationRecord)),
            s.scalar(select(func.count()).select_from(AuditEvent)),
        )


def test_the_audits_derived_before_is_the_state_the_previous_write_left(
    client: TestClient, world: World, engine: Engine
) -> None:
    # "before" and "after" both come from the UPDATEs' RETURNING: two writes in a row must
    # agree on every field of the customer and the pool between them.
    path = f"/v1/customers/{world.a_customer}/allocate"
    for amount in ("2.00", "3.00"):
        answer = client.post(path, json={"amount": amount}, headers=world.h("a_operator"))
        assert answer.status_code == 200, answer.text
    with transaction(engine) as s:
        first, second = s.execute(
            select(AuditEvent)
            .where(AuditEvent.action == "POST /v1/customers/{uin}/allocate")
            .order_by(AuditEvent.id)
        ).scalars()
        for label in (f"customer {world.a_customer}", f"pool {world.a}"):
            assert second.before[label] == first.after[label], label
        assert second.after[f"customer {world.a_customer}"]["total_credit"] == "5.00"


#: Statements of one usage batch with a fresh Idempotency-Key, the same whatever the
#: batch's size or number of customers (COMMITs counted): the key from the key cache,
#: confirmed live by the write's first statement; then the write: BEGIN IMMEDIATE
#: (SQLite), the key's liveness, the idempotency claim, SAVEPOINT, the batch's customers,
#: their top-up rules (one read; with none, no pool is locked and nothing more is done
#: for top-ups); on PostgreSQL ONE statement for the events: their INSERT ... SELECT ...
#: ON CONFLICT DO NOTHING from arrays and the sums per customer and day (on SQLite four:
#: the staging table's CREATE ... IF NOT EXISTS, its fill by one executemany, the
#: INSERT ... SELECT, the staging table emptied); the partners' default threshold lists;
#: the customers with new events locked in UIN order (PostgreSQL, one statement per
#: partner of the batch, each on its partner's shard, here two, sent by ONE executemany:
#: counted once here), the daily totals' upsert, the one consumption UPDATE, RELEASE
#: SAVEPOINT, the idempotency answer, the audit INSERT, COMMIT (the forecasts are
#: current: computed today, and these events are of a day before every window). It was
#: 18 on PostgreSQL and 19 on SQLite: the key read in a transaction of its own (SQLite:
#: BEGIN, the key, COMMIT), and on PostgreSQL a staging table filled by COPY and emptied.
#: (The daily totals' upsert was part of the events' statement on PostgreSQL, 13 in all,
#: until a batch waited there for a concurrent batch's daily rows: it now comes once the
#: customers are locked.) On PostgreSQL the write is pipelined: its round trips are fewer
#: (USAGE_ROUND_TRIPS).
USAGE_EXPECTED = {"sqlite": 17, "postgresql": 14}
#: PostgreSQL's round trips of the same batch (each statement with rows to read, and the
#: COMMIT): the key's liveness, the claim, the customers (SAVEPOINT with it), the top-up
#: rules, the events, the defaults, the consumption UPDATE (the locks and the daily
#: totals with it), and the COMMIT (RELEASE SAVEPOINT, the stored answer and the audit
#: row with it).
USAGE_ROUND_TRIPS = 8


def _usage(world: World, tag: str, size: int) -> dict[str, Any]:
    customers = (world.a_customer, world.b_customer)
    return {
        "records": [
            {
                "event_id": f"{tag}-{n}",
                "customer_uin": customers[n % 2],
                "product": "cvm",
                "list_amount": "0.01",
                "occurred_at": "2026-01-01T00:00:00Z",
            }
            for n in range(size)
        ]
    }


def _without_leases(seen: list[str]) -> tuple[list[str], int]:
    """``seen`` without the rate limiter's leases, and how many there were. A lease is the
    limiter's own transaction (auth/rate_limit.py: its BEGIN on SQLite, its INSERT, its
    COMMIT), taken when the process's leased tokens have run out or expired (a second
    after their lease): it comes with a request when the machine is slow enough, not with
    what the request does."""
    kept: list[str] = []
    leased = 0
    after_lease = False
    for statement in seen:
        if statement.startswith("INSERT INTO rate_buckets"):
            leased += 1
            if kept and kept[-1].startswith("BEGIN"):
                kept.pop()
            after_lease = True
            continue
        if after_lease and statement == "COMMIT":
            after_lease = False
            continue
        after_lease = False
        kept.append(statement)
    return kept, leased


def test_a_usage_batch_makes_a_pinned_number_of_statements_whatever_its_size(
    client: TestClient, world: World, engine: Engine
) -> None:
    platform = world.h("platform", **{"Idempotency-Key": "warm-up"})
    assert client.post("/v1/usage-batches", json=_usage(world, "w", 2), headers=platform)
    postgres = engine.dialect.name == "postgresql"
    for size in (2, 500):
        headers = world.h("platform", **{"Idempotency-Key": f"counted-{size}"})
        trips = round_trips(engine)
        with _statements(engine) as seen:
            answer = client.post(
                "/v1/usage-batches", json=_usage(world, f"s{size}", size), headers=headers
            )
        assert answer.status_code == 200, answer.text
        seen[:], leased = _without_leases(seen)
        if postgres and not leased:
            assert round_trips(engine) - trips == USAGE_ROUND_TRIPS
        assert answer.json() == {"accepted": size, "duplicates": 0, "alarm_ids": [], "top_ups": []}
        listing = "\n".join(s[:90] + " ... " + s[-40:] for s in seen)
        assert len(seen) == USAGE_EXPECTED[engine.dialect.name], listing
        staged = [s for s in seen if s.startswith("INSERT INTO usage_staging")]
        assert len(staged) == (0 if postgres else 1), listing  # PostgreSQL: no staging table


#: Statements of a usage batch that tops customers up (issue 16.5), the same whatever the
#: number of top-ups made and refused: USAGE_EXPECTED's; on PostgreSQL the pools of the
#: batch's partners locked before its customers (one statement per partner, one
#: executemany); the months of the triggered customers and their pools' remaining read
#: (one statement); then one statement of each write: the pools' guarded UPDATE, the
#: customers' UPDATE, the records' INSERT, the months' guarded upsert, the outbox events'
#: INSERT and the refusals' notices' INSERT.
#: (No threshold is reached, so none is re-armed by a top-up: no fired thresholds'
#: UPDATE, which would be one more.) One top-up per customer was one allocation each,
#: three to four statements, before (docs/benchmarks.md).
USAGE_TOP_UPS_EXPECTED = {"sqlite": 17 + 7, "postgresql": 14 + 8}


def test_a_usage_batch_tops_up_by_a_pinned_number_of_statements_whatever_their_number(
    client: TestClient, world: World, engine: Engine
) -> None:
    origin = records.Origin(operator="setup", source="cli")
    with transaction(engine) as s:
        # A's default tops up below 50.00; the customers of a rule of their own are refused
        # (its ceiling).
        top_ups.set_partner_rule(
            s,
            partner_id=world.a,
            rule=top_ups.check_rule(below=50_00, amount=10_00, monthly_cap=1_000_00),
        )
        customers: dict[str, list[int]] = {"made": [], "refused": []}
        for kind, count in (("made", 6), ("refused", 3)):
            for n in range(count):
                uin = accounts.create_customer(s, partner_id=world.a, name=f"{kind} {n}").uin
                credit.allocate_credit(
                    s, partner_id=world.a, customer_uin=uin, amount=50_00, origin=origin
                )
                customers[kind].append(uin)
        for uin in customers["refused"]:
            top_ups.set_customer_rule(
                s,
                partner_id=world.a,
                customer_uin=uin,
                mode="own",
                rule=top_ups.check_rule(
                    below=50_00, amount=10_00, monthly_cap=10_00, ceiling=55_00
                ),
            )

    def batch(tag: str, uins: list[int], amount: str) -> dict[str, Any]:
        return {
            "records": [
                {
                    "event_id": f"{tag}-{uin}",
                    "customer_uin": uin,
                    "product": "cvm",
                    "list_amount": amount,
                    "occurred_at": "2026-01-01T00:00:00Z",
                }
                for uin in uins
            ]
        }

    # The warm-up counts nothing (no top-up) and makes every customer's forecast current.
    everyone = customers["made"] + customers["refused"]
    warm = world.h("platform", **{"Idempotency-Key": "warm-up"})
    assert client.post("/v1/usage-batches", json=batch("w", everyone, "0.00"), headers=warm)
    made, refused = customers["made"], customers["refused"]
    for tag, uins, expected in (
        ("one", made[:1] + refused[:1], [(True, None), (False, "ceiling")]),
        ("many", made[1:] + refused[1:], [(True, None)] * 5 + [(False, "ceiling")] * 2),
    ):
        headers = world.h("platform", **{"Idempotency-Key": f"counted-{tag}"})
        with _statements(engine) as seen:
            # 0.01 each: available 49.99, below the trigger; no threshold reached.
            answer = client.post(
                "/v1/usage-batches", json=batch(tag, uins, "0.01"), headers=headers
            )
        assert answer.status_code == 200, answer.text
        outcomes = [(t["record_id"] is not None, t["refused"]) for t in answer.json()["top_ups"]]
        assert outcomes == expected
        listing = "\n".join(s[:90] + " ... " + s[-40:] for s in seen)
        assert len(seen) == USAGE_TOP_UPS_EXPECTED[engine.dialect.name], listing


#: One purchase check with the platform's key, the key kept. PostgreSQL: nothing through
#: the engine's pool — the fast path's ONE statement (creditline.fast_purchase: the
#: customer and its policy looked up, the decision and the audit row inserted, the answer
#: built), in one round trip, its own transaction. SQLite (the ordinary path): BEGIN, the
#: customer's partner by UIN, the look-up with the key's check, the decision's INSERT, the
#: audit INSERT, COMMIT.
CHECK_STATEMENTS = {"sqlite": 6, "postgresql": 0}
FAST_CHECK_STATEMENTS = {"sqlite": 0, "postgresql": 1}


@pytest.mark.parametrize("key", ["platform", "a_operator"])
def test_one_purchase_check_makes_a_pinned_number_of_statements(
    client: TestClient, world: World, engine: Engine, key: str
) -> None:
    path = f"/v1/customers/{world.a_customer}/purchase-checks"
    warm = client.post(path, json={"amount": "1.00"}, headers=world.h(key))
    assert warm.status_code == 200, warm.text  # the key looked up and kept
    fast = client.app.state.fast_credit  # type: ignore[attr-defined]
    before = (fast.statements, getattr(fast, "round_trips", 0))
    trips = round_trips(engine)
    with _statements(engine) as seen:
        answer = client.post(path, json={"amount": "2.00"}, headers=world.h(key))
    assert answer.status_code == 200, answer.text
    assert answer.json()["amount"] == "2.00"
    dialect = engine.dialect.name
    if key == "a_operator" and dialect == "sqlite":
        expected = CHECK_STATEMENTS[dialect] - 1  # its partner is the key's: no look-up by UIN
    else:
        expected = CHECK_STATEMENTS[dialect]
    assert len(seen) == expected, seen
    assert fast.statements - before[0] == FAST_CHECK_STATEMENTS[dialect]
    if dialect == "postgresql":
        assert round_trips(engine) == trips
        assert fast.round_trips - before[1] == 1
