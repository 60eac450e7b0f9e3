"""Console fixtures: an application with the console on each engine, a small world of two
partners and their users, and logged-in test clients."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from creditline import console
from creditline.auth import users
from creditline.db import transaction
from creditline.ledger import accounts, credit, pools
from creditline.ledger.records import Origin

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class World:
    """Two partners (A a distributor, B a reseller), their customers and users."""

    a: int
    b: int
    a_customers: list[int]
    b_customer: int
    sub: int


def build_world(engine: Engine) -> World:
    setup = Origin(operator="setup", source="cli")
    with transaction(engine) as s:
        a = accounts.create_partner(s, name="Acme Cloud", kind="distributor")
        b = accounts.create_partner(s, name="Bravo Hosting", kind="reseller")
        sub = accounts.create_partner(s, name="Acme Sub", kind="sub-reseller", parent_id=a.id)
        pools.grant(s, partner_id=a.id, amount=1_000_000, origin=setup)
        pools.grant(s, partner_id=b.id, amount=500_000, origin=setup)
        names = ["Alpha Games", "Beta Labs", "Gamma Retail"]
        a_customers = []
        for i, name in enumerate(names):
            c = accounts.create_customer(
                s,
                partner_id=a.id,
                name=name,
                type="company",
                email=f"ops{i}@{name.split()[0].lower()}.example",
                remark=f"tier {i}",
            )
            a_customers.append(c.uin)
        credit.allocate_credit(
            s, partner_id=a.id, customer_uin=a_customers[0], amount=100_000, origin=setup
        )
        bc = accounts.create_customer(s, partner_id=b.id, name="Bravo Customer")
        for role in ("admin", "operator", "viewer"):
            users.create_user(
                s, partner_id=a.id, email=f"{role}@acme.example", password=PASSWORD, role=role
            )
        users.create_user(
            s, partner_id=b.id, email="admin@bravo.example", password=PASSWORD, role="admin"
        )
        users.create_user(
            s, partner_id=None, email="staff@vendor.example", password=PASSWORD, role="platform"
        )
        return World(a=a.id, b=b.id, a_customers=a_customers, b_customer=bc.uin, sub=sub.id)


def make_app(engine: Engine) -> FastAPI:
    app = FastAPI()
    app.state.engine = engine
    console.install(app)
    return app


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the form; the CSRF token of the session is returned."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    home = client.get(response.headers["location"])
    return csrf_of(home.text)


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    return make_app(engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at production cost takes most of a test's time; the console's behaviour is
    the same with the cheapest parameters argon2 allows."""
    from argon2 import PasswordHasher

    from creditline.auth import passwords

    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture(autouse=True)
def server_key(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    """API keys need the server key: given on PostgreSQL, generated beside a SQLite file."""
    from creditline.config import get_settings

    if database_url.startswith("postgresql"):
        monkeypatch.setenv("CREDITLINE_SECRET_KEY", "test-server-key-" + "x" * 32)
    else:
        monkeypatch.delenv("CREDITLINE_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
