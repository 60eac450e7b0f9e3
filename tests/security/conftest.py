"""Security fixtures: the whole application (REST, Tencent-compatible, console) on each
engine, and a world with every principal of issue 8: platform admin; partner A (a
distributor) admin, operator and viewer; partner B admin; A's sub-reseller; a customer of
A and of B; a revoked key — each as an API key and, where it has one, a console user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from creditline.app import create_app
from creditline.auth import keys, users
from creditline.config import Settings, get_settings
from creditline.db import transaction
from creditline.ledger import accounts, credit, pools
from creditline.ledger.records import Origin
from creditline.notify import endpoints

PASSWORD = "correct horse battery staple"
SERVER_KEY = "security-test-server-key-" + "s" * 32


@dataclass
class World:
    a: int
    b: int
    sub: int
    a_customer: int
    b_customer: int
    #: principal name -> (secret_id, secret_key)
    keys: dict[str, tuple[str, str]]
    #: principal name -> console login email
    users: dict[str, str]
    ids: dict[str, int | str] = field(default_factory=dict)

    def h(self, name: str) -> dict[str, str]:
        """The Authorization header of principal ``name`` (none for ``anonymous``)."""
        if name == "anonymous":
            return {}
        secret_id, secret_key = self.keys[name]
        return {"Authorization": f"Bearer {secret_id}:{secret_key}"}


@pytest.fixture(autouse=True)
def server_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CREDITLINE_SECRET_KEY", SERVER_KEY)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at production cost is most of a console test's time; behaviour is the same."""
    from argon2 import PasswordHasher

    from creditline.auth import passwords

    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def client(engine: Engine, database_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url), engine, worker=False)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def world(engine: Engine, client: TestClient) -> World:
    origin = Origin(operator="setup", source="cli")
    made: dict[str, tuple[str, str]] = {}
    with transaction(engine) as s:
        a = accounts.create_partner(s, name="Alpha Cloud", kind="distributor")
        b = accounts.create_partner(s, name="Beta Cloud", kind="reseller")
        sub = accounts.create_partner(s, name="Alpha Sub", kind="sub-reseller", parent_id=a.id)
        ac = accounts.create_customer(s, partner_id=a.id, name="Ann Ltd", remark="alpha-only")
        bc = accounts.create_customer(s, partner_id=b.id, name="Bob Inc")
        for partner in (a, b):
            pools.grant(s, partner_id=partner.id, amount=1_000_000, origin=origin)
        credit.allocate_credit(
            s, partner_id=a.id, customer_uin=ac.uin, amount=10_000, origin=origin
        )
        credit.allocate_credit(s, partner_id=b.id, customer_uin=bc.uin, amount=5_000, origin=origin)
        specs: dict[str, dict[str, object]] = {
            "platform": {"principal": "platform"},
            "a_admin": {"principal": "partner", "partner_id": a.id, "role": "admin"},
            "a_operator": {"principal": "partner", "partner_id": a.id, "role": "operator"},
            "a_viewer": {"principal": "partner", "partner_id": a.id, "role": "viewer"},
            "b_admin": {"principal": "partner", "partner_id": b.id, "role": "admin"},
            "sub_admin": {"principal": "partner", "partner_id": sub.id, "role": "admin"},
            "a_customer": {"principal": "customer", "customer_uin": ac.uin},
            "b_customer": {"principal": "customer", "customer_uin": bc.uin},
            "revoked": {"principal": "partner", "partner_id": a.id, "role": "admin"},
            "a_spare": {"principal": "partner", "partner_id": a.id, "role": "viewer"},
        }
        for name, spec in specs.items():
            key = keys.create(s, name=name, **spec)  # type: ignore[arg-type]
            assert key.secret_key is not None
            made[name] = (key.secret_id, key.secret_key)
        keys.revoke(s, made["revoked"][0])
        logins = {
            "platform": (None, "platform"),
            "a_admin": (a.id, "admin"),
            "a_operator": (a.id, "operator"),
            "a_viewer": (a.id, "viewer"),
            "b_admin": (b.id, "admin"),
            "sub_admin": (sub.id, "admin"),
        }
        emails = {}
        user_ids = {}
        for name, (partner_id, role) in logins.items():
            email = f"{name.replace('_', '.')}@example.com"
            user = users.create_user(
                s, partner_id=partner_id, email=email, password=PASSWORD, role=role
            )
            emails[name] = email
            user_ids[name] = user.id
        # A's customer's own login: it sees that customer's account and nothing else.
        customer_user = users.create_user(
            s,
            partner_id=a.id,
            email="ann.user@example.com",
            password=PASSWORD,
            role=users.CUSTOMER_ROLE,
            customer_uin=ac.uin,
        )
        emails["a_cust_user"] = customer_user.email
        endpoint = endpoints.add_endpoint(s, partner_id=a.id, url="https://hooks.example/a")
        delivery = endpoints.send_test(s, partner_id=a.id, endpoint_id=endpoint.id)
        ids = (a.id, b.id, sub.id, ac.uin, bc.uin)
        extra: dict[str, int | str] = {
            "endpoint": endpoint.id,
            "delivery": delivery.id,
            "viewer_user": user_ids["a_viewer"],
        }
    world = World(*ids, keys=made, users=emails, ids=extra)
    # An alarm and a credit application of A, made through the API as a partner would.
    usage = {
        "records": [
            {
                "event_id": "alpha-1",
                "customer_uin": world.a_customer,
                "product": "cvm",
                "list_amount": "90.00",
                "occurred_at": "2026-01-01T00:00:00Z",
            }
        ]
    }
    assert (
        client.post("/v1/usage-batches", json=usage, headers=world.h("platform")).status_code == 200
    )
    world.ids["alarm"] = client.get("/v1/alarms", headers=world.h("a_admin")).json()["data"][0][
        "id"
    ]
    answer = client.post(
        "/v1/credit-applications", json={"amount": "1.00"}, headers=world.h("a_admin")
    )
    assert answer.status_code == 201, answer.text
    world.ids["application"] = answer.json()["id"]
    sub_asks = client.post(
        "/v1/credit-applications", json={"amount": "1.00"}, headers=world.h("sub_admin")
    )
    assert sub_asks.status_code == 201, sub_asks.text
    world.ids["sub_application"] = sub_asks.json()["id"]
    return world
