"""Two ``creditline serve`` processes on two ports, one PostgreSQL database: what a load
balancer in front of several machines needs — every request may land on either server,
and together they behave like one.

The test makes its own fresh database, starts both servers (each with its in-process
delivery worker) and drives them alternately: a key's rate limit (REST and Tencent) holds
across both, a console session made on one works on the other (and its logout ends it on
both), failed logins throttle across both, an idempotent write repeated on the other server
gets the stored answer, and each webhook is delivered exactly once while both workers run.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.intlpartnersmgt.v20220928 import intlpartnersmgt_client, models
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES, _postgres_admin_engine
from tests.reliability.service import SERVER_KEY, Process, Receiver, Server

from creditline import money
from creditline.auth import keys, users
from creditline.auth.users import MAX_FAILURES_PER_EMAIL
from creditline.config import get_settings
from creditline.db import make_engine, transaction
from creditline.db.migrate import upgrade
from creditline.db.tables import Delivery, OutboxEvent
from creditline.ledger import accounts, pools
from creditline.ledger.records import Origin
from creditline.notify import endpoints

#: The REST limit of both servers: small, so the test reaches it with a few requests.
PER_MINUTE = 10
#: The Tencent endpoint's limit of both servers, for every action.
TC3_LIMIT = 3
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def fresh_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new, migrated PostgreSQL database of this test alone, dropped at the end."""
    admin = _postgres_admin_engine()
    if isinstance(admin, str):
        if REQUIRE_POSTGRES:
            pytest.fail(admin + " (CREDITLINE_REQUIRE_POSTGRES=1)")
        pytest.skip(admin)
    # The test makes the keys the servers check: one server key.
    monkeypatch.setenv("CREDITLINE_SECRET_KEY", SERVER_KEY)
    get_settings.cache_clear()
    name = f"creditline_two_servers_{uuid.uuid4().hex[:12]}"
    autocommit = admin.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with autocommit.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        get_settings.cache_clear()


@dataclass(frozen=True)
class World:
    customers: list[int]
    #: Authorization headers, one key per check so each has its own allowance.
    limited: dict[str, str]
    idempotent: dict[str, str]
    hooks: list[dict[str, str]]
    tencent: tuple[str, str]
    user: str
    throttled_user: str


def _bearer(key: keys.ApiKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.secret_id}:{key.secret_key}"}


def _make_world(url: str, webhook_url: str) -> World:
    engine = make_engine(url)
    origin = Origin(operator="setup", source="cli")
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Twin Cloud", kind="reseller")
        uins = [
            accounts.create_customer(s, partner_id=partner.id, name=f"Customer {n}").uin
            for n in range(2)
        ]
        # The endpoint first: it receives the events recorded once it exists (the grant's).
        endpoints.add_endpoint(
            s, partner_id=partner.id, url=webhook_url, allow_private_targets=True
        )
        pools.grant(s, partner_id=partner.id, amount=1_000_000, origin=origin)

        def key(name: str, role: str) -> keys.ApiKey:
            return keys.create(s, name=name, principal="partner", partner_id=partner.id, role=role)

        limited = key("limited", "viewer")
        idempotent = key("idempotent", "operator")
        hooks = [key(f"hooks {n}", "operator") for n in range(2)]
        tencent = key("tencent", "admin")
        for email in ("ops@twin.example", "victim@twin.example"):
            users.create_user(
                s, partner_id=partner.id, email=email, password=PASSWORD, role="admin"
            )
    engine.dispose()
    return World(
        customers=uins,
        limited=_bearer(limited),
        idempotent=_bearer(idempotent),
        hooks=[_bearer(k) for k in hooks],
        tencent=(tencent.secret_id, tencent.secret_key),
        user="ops@twin.example",
        throttled_user="victim@twin.example",
    )


@pytest.fixture
def cluster(
    fresh_postgres: str, tmp_path: Path
) -> Iterator[tuple[World, list[Server], Receiver, str]]:
    receiver = Receiver()
    world = _make_world(fresh_postgres, receiver.url)
    env = {
        "CREDITLINE_API_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
        "CREDITLINE_TC3_RATE_LIMITS": f"*={TC3_LIMIT}/3600",
    }
    servers = [
        Server(fresh_postgres, tmp_path / f"serve-{n}.log", worker=True, env=env) for n in range(2)
    ]
    try:
        for server in servers:
            Process.start(server)  # both start at once; each is waited for below
        for server in servers:
            server.wait_until_up(seconds=180)  # generous: the machine may be busy
        yield world, servers, receiver, fresh_postgres
    finally:
        for server in servers:
            server.stop()
        receiver.close()


def _csrf(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def _log_in(browser: httpx.Client, base: str, email: str, password: str) -> httpx.Response:
    form = browser.get(base + "/login")
    return browser.post(
        base + "/login",
        data={"email": email, "password": password, "csrf_token": _csrf(form.text)},
    )


def _tencent(
    server: Server, secret: tuple[str, str]
) -> intlpartnersmgt_client.IntlpartnersmgtClient:
    endpoint = server.base_url.removeprefix("http://")
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint))
    return intlpartnersmgt_client.IntlpartnersmgtClient(credential.Credential(*secret), "", profile)


def test_two_servers_behave_as_one(
    cluster: tuple[World, list[Server], Receiver, str],
) -> None:
    world, servers, receiver, url = cluster
    bases = [server.base_url for server in servers]
    started = time.monotonic()

    # --- A key's REST rate limit holds across both servers ---
    statuses: list[tuple[int, int]] = []
    for n in range(3 * PER_MINUTE):
        answer = httpx.get(bases[n % 2] + "/v1/pool", headers=world.limited, timeout=30)
        assert answer.status_code in (200, 429), answer.text
        if answer.status_code == 429:
            assert answer.json()["error"]["type"] == "rate_limit_error"
            assert int(answer.headers["retry-after"]) >= 1
        statuses.append((n % 2, answer.status_code))
    admitted = [server for server, status in statuses if status == 200]
    # The bucket refills PER_MINUTE a minute: what the seconds of the test add, at most.
    refill = int((time.monotonic() - started) * PER_MINUTE / 60) + 1
    assert PER_MINUTE - 2 <= len(admitted) <= PER_MINUTE + refill, statuses
    assert set(admitted) == {0, 1}, "both servers admitted some"
    assert [s for _, s in statuses[-PER_MINUTE:]].count(429) >= PER_MINUTE - refill, statuses

    # --- The Tencent endpoint's limit too (a key and an action, across both) ---
    tencent_answers = []
    for n in range(3 * TC3_LIMIT):
        client = _tencent(servers[n % 2], world.tencent)
        try:
            client.QueryPartnerCredit(models.QueryPartnerCreditRequest())
            tencent_answers.append("ok")
        except TencentCloudSDKException as error:
            tencent_answers.append(error.code)
    assert tencent_answers.count("ok") == TC3_LIMIT, tencent_answers
    assert set(tencent_answers) == {"ok", "RequestLimitExceeded"}, tencent_answers

    # --- A console session made on one server works on the other ---
    with httpx.Client(timeout=30) as browser:  # one cookie jar: cookies ignore the port
        logged_in = _log_in(browser, bases[0], world.user, PASSWORD)
        assert logged_in.status_code == 303, logged_in.text
        page = browser.get(bases[1] + "/customers")
        assert page.status_code == 200, page.text
        assert "Customer 0" in page.text
        # A form of the session, sent to the other server: its CSRF token holds there, and
        # the logout ends the session on both.
        logged_out = browser.post(bases[0] + "/logout", data={"csrf_token": _csrf(page.text)})
        assert logged_out.status_code == 303, logged_out.text
        again = browser.get(bases[1] + "/customers")
        assert again.status_code == 303 and again.headers["location"].endswith("/login")

    # --- Failed logins throttle across both servers ---
    with httpx.Client(timeout=30) as browser:
        for n in range(MAX_FAILURES_PER_EMAIL):
            failed = _log_in(browser, bases[n % 2], world.throttled_user, "wrong password")
            assert failed.status_code == 401, failed.text
        for base in bases:
            # Even the right password, on either server: the address is throttled.
            refused = _log_in(browser, base, world.throttled_user, PASSWORD)
            assert refused.status_code == 429, refused.text
            assert "Too many failed logins" in refused.text

    # --- An idempotent write repeated on the other server gets the stored answer ---
    path = f"/v1/customers/{world.customers[0]}/allocate"
    headers = {**world.idempotent, "Idempotency-Key": "twin-1"}
    body = {"amount": "12.34", "remark": "once"}
    first = httpx.post(bases[0] + path, json=body, headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    repeated = httpx.post(bases[1] + path, json=body, headers=headers, timeout=30)
    assert repeated.status_code == 200, repeated.text
    assert repeated.json() == first.json()
    assert repeated.headers.get("idempotent-replayed") == "true"
    changed = httpx.post(
        bases[1] + path, json={**body, "amount": "1.00"}, headers=headers, timeout=30
    )
    assert changed.status_code == 409, changed.text

    # --- Each webhook is delivered exactly once while both delivery workers run ---
    allocations = 0
    for n in range(8):
        hook_key = world.hooks[n % 2]
        answer = httpx.post(
            bases[n % 2] + f"/v1/customers/{world.customers[1]}/allocate",
            json={"amount": money.to_text(100 + n)},
            headers={**hook_key, "Idempotency-Key": f"hook-{n}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        allocations += 1
    engine = make_engine(url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with transaction(engine) as s:
                events = s.scalar(select(func.count()).select_from(OutboxEvent)) or 0
                undelivered = (
                    s.scalar(
                        select(func.count())
                        .select_from(Delivery)
                        .where(Delivery.status != "delivered")
                    )
                    or 0
                )
                waiting = (
                    s.scalar(
                        select(func.count())
                        .select_from(OutboxEvent)
                        .where(OutboxEvent.delivered_at.is_(None))
                    )
                    or 0
                )
            if events and not undelivered and not waiting:
                break
            time.sleep(0.2)
        with transaction(engine) as s:
            deliveries = s.scalar(select(func.count()).select_from(Delivery)) or 0
    finally:
        engine.dispose()
    assert events >= allocations + 1  # the idempotent write's event too
    assert not undelivered and not waiting, "not every event was delivered"
    time.sleep(1.5)  # a second delivery, were there one, would arrive meanwhile
    posts = Counter(receiver.received)
    assert deliveries == events
    assert len(posts) == deliveries, posts
    assert set(posts.values()) == {1}, f"delivered more than once: {posts}"
    for server in servers:
        assert server.child is not None and server.child.poll() is None, "a server died"
        log = server.log.read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
