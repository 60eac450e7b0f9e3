"""Schemathesis stateful runs over the REST API: sequences of calls that follow the OpenAPI
links (create a customer, then read, change, allocate to, withdraw from and set thresholds
of that very customer), as partner A's admin. No answer is a 5xx, every answer matches its
documented schema, and the ledger verifies clean at the end.

Modest by default; ``CREDITLINE_LONG_TESTS=1`` runs many more scenarios."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine
from tests.security.conftest import World

from creditline.db import transaction
from creditline.ledger.verify import verify

LONG = os.environ.get("CREDITLINE_LONG_TESTS") == "1"
SCENARIOS = 60 if LONG else 8
STEPS = 20 if LONG else 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_linked_customer_calls_keep_the_ledger_sound(
    client: TestClient, world: World, engine: Engine
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app).include(
        path_regex="^/v1/customers"
    )
    machine = schema.as_state_machine()
    headers = world.h("a_admin")
    calls: list[int] = []
    created: set[str] = set()
    followed: list[str] = []

    class CustomerScenarios(machine):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": headers}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            calls.append(response.status_code)
            if (
                case.method == "POST"
                and case.path == "/v1/customers"
                and response.status_code == 201
            ):
                created.add(str(response.json()["uin"]))
            elif str((case.path_parameters or {}).get("uin")) in created:
                followed.append(f"{case.method} {case.path} {response.status_code}")

        def validate_response(
            self,
            response: Any,
            case: schemathesis.Case,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(response, checks=CHECKS, headers=headers)

    CustomerScenarios.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert calls, "the state machine made no call"
    assert all(status < 500 for status in calls)
    # The links were followed: calls on customers made earlier in the same scenario.
    assert created and followed, (created, followed)
    with transaction(engine) as s:
        assert verify(s) == []
