"""A live creditline server for the Tencent SDK to call, and a world of partners,
customers and keys of every kind (on each engine)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.intlpartnersmgt.v20220928 import intlpartnersmgt_client

from creditline.app import create_app
from creditline.auth import keys
from creditline.config import get_settings
from creditline.db import make_engine, transaction
from creditline.ledger import accounts, credit, pools
from creditline.ledger.records import Origin

Client = intlpartnersmgt_client.IntlpartnersmgtClient


@dataclass(frozen=True)
class Key:
    secret_id: str
    secret_key: str
    name: str


@dataclass(frozen=True)
class World:
    """Who exists: a reseller with two customers (one with credit), another reseller with
    one, a distributor with a second-level reseller, and keys for each kind of caller."""

    reseller: int
    customer: int
    second_customer: int
    other_customer: int
    distributor: int
    sub_reseller: int
    other_sub_reseller: int
    admin: Key
    operator: Key
    viewer: Key
    customer_key: Key
    platform: Key
    other_admin: Key
    distributor_admin: Key


@pytest.fixture
def engine_with_server_key(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Engine]:
    """An engine, with the server key the API keys need (env on PostgreSQL, a generated
    file beside the database on SQLite)."""
    if database_url.startswith("postgresql"):
        monkeypatch.setenv("CREDITLINE_SECRET_KEY", "test-server-key-" + "x" * 32)
    else:
        monkeypatch.delenv("CREDITLINE_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
    get_settings.cache_clear()


def _key(session: object, **kwargs: object) -> Key:
    made = keys.create(session, **kwargs)  # type: ignore[arg-type]
    assert made.secret_key is not None
    return Key(made.secret_id, made.secret_key, made.name)


@pytest.fixture
def world(engine_with_server_key: Engine) -> World:
    setup = Origin(operator="setup@example.com", source="cli")
    with transaction(engine_with_server_key) as s:
        reseller = accounts.create_partner(s, name="Reseller", kind="reseller")
        other = accounts.create_partner(s, name="Other reseller", kind="reseller")
        distributor = accounts.create_partner(s, name="Distributor", kind="distributor")
        other_distributor = accounts.create_partner(s, name="Other dist", kind="distributor")
        sub = accounts.create_partner(
            s, name="Second-level", kind="sub-reseller", parent_id=distributor.id
        )
        other_sub = accounts.create_partner(
            s, name="Not mine", kind="sub-reseller", parent_id=other_distributor.id
        )
        customer = accounts.create_customer(
            s,
            partner_id=reseller.id,
            name="Alpha Ltd",
            email="ops@alpha.example",
            mobile="+1 555 0100",
            remark="gold",
            type="company",
            identity_status=2,
        )
        second = accounts.create_customer(s, partner_id=reseller.id, name="Beta")
        other_customer = accounts.create_customer(s, partner_id=other.id, name="Gamma")
        pools.grant(s, partner_id=reseller.id, amount=100_000, origin=setup)
        pools.grant(s, partner_id=other.id, amount=100_000, origin=setup)
        pools.grant(s, partner_id=distributor.id, amount=50_000, origin=setup)
        credit.allocate_credit(
            s, partner_id=reseller.id, customer_uin=customer.uin, amount=20_000, origin=setup
        )
        return World(
            reseller=reseller.id,
            customer=customer.uin,
            second_customer=second.uin,
            other_customer=other_customer.uin,
            distributor=distributor.id,
            sub_reseller=sub.id,
            other_sub_reseller=other_sub.id,
            admin=_key(
                s, principal="partner", partner_id=reseller.id, role="admin", name="ci-admin"
            ),
            operator=_key(
                s, principal="partner", partner_id=reseller.id, role="operator", name="ci-op"
            ),
            viewer=_key(
                s, principal="partner", partner_id=reseller.id, role="viewer", name="ci-viewer"
            ),
            customer_key=_key(s, principal="customer", customer_uin=customer.uin, name="alpha"),
            platform=_key(s, principal="platform", name="billing-feed"),
            other_admin=_key(s, principal="partner", partner_id=other.id, role="admin"),
            distributor_admin=_key(
                s, principal="partner", partner_id=distributor.id, role="admin", name="dist"
            ),
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def build_app(engine: Engine) -> FastAPI:
    """The application ``creditline serve`` runs, on this test's database."""
    return create_app(engine=engine, worker=False)


@pytest.fixture
def rate_limits() -> str:
    """``CREDITLINE_TC3_RATE_LIMITS`` for the server: generous, so that no test depends on
    how fast the machine is; the rate-limit tests override it."""
    return "AllocateCustomerCredit=10000/1,*=10000/1"


@pytest.fixture
def served_app(
    engine_with_server_key: Engine, world: World, rate_limits: str, monkeypatch: pytest.MonkeyPatch
) -> FastAPI:
    """The application the live server (:func:`endpoint`) runs."""
    monkeypatch.setenv("CREDITLINE_TC3_RATE_LIMITS", rate_limits)
    return build_app(engine_with_server_key)


@pytest.fixture
def endpoint(served_app: FastAPI) -> Iterator[str]:
    """``host:port`` of a live server on this test's database."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(served_app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


@pytest.fixture
def sdk(endpoint: str) -> Callable[..., Client]:
    """An official SDK client for a key, pointed at the live server (only the endpoint
    and the keys differ from a script written for Tencent)."""

    def make(key: Key, *, method: str = "POST") -> Client:
        profile = ClientProfile(
            httpProfile=HttpProfile(protocol="http", endpoint=endpoint, reqMethod=method)
        )
        return Client(credential.Credential(key.secret_id, key.secret_key), "", profile)

    return make
