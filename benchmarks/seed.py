"""Benchmark data, made fast: partners and keys through the ledger (as an operator would),
customers and allocation records in bulk by server-side SQL. Bulk rows keep the ledger's
shapes: each seeded customer's credit is one allocation record, and the pool's
``allocated`` is raised by exactly what the customers hold."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, select, text

from creditline.auth import keys
from creditline.db import transaction
from creditline.db.tables import Partner as PartnerRow
from creditline.ledger import accounts, pools
from creditline.ledger.records import Origin

OPERATOR = Origin(operator="bench@example.com", source="cli")
#: Words customer names are made of, so a search matches a real share of them.
WORDS = ("cedar", "harbor", "summit", "orbit", "maple", "granite", "delta", "aurora")


@dataclass(frozen=True)
class Key:
    secret_id: str
    secret_key: str


@dataclass
class Partner:
    id: int
    key: Key
    customers: list[int] = field(default_factory=list)


@dataclass
class World:
    partners: list[Partner]
    platform: Key

    @property
    def customers(self) -> list[int]:
        return [uin for p in self.partners for uin in p.customers]


def _key(made: keys.ApiKey) -> Key:
    assert made.secret_key is not None
    return Key(made.secret_id, made.secret_key)


def _series(engine: Engine) -> str:
    """A CTE ``g(i)`` counting 1..:n on either engine."""
    if engine.dialect.name == "postgresql":
        return "WITH g(i) AS (SELECT generate_series(1, :n))"
    return "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :n)"


def _seconds_before_now(engine: Engine, column: str) -> str:
    if engine.dialect.name == "postgresql":
        return f"(CAST(:now AS timestamptz) - make_interval(secs => {column}))"
    return f"strftime('%Y-%m-%d %H:%M:%f', :now, '-' || ({column}) || ' seconds')"


def _now(engine: Engine) -> object:
    now = datetime.now(UTC)
    return now if engine.dialect.name == "postgresql" else now.strftime("%Y-%m-%d %H:%M:%S.%f")


def _fired(engine: Engine, thresholds: list[int], consumed: str, total: str) -> str:
    """SQL for the fired list the alarm rule leaves a customer with ``consumed`` of
    ``total`` (SQL expressions, ``total`` > 0) under ``thresholds``: those reached."""
    ascending = sorted(thresholds)
    levels = " ".join(
        f"WHEN {consumed} * 100 >= {t} * {total} THEN '{json.dumps(ascending[: i + 1])}'"
        for i, t in reversed(list(enumerate(ascending)))
    )
    listed = f"CASE {levels} ELSE '[]' END"
    return f"CAST({listed} AS JSON)" if engine.dialect.name == "postgresql" else listed


def new_partner(engine: Engine, *, name: str, pool: int) -> Partner:
    """A reseller with ``pool`` cents granted and an operator key."""
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name=name, kind="reseller")
        pools.grant(s, partner_id=partner.id, amount=pool, origin=OPERATOR)
        key = keys.create(
            s, principal="partner", partner_id=partner.id, role="operator", name="bench-ops"
        )
    return Partner(partner.id, _key(key))


def platform_key(engine: Engine) -> Key:
    """A platform key: the billing feed posts usage with it."""
    with transaction(engine) as s:
        return _key(keys.create(s, principal="platform", name="billing-feed"))


def add_customers(engine: Engine, partner: Partner, count: int, *, credit: int) -> None:
    """Add ``count`` customers to ``partner``, each allocated ``credit`` cents (one
    allocation record each) with some consumption, in a few server-side statements."""
    with engine.begin() as c:
        base = c.execute(text("SELECT COALESCE(MAX(uin), 0) FROM accounts")).scalar_one()
        now = _now(engine)
        params = {"n": count, "base": base, "now": now, "p": partner.id, "credit": credit}
        # The alarm rule's state as it leaves every customer (and as verify checks it):
        # the partner's default thresholds that the seeded consumption reaches, fired.
        defaults = c.execute(
            select(PartnerRow.thresholds).where(PartnerRow.id == partner.id)
        ).scalar_one()
        c.execute(
            text(
                f"{_series(engine)} INSERT INTO accounts (uin, kind, created_at) "
                "SELECT :base + i, 'customer', :now FROM g"
            ),
            params,
        )
        words = ", ".join(f"'{w}'" for w in WORDS)
        quoted = words.replace("'", '"')
        pick = (
            f"(ARRAY[{words}])[1 + (i % {len(WORDS)})]"
            if engine.dialect.name == "postgresql"
            else f"json_extract('[{quoted}]', '$[' || (i % {len(WORDS)}) || ']')"
        )
        c.execute(
            text(
                f"{_series(engine)} INSERT INTO customers (uin, partner_id, name, type, email, "
                "mobile, remark, identity_status, associated_at, total_credit, consumed, "
                "thresholds, fired_thresholds) "
                f"SELECT :base + i, :p, 'Customer ' || i || ' ' || {pick}, "
                "CASE WHEN i % 3 = 0 THEN 'company' ELSE 'personal' END, "
                f"'billing' || i || '@' || {pick} || '.example', '', "
                "CASE WHEN i % 100 = 0 THEN 'key account' ELSE '' END, i % 3, "
                f"{_seconds_before_now(engine, ':n - i')}, :credit, (i * 7919) % :credit, "
                f"NULL, {_fired(engine, defaults, '(i * 7919) % :credit', ':credit')} FROM g"
            ),
            params,
        )
        c.execute(
            text(
                f"{_series(engine)} INSERT INTO allocation_records (partner_id, kind, "
                "customer_uin, operator, change, total_after, available_after, remark, source, "
                "created_at) SELECT :p, 'allocation', :base + i, 'bench@example.com', :credit, "
                f":credit, :credit, '', 'bulk', {_seconds_before_now(engine, ':n - i')} FROM g"
            ),
            params,
        )
        c.execute(
            text("UPDATE partners SET pool_allocated = pool_allocated + :total WHERE id = :p"),
            {"total": count * credit, "p": partner.id},
        )
        if engine.dialect.name == "postgresql":
            c.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('accounts', 'uin'), "
                    "(SELECT MAX(uin) FROM accounts))"
                )
            )
    partner.customers.extend(range(base + 1, base + count + 1))


def add_records(engine: Engine, partner: Partner, count: int, *, chunk: int = 1_000_000) -> None:
    """Append ``count`` allocation records of 1.00 each, spread over the partner's
    customers, in chunks (each an ``INSERT ... SELECT``). The records' shapes are real;
    their sums are not reconciled with the customers (verify is not run on bench data)."""
    uins = partner.customers
    first, spread = min(uins), len(uins)
    analyze(engine)  # first clear what the steps before left (see analyze)
    done = 0
    while done < count:
        n = min(chunk, count - done)
        with engine.begin() as c:
            c.execute(
                text(
                    f"{_series(engine)} INSERT INTO allocation_records (partner_id, kind, "
                    "customer_uin, operator, change, total_after, available_after, remark, "
                    "source, created_at) SELECT :p, "
                    "CASE WHEN i % 5 = 0 THEN 'withdrawal' ELSE 'allocation' END, "
                    ":first + (i % :spread), CASE WHEN i % 2 = 0 THEN 'ops@bench.example' "
                    "ELSE 'api-key' END, CASE WHEN i % 5 = 0 THEN -100 ELSE 100 END, "
                    "100000 + i, 50000 + i, '', 'bulk', "
                    f"{_seconds_before_now(engine, ':n - i')} FROM g"
                ),
                {"n": n, "p": partner.id, "first": first, "spread": spread, "now": _now(engine)},
            )
        done += n
    analyze(engine)


def vacuum(engine: Engine) -> None:
    """Clear the dead row versions the loads before left, as autovacuum would between
    them (PostgreSQL only): a load measured after another starts from the same state as
    the first. Every allocation rewrites its customer's row and all six of its index
    entries (their keys change: no HOT update); where autovacuum is off, as on machines
    set up for tests, 60,000 allocations leave 60,000 dead versions that the next load's
    lookups wade through (docs/benchmarks.md, run 19)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM"))


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics after a bulk load, and clear the dead row versions
    earlier loads left (as autovacuum would, later). Without the VACUUM, the partner row
    that every allocation of the previous step updated has left its table many pages of
    dead versions; the planner still reads that table as one row and checks each foreign
    key to it with a sequential scan, so a 900,000-row insert read ~18 pages per row
    (>100 GB through the cache, 9+ minutes instead of about one). On PostgreSQL it ends
    with a CHECKPOINT, so that a load measured next is not measured against the bulk
    load's write-back."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
        if engine.dialect.name == "postgresql":
            # Write the bulk load's pages out now rather than while the next load is measured
            # (run 6 measured the records page at 5,000,000 records while the checkpointer
            # was still writing out the 4,000,000 rows just inserted).
            c.execute(text("CHECKPOINT"))


def build_world(engine: Engine, *, partners: int, customers: int, credit: int) -> World:
    """``partners`` resellers sharing ``customers`` customers evenly, and a platform key."""
    made = []
    each = customers // partners
    for n in range(partners):
        partner = new_partner(engine, name=f"Bench reseller {n}", pool=10**11)
        add_customers(engine, partner, each, credit=credit)
        made.append(partner)
    analyze(engine)
    return World(made, platform_key(engine))


def purchase_policies(engine: Engine, world: World) -> None:
    """Half of the partners on ``block_at_limit`` (tolerance 10.00), through the ledger;
    the rest keep ``notify_only``. One customer in ten has its own policy, every third of
    them ``block_all``: the check reads both kinds of row."""
    from creditline.ledger import purchases

    with transaction(engine) as s:
        for n, partner in enumerate(world.partners):
            if n % 2 == 0:
                purchases.set_partner_default(
                    s, partner_id=partner.id, policy="block_at_limit", tolerance=1_000
                )
            for k, uin in enumerate(partner.customers[::10]):
                policy = "block_all" if k % 3 == 0 else "block_at_limit"
                purchases.set_customer_policy(s, partner_id=partner.id, uin=uin, policy=policy)


def top_up_rules(engine: Engine, world: World, *, amount: int = 100_00) -> None:
    """Every partner's default top-up rule on (issue 16.4), through the ledger: 100.00 when
    a customer's available credit falls below 50.00. The seeded consumption spreads
    customers evenly over their credit, so about 5 % start below it and are topped up at
    their first event, and a few more cross it as the workload goes on: every batch reads
    the rules and locks its pools, and the top-ups come at the rate a partner would see.
    ``amount`` (cents): another top-up; a small one (1.00) leaves a customer below
    50.00 for many batches, each of which tops it up again: a few dozen top-ups a batch."""
    from creditline.ledger import top_ups

    rule = top_ups.check_rule(below=50_00, amount=amount, monthly_cap=10**10)
    with transaction(engine) as s:
        for partner in world.partners:
            top_ups.set_partner_rule(s, partner_id=partner.id, rule=rule)
