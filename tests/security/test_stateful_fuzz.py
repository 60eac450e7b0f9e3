"""Schemathesis stateful runs over the REST API: sequences of calls that follow the OpenAPI
links (create a customer, then read, change, allocate to, withdraw from and set thresholds
of that very customer), as partner A's admin. No answer is a 5xx, every answer matches its
documented schema, and the ledger verifies clean at the end.

The random runs assert only those properties, never which calls the generator happened to
make; that every link is followed is driven deliberately by ``test_every_link_from_a_new_
customer_is_followed``, with explicit bodies. The random runs are derandomized (the same
examples on every run). Modest by default; ``CREDITLINE_LONG_TESTS=1`` runs many more."""

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

    class CustomerScenarios(machine):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": headers}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            calls.append(response.status_code)

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
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert all(status < 500 for status in calls)
    with transaction(engine) as s:
        assert verify(s) == []


#: An explicit, valid body for each operation a new customer links to (none: no body).
LINK_BODIES: dict[str, dict[str, Any] | None] = {
    "get_customer_v1_customers__uin__get": None,
    "change_remark_v1_customers__uin__patch": {"remark": "followed a link"},
    "allocate_v1_customers__uin__allocate_post": {"amount": "25.00"},
    "withdraw_v1_customers__uin__withdraw_post": {"amount": "5.00"},
    "set_customer_thresholds_v1_customers__uin__thresholds_put": {"thresholds": [50, 100]},
}


def test_every_link_from_a_new_customer_is_followed(
    client: TestClient, world: World, engine: Engine
) -> None:
    """Create a customer, then call every operation its 201 answer links to, on that
    customer, each answer checked against the documented schema."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    headers = world.h("a_admin")
    created = client.post("/v1/customers", json={"name": "Linked Ltd"}, headers=headers)
    assert created.status_code == 201, created.text
    links = client.app.openapi()["paths"]["/v1/customers"]["post"]["responses"]["201"]["links"]
    # Every link has an explicit body here: a new link fails until it is covered.
    assert {link["operationId"] for link in links.values()} == set(LINK_BODIES)
    for link in links.values():
        assert link["parameters"] == {"uin": "$response.body#/uin"}
        operation = schema.find_operation_by_id(link["operationId"])
        body = LINK_BODIES[link["operationId"]]
        case = operation.Case(
            path_parameters={"uin": created.json()["uin"]},
            **({} if body is None else {"body": body}),
        )
        response = case.call(headers=headers)
        assert response.status_code == 200, (link["operationId"], response.text)
        case.validate_response(response, checks=CHECKS, headers=headers)
    after = client.get(f"/v1/customers/{created.json()['uin']}", headers=headers).json()
    assert (after["total_credit"], after["remark"]) == ("20.00", "followed a link")
    with transaction(engine) as s:
        assert verify(s) == []
