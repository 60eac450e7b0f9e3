"""No client input gives a 500: every path and query parameter of every route (REST and
console), walked from the application itself, with hostile values; and the cases found by
review, each named. A time without a UTC offset is refused with a message saying so."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from tests.security.conftest import World
from tests.security.test_authorization_matrix import _console_login

#: Values no parameter takes: beyond BIGINT, negative, zero, text, unicode digits, times
#: without an offset or beyond year 9999 in UTC, and a long string.
HOSTILE = [
    "9" * 20,
    "1" * 22,
    "-" + "9" * 20,
    "-1",
    "0",
    "abc",
    "١٢٣",
    "1e400",
    "2024-01-01T00:00:00",
    "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31",
    "x" * 5000,
]


def _api_routes(client: TestClient) -> list[tuple[str, APIRoute]]:
    """(full path, route) of every route, as tests/security/routes.py walks them."""
    app: Any = client.app
    found: list[tuple[str, APIRoute]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            context = getattr(route, "include_context", None)
            if context is not None:
                walk(route.original_router.routes, prefix + context.prefix)
            elif isinstance(route, APIRoute):
                found.append((prefix + route.path, route))

    walk(list(app.routes), "")
    return found


def _parameters(route: APIRoute) -> tuple[list[str], list[str]]:
    """The route's path and query parameters, its dependencies' included."""
    path: list[str] = []
    query: list[str] = []
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        path += [p.alias for p in dependant.path_params if p.alias not in path]
        query += [p.alias for p in dependant.query_params if p.alias not in query]
        pending += dependant.dependencies
    return path, query


def _fill(path: str, world: World) -> str:
    """A real object for each path parameter, so the hostile value is the only fault."""
    real = {
        "uin": world.a_customer,
        "partner_id": world.a,
        "sub_id": world.sub,
        "alarm_id": world.ids["alarm"],
        "application_id": world.ids["application"],
        "endpoint_id": world.ids["endpoint"],
        "user_id": world.ids["viewer_user"],
        "secret_id": world.keys["a_spare"][0],
        "decision": "reject",
    }
    for name, value in real.items():
        path = path.replace("{" + name + "}", str(value))
    return path


def _cases(client: TestClient, *, rest: bool) -> list[tuple[str, str, str, str]]:
    """(method, path template, parameter, where) for every parameter of every route."""
    cases = []
    for full, route in _api_routes(client):
        if full.startswith("/v1") != rest or full in ("/login", "/logout"):
            continue
        path_params, query_params = _parameters(route)
        for method in sorted(route.methods - {"HEAD"}):
            cases += [(method, full, name, "path") for name in path_params]
            cases += [(method, full, name, "query") for name in query_params]
    return cases


def _walk(
    client: TestClient, world: World, cases: list[tuple[str, str, str, str]], **kw: Any
) -> list[str]:
    wrong = []
    for method, template, name, where in cases:
        for value in HOSTILE:
            if where == "path":
                path = _fill(template.replace("{" + name + "}", value), world)
                params: dict[str, str] = {}
            else:
                path, params = _fill(template, world), {name: value}
            sent = kw if method != "GET" or "data" not in kw else {}
            answer = client.request(method, path, params=params, follow_redirects=False, **sent)
            if answer.status_code >= 500:
                wrong.append(f"{method} {template} {name}={value[:30]}: {answer.status_code}")
    return wrong


def test_walk_finds_the_parameters_named_by_review(client: TestClient) -> None:
    rest = {(t, n) for _, t, n, _ in _cases(client, rest=True)}
    console = {(t, n) for _, t, n, _ in _cases(client, rest=False)}
    assert ("/v1/allocation-records", "since") in rest
    assert ("/v1/allocation-records.csv", "since") in rest
    assert {("/customers", "page"), ("/customers/{uin}", "uin"), ("/records", "before")} <= console


@pytest.mark.parametrize("principal", ["a_admin", "platform"])
def test_every_rest_parameter_refuses_hostile_values(
    client: TestClient, world: World, principal: str
) -> None:
    wrong = _walk(client, world, _cases(client, rest=True), headers=world.h(principal))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("user", ["a_admin", "platform"])
def test_every_console_parameter_refuses_hostile_values(
    client: TestClient, world: World, user: str
) -> None:
    csrf = _console_login(client, world.users[user])
    wrong = _walk(client, world, _cases(client, rest=False), data={"csrf_token": csrf})
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", ["/v1/allocation-records", "/v1/allocation-records.csv"])
def test_a_time_without_offset_is_refused_by_name(
    client: TestClient, world: World, path: str
) -> None:
    answer = client.get(path, params={"since": "2024-01-01T00:00:00"}, headers=world.h("a_admin"))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["param"] == "since"
    assert "UTC offset" in error["message"]
    with_offset = client.get(
        path, params={"since": "2024-01-01T00:00:00+08:00"}, headers=world.h("a_admin")
    )
    assert with_offset.status_code == 200


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/customers?page=" + "1" * 22, "page"),
        ("/customers/" + "9" * 20, "uin"),
        ("/records?before=" + "9" * 20, "before"),
    ],
)
def test_console_names_the_bad_parameter(
    client: TestClient, world: World, path: str, param: str
) -> None:
    _console_login(client, world.users["a_admin"])
    answer = client.get(path)
    assert answer.status_code == 422
    assert "text/html" in answer.headers["content-type"]
    assert f"{param}: Input should be" in answer.text


def test_console_filters_beyond_their_range_are_refused_on_a_page(
    client: TestClient, world: World
) -> None:
    _console_login(client, world.users["a_admin"])
    for query, says in (
        ("customer=" + "9" * 20, "Customer UIN takes digits only"),
        ("customer=\u0661\u0662", "Customer UIN takes digits only"),
        ("until=9999-12-31", "To takes a day before 9999-12-31"),
    ):
        answer = client.get("/records?" + query)
        assert answer.status_code == 400, query
        assert says in answer.text, query
    for query in ("customer=" + "9" * 20, "level=99999999999", "until=9999-12-31"):
        answer = client.get("/messages?" + query)
        assert answer.status_code < 500, query
        assert "Refused" in answer.text or "is not" in answer.text or "past the last" in answer.text
