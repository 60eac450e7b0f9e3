"""How a database error reaching a door is answered: an unreachable database (or a lock or
pool wait run out) is "unavailable, retry" (REST 503, Tencent ``FailedOperation``); a
transaction the database rolled back over a concurrent one (SQLSTATE class 40: deadlock,
serialization failure) is a conflict (REST 409), not an outage. Either is logged with its
classes and SQLSTATE, never its message, which can quote the statement's parameters."""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import errors as pg
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from tests.api.conftest import World

from creditline.db import is_conflict, is_unavailable
from creditline.ledger import accounts
from creditline.tc3.endpoint import TencentEndpoint, TencentRequest

SECRET = "s3cret-parameter"


def _error(cause: Exception) -> OperationalError:
    """A database error as SQLAlchemy raises it, its statement and message quoting a value."""
    return OperationalError(f"SELECT '{SECRET}'", {"value": SECRET}, cause)


#: (the driver's error, whether it is a conflict, its SQLSTATE)
FAULTS: dict[str, tuple[Exception, bool, str | None]] = {
    "deadlock": (pg.DeadlockDetected(f"deadlock detected: {SECRET}"), True, "40P01"),
    "serialization": (pg.SerializationFailure(f"could not serialize: {SECRET}"), True, "40001"),
    "lock timeout": (pg.LockNotAvailable(f"lock timeout: {SECRET}"), False, "55P03"),
    "lost connection": (psycopg.OperationalError(f"server closed: {SECRET}"), False, None),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_conflict_is_not_an_outage(fault: str) -> None:
    cause, conflict, _ = FAULTS[fault]
    assert is_conflict(_error(cause)) is conflict
    assert is_unavailable(_error(cause)) is not conflict


@pytest.mark.parametrize("fault", FAULTS)
def test_rest_answers_a_conflict_409_and_an_outage_503_logging_the_sqlstate(
    client: TestClient,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    cause, conflict, state = FAULTS[fault]

    def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise _error(cause)

    monkeypatch.setattr(accounts, "get_customer", failing)
    caplog.set_level(logging.WARNING, logger="creditline.access")
    r = client.get(f"/v1/customers/{world.a_customer}", headers=world.h("a_admin"))
    error = r.json()["error"]
    if conflict:
        assert (r.status_code, error["code"]) == (409, "transaction_conflict")
        assert "Retry-After" not in r.headers
    else:
        assert (r.status_code, error["code"]) == (503, "database_unavailable")
        assert r.headers["Retry-After"] == "1"
    logged = [
        json.loads(rec.getMessage()) for rec in caplog.records if "sqlstate" in rec.getMessage()
    ]
    assert logged == [
        {
            "event": "database_conflict" if conflict else "database_unavailable",
            "request_id": r.headers["X-Request-Id"],
            "path": f"/v1/customers/{world.a_customer}",
            "error": "OperationalError",
            "cause": type(cause).__name__,
            "sqlstate": state,
        }
    ]
    assert SECRET not in caplog.text and SECRET not in r.text


@pytest.mark.parametrize("fault", FAULTS)
def test_tencent_answers_failed_operation_saying_which_logging_the_sqlstate(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    cause, conflict, state = FAULTS[fault]
    endpoint = TencentEndpoint(None, engine=engine, keys=None)  # type: ignore[arg-type]

    def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise _error(cause)

    monkeypatch.setattr(endpoint, "_admitted", failing)
    caplog.set_level(logging.WARNING, logger="creditline")
    answer = json.loads(endpoint.answer(TencentRequest("POST", "", {}, b"{}")))
    error = answer["Response"]["Error"]
    assert error["Code"] == "FailedOperation"
    if conflict:
        assert "concurrent" in error["Message"] and "transaction conflict" in caplog.text
    else:
        assert "unavailable" in error["Message"] and "database unavailable" in caplog.text
    assert f"SQLSTATE {state}" in caplog.text
    assert SECRET not in caplog.text
