"""Random sequences of grants, pool allocations, allocations, withdrawals, usage and
refunds — refused ones included — checked after every step against a plain in-memory
model of DESIGN §2-3, with conservation (``verify``) and the alarm rule; purchase checks
among them, answered by the partner's policy as issue 17 states it (and changing nothing);
monthly statements among them, whose closing is each customer's balance (issue 17); and
automatic top-up rules set and triggered by usage as issue 16 states them (one top-up per
trigger, the monthly cap, the ceiling, the pool; a refusal changes nothing and alarms once).

Failures print the falsifying steps and a ``@reproduce_failure``/seed line to replay them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import Engine, select
from tests.ledger.scenario import OPS, empty_database

from creditline.clock import utcnow
from creditline.db import transaction
from creditline.db.tables import TopUpMonth
from creditline.errors import CreditlineError, InsufficientCredit, InsufficientPool, InvalidAmount
from creditline.ledger import (
    accounts,
    alarms,
    credit,
    pools,
    purchases,
    statements,
    top_ups,
    usage,
)
from creditline.ledger.verify import verify
from creditline.money import to_text

SETTINGS = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

amounts = st.integers(min_value=-300_00, max_value=600_00)
usage_amounts = st.integers(min_value=0, max_value=150_00)


@dataclass
class Pool:
    total: int = 0
    allocated: int = 0
    #: What the distributor has given this pool, net; the rest of the total the platform
    #: granted. Each takes back only its own (DESIGN §2).
    from_distributor: int = 0

    @property
    def remaining(self) -> int:
        return self.total - self.allocated

    @property
    def from_platform(self) -> int:
        return self.total - self.from_distributor


@dataclass
class Credit:
    partner: int
    thresholds: list[int] | None = None
    total: int = 0
    consumed: int = 0
    fired: set[int] = field(default_factory=set)
    #: The customer's own purchase policy and tolerance (None: the partner's).
    policy: str | None = None
    tolerance: int | None = None
    #: The customer's own top-up setting: ("own", rule), ("off", None); None: the default.
    top_up: tuple[str, TopUpRule | None] | None = None
    #: This month's top-ups, and the reason of the last refusal since the last top-up.
    topped_up: int = 0
    refused: str | None = None

    @property
    def available(self) -> int:
        return self.total - self.consumed


@dataclass(frozen=True)
class TopUpRule:
    """Issue 16.4, as written: when available credit falls below ``below`` (or
    utilisation reaches ``percent``), allocate ``amount`` from the pool, at most ``cap``
    in a calendar month, never past ``ceiling`` of total credit."""

    amount: int
    cap: int
    below: int | None
    percent: int | None
    ceiling: int | None

    def holds(self, c: Credit) -> bool:
        if self.below is not None:
            return c.available < self.below
        assert self.percent is not None
        return c.consumed > 0 and c.consumed * 100 >= self.percent * c.total

    def stored(self) -> top_ups.Rule:
        return top_ups.check_rule(
            amount=self.amount,
            monthly_cap=self.cap,
            below=self.below,
            utilization_percent=self.percent,
            ceiling=self.ceiling,
        )


top_up_rules = st.builds(
    lambda amount, caps, trigger, ceiling: TopUpRule(
        amount,
        amount * caps,
        trigger if trigger >= 0 else None,
        -trigger if trigger < 0 else None,
        None if ceiling is None else amount * ceiling,
    ),
    st.integers(1_00, 200_00),
    st.integers(1, 4),
    # >= 0: available below that many cents; < 0: utilisation reaches that many percent.
    st.one_of(st.integers(0, 300_00), st.integers(-150, -50)),
    st.sampled_from([1, 2, 3, None]),
)


class Model:
    """The rules, written as plainly as possible, independent of the database."""

    def __init__(self) -> None:
        self.pools: dict[int, Pool] = {}
        self.credits: dict[int, Credit] = {}
        self.defaults: dict[int, list[int]] = {}
        #: Event ids are unique per partner: (partner, event id).
        self.seen_events: set[tuple[int, str]] = set()
        #: Each partner's default purchase policy and tolerance, once it sets one.
        self.purchase_defaults: dict[int, tuple[str, int]] = {}
        #: Each partner's default top-up rule, once it sets one.
        self.top_up_defaults: dict[int, TopUpRule] = {}
        #: The calendar month the tallies are of (a new month starts them again).
        self.month = ""

    def top_up_rule(self, uin: int) -> TopUpRule | None:
        c = self.credits[uin]
        if c.top_up is not None:
            return c.top_up[1]
        return self.top_up_defaults.get(c.partner)

    def top_up(self, uin: int) -> tuple[str | None, bool] | None:
        """After usage that raised the customer's consumption: None when its rule does not
        fire; else (the refusal's reason or None, whether the partner is alarmed of it).
        Checked in the order the docs give: ceiling, monthly cap, pool."""
        c = self.credits[uin]
        rule = self.top_up_rule(uin)
        if rule is None or not rule.holds(c):
            return None
        pool = self.pools[c.partner]
        reason = None
        if rule.ceiling is not None and c.total + rule.amount > rule.ceiling:
            reason = "ceiling"
        elif c.topped_up + rule.amount > rule.cap:
            reason = "monthly_cap"
        elif rule.amount > pool.remaining:
            reason = "pool_short"
        if reason is not None:
            alarmed = c.refused != reason
            c.refused = reason
            return reason, alarmed
        c.total += rule.amount
        pool.allocated += rule.amount
        c.topped_up += rule.amount
        c.refused = None
        return None, False

    def purchase(self, uin: int, amount: int) -> str:
        """Issue 17: notify_only allows; block_all refuses; block_at_limit refuses when
        available credit after the purchase would be below zero, or below the tolerance
        the partner sets (below minus the tolerance)."""
        c = self.credits[uin]
        policy, tolerance = self.purchase_defaults.get(c.partner, ("notify_only", 0))
        if c.policy is not None:
            policy = c.policy
            tolerance = c.tolerance if c.tolerance is not None else tolerance
        if policy == "block_all":
            return "refused"
        if policy == "block_at_limit" and c.available - amount < -tolerance:
            return "refused"
        return "allowed"

    def alarm(self, uin: int) -> tuple[int, list[int]] | None:
        """Apply the firing rule after a change: (threshold named, thresholds reached)."""
        c = self.credits[uin]
        effective = c.thresholds if c.thresholds is not None else self.defaults[c.partner]
        reached = {
            t
            for t in effective
            if c.consumed > 0 and (c.total == 0 or c.consumed * 100 >= t * c.total)
        }
        new = sorted(reached - c.fired)
        c.fired = reached
        return (new[-1], new) if new else None


def _alarm_tuple(alarm: object) -> tuple[int, list[int]] | None:
    if alarm is None:
        return None
    return alarm.threshold, list(alarm.thresholds_reached)  # type: ignore[attr-defined]


def run_ledger_machine(engine: Engine) -> None:
    class LedgerMachine(RuleBasedStateMachine):
        """A distributor with a sub-reseller, a reseller, and customers of each; the
        platform grants to any of them, the sub-reseller included."""

        @initialize(rule=top_up_rules, pools_given=st.integers(500_00, 2_000_00))
        def open_ledger(self, rule: TopUpRule, pools_given: int) -> None:
            """Every partner starts with the same default top-up rule and pool, so that
            top-ups, made and refused, happen in most runs."""
            empty_database(engine)
            self.model = Model()
            with transaction(engine) as s:
                dist = accounts.create_partner(s, name="Dist", kind="distributor").id
                sub = accounts.create_partner(s, name="Sub", kind="sub-reseller", parent_id=dist).id
                res = accounts.create_partner(s, name="Res", kind="reseller").id
                alarms.set_thresholds(s, partner_id=res, thresholds=[50, 100, 200])
                self.dist, self.sub = dist, sub
                self.partners = [dist, sub, res]
                self.model.defaults = {dist: [75, 90, 100], sub: [75, 90, 100], res: [50, 100, 200]}
                for p in self.partners:
                    self.model.pools[p] = Pool(total=pools_given)
                    if pools_given:
                        pools.grant(s, partner_id=p, amount=pools_given, origin=OPS)
                    top_ups.set_partner_rule(s, partner_id=p, rule=rule.stored())
                    self.model.top_up_defaults[p] = rule
                for owner, own_list in [(dist, None), (sub, None), (sub, [10, 60]), (res, None)]:
                    uin = accounts.create_customer(s, partner_id=owner, name="C").uin
                    if own_list is not None:
                        alarms.set_thresholds(
                            s, partner_id=owner, thresholds=own_list, customer_uin=uin
                        )
                    self.model.credits[uin] = Credit(owner, own_list)
            self.customers = sorted(self.model.credits)

        @rule(partner=st.integers(0, 2), amount=amounts)
        def grant(self, partner: int, amount: int) -> None:
            pid = self.partners[partner]
            pool = self.model.pools[pid]
            expected: type[CreditlineError] | None = None
            if amount == 0:
                expected = InvalidAmount
            elif -amount > pool.remaining or -amount > pool.from_platform:
                # Down to remaining, and the platform's grants are taken back only by the
                # platform: never what a distributor gave.
                expected = InsufficientPool
            with transaction(engine) as s:
                try:
                    change = pools.grant(s, partner_id=pid, amount=amount, origin=OPS)
                except CreditlineError as exc:
                    assert type(exc) is expected, exc
                    return
            assert expected is None
            pool.total += amount
            assert (change.pool.total, change.pool.allocated) == (pool.total, pool.allocated)

        @rule(amount=amounts)
        def allocate_pool(self, amount: int) -> None:
            parent, child = self.model.pools[self.dist], self.model.pools[self.sub]
            expected: type[CreditlineError] | None = None
            if amount == 0:
                expected = InvalidAmount
            elif amount > parent.remaining:
                expected = InsufficientPool
            elif -amount > child.from_distributor or -amount > child.remaining:
                # A take-back is bounded by what this distributor gave this sub-reseller,
                # net, and by the sub-reseller's remaining; never by what the platform
                # granted it directly.
                expected = InsufficientPool
            with transaction(engine) as s:
                try:
                    pools.allocate_pool(
                        s,
                        distributor_id=self.dist,
                        sub_reseller_id=self.sub,
                        amount=amount,
                        origin=OPS,
                    )
                except CreditlineError as exc:
                    assert type(exc) is expected, exc
                    return
            assert expected is None
            parent.allocated += amount
            child.total += amount
            child.from_distributor += amount

        @rule(customer=st.integers(0, 3), amount=amounts)
        def allocate_credit(self, customer: int, amount: int) -> None:
            uin = self.customers[customer]
            c = self.model.credits[uin]
            pool = self.model.pools[c.partner]
            expected: type[CreditlineError] | None = None
            if amount == 0:
                expected = InvalidAmount
            elif amount > 0 and amount > pool.remaining:
                expected = InsufficientPool
            elif amount < 0 and -amount > max(min(c.available, c.total), 0):
                expected = InsufficientCredit
            with transaction(engine) as s:
                try:
                    change = credit.allocate_credit(
                        s, partner_id=c.partner, customer_uin=uin, amount=amount, origin=OPS
                    )
                except CreditlineError as exc:
                    assert type(exc) is expected, exc
                    return
            assert expected is None, f"{to_text(amount)} should have been refused"
            c.total += amount
            pool.allocated += amount
            assert (change.total_credit, change.consumed) == (c.total, c.consumed)
            assert _alarm_tuple(change.alarm) == self.model.alarm(uin)

        @rule(
            lines=st.lists(
                st.tuples(
                    st.integers(0, 3),
                    usage_amounts,
                    st.integers(0, 100),
                    st.booleans(),
                    st.integers(0, 40),
                ),
                min_size=1,
                max_size=4,
            )
        )
        def post_usage(self, lines: list[tuple[int, int, int, bool, int]]) -> None:
            # Event ids come from a small space so repeats, within and across batches, happen.
            raws: list[tuple[int, dict[str, object]]] = []
            for n, (customer, list_amount, voucher_percent, refund, event) in enumerate(lines):
                raws.append(
                    (
                        n + 1,
                        {
                            "event_id": f"ev-{event}",
                            "customer_uin": self.customers[customer],
                            "product": "cvm",
                            "list_amount": to_text(list_amount),
                            "voucher_amount": to_text(list_amount * voucher_percent // 100),
                            "occurred_at": "2026-03-01T00:00:00Z",
                            "kind": "refund" if refund else "charge",
                        },
                    )
                )
            month = top_ups.month_of(datetime.now(UTC))
            if month != self.model.month:
                self.model.month = month
                for c in self.model.credits.values():
                    c.topped_up, c.refused = 0, None
            with transaction(engine) as s:
                result = usage.ingest(s, usage.parse_batch(raws))
            changed: set[int] = set()
            raised: dict[int, int] = {}
            accepted = 0
            for customer, list_amount, voucher_percent, refund, event in lines:
                uin = self.customers[customer]
                seen = (self.model.credits[uin].partner, f"ev-{event}")
                if seen in self.model.seen_events:
                    continue
                self.model.seen_events.add(seen)
                counted = list_amount - list_amount * voucher_percent // 100
                self.model.credits[uin].consumed += -counted if refund else counted
                raised[uin] = raised.get(uin, 0) + (-counted if refund else counted)
                changed.add(uin)
                accepted += 1
            assert (result.accepted, result.duplicates) == (accepted, len(lines) - accepted)
            expected_alarms = {}
            for uin in sorted(changed):
                fired = self.model.alarm(uin)
                if fired is not None:
                    expected_alarms[uin] = fired
            assert {a.customer_uin: _alarm_tuple(a) for a in result.alarms} == expected_alarms
            assert len(result.alarms) == len(expected_alarms)
            # Then one top-up per customer whose consumption rose, by partner then UIN.
            expected_top_ups = []
            for uin in sorted(changed, key=lambda u: (self.model.credits[u].partner, u)):
                if raised[uin] <= 0:
                    continue
                outcome = self.model.top_up(uin)
                if outcome is not None:
                    expected_top_ups.append((uin, *outcome))
            assert [(t.customer_uin, t.refused, t.alarmed) for t in result.top_ups] == (
                expected_top_ups
            )
            for made in result.top_ups:
                c = self.model.credits[made.customer_uin]
                if made.change is None:
                    continue
                # An allocation like any other: its record, its total, its alarm rule.
                assert made.change.record.source == "rule"
                assert made.change.record.change == made.rule.amount
                assert made.change.total_credit == c.total
                if made.rule.ceiling is not None:
                    assert made.change.total_credit <= made.rule.ceiling
                assert _alarm_tuple(made.change.alarm) == self.model.alarm(made.customer_uin)

        @rule(customer=st.integers(0, 3), bad=st.sampled_from(["1.001", "NaN", "-1.00"]))
        def post_invalid_batch(self, customer: int, bad: str) -> None:
            raws: list[tuple[int, dict[str, object]]] = [
                (
                    1,
                    {
                        "event_id": "never-counted-1",
                        "customer_uin": self.customers[customer],
                        "product": "cvm",
                        "list_amount": "1.00",
                        "voucher_amount": "0",
                        "occurred_at": "2026-03-01T00:00:00Z",
                    },
                ),
                (
                    2,
                    {
                        "event_id": "never-counted-2",
                        "customer_uin": self.customers[customer],
                        "product": "cvm",
                        "list_amount": bad,
                        "voucher_amount": "0",
                        "occurred_at": "2026-03-01T00:00:00Z",
                    },
                ),
            ]
            with transaction(engine) as s:
                try:
                    usage.ingest(s, usage.parse_batch(raws))
                except usage.InvalidBatch as exc:
                    assert [e.line for e in exc.errors] == [2]
                else:
                    raise AssertionError("an invalid batch was accepted")

        @rule(
            customer=st.integers(0, 3),
            policy=st.sampled_from([None, "notify_only", "block_at_limit", "block_all"]),
            tolerance=st.one_of(st.none(), st.integers(0, 200_00)),
            default=st.booleans(),
        )
        def set_purchase_policy(
            self, customer: int, policy: str | None, tolerance: int | None, default: bool
        ) -> None:
            uin = self.customers[customer]
            c = self.model.credits[uin]
            with transaction(engine) as s:
                if default:
                    chosen = policy or "notify_only"
                    purchases.set_partner_default(
                        s, partner_id=c.partner, policy=chosen, tolerance=tolerance or 0
                    )
                    self.model.purchase_defaults[c.partner] = (chosen, tolerance or 0)
                    return
                if policy is None:
                    tolerance = None
                purchases.set_customer_policy(
                    s, partner_id=c.partner, uin=uin, policy=policy, tolerance=tolerance
                )
            c.policy, c.tolerance = policy, tolerance

        @rule(
            customer=st.integers(0, 3),
            mode=st.sampled_from(["default", "own", "off", "partner"]),
            chosen=st.one_of(st.none(), top_up_rules),
        )
        def set_top_up_rule(self, customer: int, mode: str, chosen: TopUpRule | None) -> None:
            uin = self.customers[customer]
            c = self.model.credits[uin]
            with transaction(engine) as s:
                if mode == "partner":
                    top_ups.set_partner_rule(
                        s,
                        partner_id=c.partner,
                        rule=None if chosen is None else chosen.stored(),
                    )
                    if chosen is None:
                        self.model.top_up_defaults.pop(c.partner, None)
                    else:
                        self.model.top_up_defaults[c.partner] = chosen
                    return
                if mode == "own" and chosen is None:
                    mode = "off"
                top_ups.set_customer_rule(
                    s,
                    partner_id=c.partner,
                    customer_uin=uin,
                    mode=mode,
                    rule=chosen.stored() if mode == "own" and chosen is not None else None,
                )
            c.top_up = None if mode == "default" else (mode, chosen if mode == "own" else None)

        @rule(customer=st.integers(0, 3), amount=st.integers(-1_00, 800_00))
        def check_purchase(self, customer: int, amount: int) -> None:
            uin = self.customers[customer]
            c = self.model.credits[uin]
            with transaction(engine) as s:
                try:
                    decision = purchases.check(
                        s, partner_id=c.partner, customer_uin=uin, amount=amount, requested_by="t"
                    )
                except InvalidAmount:
                    assert amount <= 0
                    return
            assert amount > 0
            assert decision.answer == self.model.purchase(uin, amount), (
                decision,
                c,
                self.model.purchase_defaults.get(c.partner),
            )
            assert decision.available == c.available

        @rule(partner=st.integers(0, 2))
        def read_statements(self, partner: int) -> None:
            pid = self.partners[partner]
            month = statements.Month.of(utcnow(), ZoneInfo("UTC"))
            with transaction(engine) as s:
                made = statements.statements(s, partner_id=pid, month=month)
            mine = {uin: c for uin, c in self.model.credits.items() if c.partner == pid}
            assert [m.customer_uin for m in made] == sorted(mine)
            for m in made:
                c = mine[m.customer_uin]
                # The open month ends at the balances: every change is in it or before it.
                closing = (m.closing_total_credit, m.closing_consumed, m.closing_available)
                assert closing == (c.total, c.consumed, c.total - c.consumed), (m, c)

        @invariant()
        def balances_match_the_model_and_verify_is_clean(self) -> None:
            if not hasattr(self, "model"):
                return
            with transaction(engine) as s:
                assert verify(s) == []
                for pid, pool in self.model.pools.items():
                    row = accounts.get_partner(s, pid)
                    stored = (row.pool_total, row.pool_allocated, row.pool_from_distributor)
                    assert stored == (pool.total, pool.allocated, pool.from_distributor), pid
                    assert row.pool_remaining >= 0
                for uin, c in self.model.credits.items():
                    row = accounts.get_customer(s, c.partner, uin)
                    assert (row.total_credit, row.consumed) == (c.total, c.consumed), uin
                    assert sorted(row.fired_thresholds) == sorted(c.fired), uin
                    assert row.total_credit >= 0
                    tally = s.execute(
                        select(TopUpMonth.topped_up, TopUpMonth.refused).where(
                            TopUpMonth.partner_id == c.partner,
                            TopUpMonth.customer_uin == uin,
                            TopUpMonth.month == self.model.month,
                        )
                    ).one_or_none()
                    assert (tuple(tally) if tally else (0, None)) == (c.topped_up, c.refused)

    LedgerMachine.TestCase.settings = SETTINGS
    run = LedgerMachine.TestCase("runTest")
    run.runTest()


def test_random_operations_keep_the_ledger_conserved(engine: Engine) -> None:
    run_ledger_machine(engine)
