"""Schemathesis over the whole OpenAPI document: generated requests, with a key suited to
each area, never produce a 5xx, and every answer matches its documented schema.

``CREDITLINE_FUZZ_EXAMPLES`` sets the examples per operation (default 5)."""

from __future__ import annotations

import os

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.api.conftest import World

EXAMPLES = int(os.environ.get("CREDITLINE_FUZZ_EXAMPLES", "5"))


@pytest.fixture
def api_schema(client: TestClient, world: World) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", client.app)


schema = schemathesis.pytest.from_fixture("api_schema")


def _key_for(path: str) -> str:
    if path.startswith(("/v1/partners", "/v1/usage-batches")):
        return "platform"
    if path.startswith("/v1/me/"):
        return "a_customer"
    if path.startswith("/v1/sub-resellers"):
        return "dist_admin"
    return "a_admin"


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_errors_and_answers_match_schema(case: schemathesis.Case, world: World) -> None:
    case.call_and_validate(
        headers=world.h(_key_for(case.path)),
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
