"""API test fixtures: the server key, and a partner world with keys of every kind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from creditline.app import create_app
from creditline.auth import keys
from creditline.config import Settings, get_settings
from creditline.db import transaction
from creditline.ledger import accounts, credit, pools
from creditline.ledger.records import Origin


@pytest.fixture(autouse=True)
def server_key(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Iterator[None]:
    """PostgreSQL needs ``CREDITLINE_SECRET_KEY``; SQLite runs with the generated key file,
    so both ways of keeping the server key are exercised."""
    if database_url.startswith("postgresql"):
        monkeypatch.setenv("CREDITLINE_SECRET_KEY", "test-server-key-" + "x" * 32)
    else:
        monkeypatch.delenv("CREDITLINE_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@dataclass(frozen=True)
class World:
    """Two resellers (A, B), a distributor with one sub-reseller, their customers, and a
    key of every kind; ``h(name)`` gives the Authorization header of key ``name``."""

    a: int
    b: int
    dist: int
    sub: int
    a_customer: int
    b_customer: int
    keys: dict[str, tuple[str, str]]

    def h(self, name: str, **extra: str) -> dict[str, str]:
        secret_id, secret_key = self.keys[name]
        return {"Authorization": f"Bearer {secret_id}:{secret_key}", **extra}


@pytest.fixture
def world(engine: Engine) -> World:
    origin = Origin(operator="setup", source="cli")
    made: dict[str, tuple[str, str]] = {}
    with transaction(engine) as s:
        a = accounts.create_partner(s, name="Alpha Cloud", kind="reseller")
        b = accounts.create_partner(s, name="Beta Cloud", kind="reseller")
        dist = accounts.create_partner(s, name="Delta Distribution", kind="distributor")
        sub = accounts.create_partner(s, name="Sub One", kind="sub-reseller", parent_id=dist.id)
        ac = accounts.create_customer(
            s, partner_id=a.id, name="Ann Ltd", email="ann@example.com", remark="gold"
        )
        bc = accounts.create_customer(s, partner_id=b.id, name="Bob Inc")
        for partner in (a, b, dist):
            pools.grant(s, partner_id=partner.id, amount=1_000_000, origin=origin)
        credit.allocate_credit(s, partner_id=b.id, customer_uin=bc.uin, amount=5_000, origin=origin)
        specs: dict[str, dict[str, object]] = {
            "a_admin": {"principal": "partner", "partner_id": a.id, "role": "admin"},
            "a_operator": {"principal": "partner", "partner_id": a.id, "role": "operator"},
            "a_viewer": {"principal": "partner", "partner_id": a.id, "role": "viewer"},
            "b_admin": {"principal": "partner", "partner_id": b.id, "role": "admin"},
            "dist_admin": {"principal": "partner", "partner_id": dist.id, "role": "admin"},
            "sub_admin": {"principal": "partner", "partner_id": sub.id, "role": "admin"},
            "platform": {"principal": "platform"},
            "a_customer": {"principal": "customer", "customer_uin": ac.uin},
        }
        for name, spec in specs.items():
            key = keys.create(s, name=name, **spec)  # type: ignore[arg-type]
            assert key.secret_key is not None
            made[name] = (key.secret_id, key.secret_key)
        ids = (a.id, b.id, dist.id, sub.id, ac.uin, bc.uin)
    return World(*ids, keys=made)


@pytest.fixture
def client(engine: Engine, database_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url), engine)
    with TestClient(app) as test_client:
        yield test_client
