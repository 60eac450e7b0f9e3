"""Per-key rate limits counted in the database (auth/rate_limit.py): several processes —
here, several limiters on one database, each with its own leases — spend one allowance."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, select, update

from creditline.auth.rate_limit import (
    LEASE_SECONDS,
    BucketStore,
    LeasePending,
    RateLimited,
    RateLimiter,
    SharedBuckets,
    chunk_of,
)
from creditline.db import transaction
from creditline.db.tables import RateBucket
from creditline.tc3.limits import Limit
from creditline.tc3.limits import RateLimiter as Tc3Limiter


class Clock:
    """A process's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _process(engine: Engine, clock: Clock | None = None) -> SharedBuckets:
    return SharedBuckets(BucketStore(engine), clock=clock or Clock())


def _admitted(limiter: RateLimiter, key: str) -> bool:
    try:
        limiter.take(key)
    except RateLimited as refused:
        assert refused.retry_after >= 1
        return False
    return True


def _age_bucket(engine: Engine, secret_id: str, seconds: float) -> None:
    """Move the bucket's last refill ``seconds`` into the past (time passing for it)."""
    with transaction(engine) as s:
        s.execute(
            update(RateBucket)
            .where(RateBucket.secret_id == secret_id)
            .values(refilled_at=RateBucket.refilled_at - seconds)
        )


def test_two_processes_share_one_allowance(engine: Engine) -> None:
    clocks = [Clock(), Clock()]
    limiters = [RateLimiter(10, _process(engine, clock)) for clock in clocks]
    answers = [_admitted(limiters[n % 2], "key-a") for n in range(30)]
    # Ten in total (the refill of 10 a minute adds none within the test's first second),
    # some from each process; everything after is refused by both.
    assert sum(answers) == 10, answers
    assert any(answers[0::2]) and any(answers[1::2])
    assert not any(answers[20:])
    # Another key has its own bucket.
    assert _admitted(limiters[0], "key-b")
    # Time passes for the shared bucket (30 s: 5 tokens at 10 a minute) and for the
    # processes' own refusals: five more requests pass, over both processes together.
    _age_bucket(engine, "key-a", 30)
    for clock in clocks:
        clock.now += 30
    answers = [_admitted(limiters[n % 2], "key-a") for n in range(12)]
    assert sum(answers) == 5, answers


def test_the_bucket_refills_to_its_capacity_only(engine: Engine) -> None:
    clock = Clock()
    limiter = RateLimiter(4, _process(engine, clock))
    assert [_admitted(limiter, "k") for _ in range(6)] == [True] * 4 + [False] * 2
    _age_bucket(engine, "k", 3600)
    clock.now += 3600
    assert [_admitted(limiter, "k") for _ in range(6)] == [True] * 4 + [False] * 2


def test_leases_are_chunks_sized_by_demand_and_expire(engine: Engine) -> None:
    clock = Clock()
    limiter = RateLimiter(6000, _process(engine, clock))
    most = chunk_of(6000, 100.0)
    assert 1 < most < 6000
    limiter.take("k")
    limiter.take("k")
    with transaction(engine) as s:
        row = s.execute(select(RateBucket)).scalar_one()
    # The key's first lease in a process is a whole chunk, debited at once from the full
    # bucket; the second request spent from memory.
    assert row.granted == most
    assert row.tokens == 6000 - most
    # A lease not spent within LEASE_SECONDS is dropped: the next request leases again, as
    # much as the process's own demand of the last second calls for (2 spent: 1 token).
    clock.now += LEASE_SECONDS + 0.1
    limiter.take("k")
    with transaction(engine) as s:
        row = s.execute(select(RateBucket)).scalar_one()
    assert row.granted == 1
    # Busy again: the leases grow with the demand, up to the chunk.
    for _ in range(4 * most):
        limiter.take("k")
        clock.now += 0.001
    limiter.buckets.take("k", "api", capacity=6000, rate=100.0)
    with transaction(engine) as s:
        assert s.execute(select(RateBucket.granted)).scalar_one() > 1


def test_no_limit_reads_nothing(engine: Engine) -> None:
    limiter = RateLimiter(0, _process(engine))
    for _ in range(100):
        limiter.take("k")
    with transaction(engine) as s:
        assert s.execute(select(RateBucket)).first() is None


def test_an_event_loop_is_never_made_to_wait(engine: Engine) -> None:
    """On an event loop's thread (the fast path) a key with no leased token raises
    LeasePending at once; the lease arrives in the background, and a thread may wait."""
    limiter = RateLimiter(600, _process(engine))

    async def on_the_loop() -> LeasePending:
        with pytest.raises(LeasePending) as raised:
            limiter.take("k")
        return raised.value

    pending = asyncio.run(on_the_loop())
    assert pending.retry_after == 1
    pending.wait()
    asyncio.run(asyncio.to_thread(limiter.take, "k"))  # a thread waits if it must
    limiter.take("k")


def test_tencent_limits_per_action_across_processes(engine: Engine) -> None:
    limits = {"A": Limit(3, 3600.0)}
    first, second = (Tc3Limiter(_process(engine), limits) for _ in range(2))
    answers = [(first, second)[n % 2].admit("k", "A") for n in range(8)]
    # Which process gets the last tokens depends on the background leases; the sum does not.
    assert sum(answers) == 3 and answers[:2] == [True, True], answers
    assert first.admit("k", "B")  # no limit for B and no "*"
    assert second.admit("other", "A")
    # A caller holding a transaction asks not to wait: told to lease first.
    third = Tc3Limiter(_process(engine), {"*": Limit(5, 1.0)})
    with pytest.raises(LeasePending) as raised:
        third.admit("k", "C", wait=False)
    raised.value.wait()
    assert third.admit("k", "C", wait=False)
