"""The authorization matrix: every route and action — REST, Tencent-compatible, console — for
every principal of issue 8, against the expected answer. Partner B (and A's own
sub-reseller) never sees or changes anything of A: A's objects answer exactly as missing
ones, and B's lists never carry A's data.

The tables are keyed by route: a route added to the application without a row here fails
``test_every_route_has_a_row``; a Tencent action without a row fails likewise.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.security.conftest import PASSWORD, World
from tests.security.routes import every_route

from creditline.clock import utcnow
from creditline.tc3 import signature
from creditline.tc3.actions import ACTIONS

PRINCIPALS = [
    "anonymous",
    "platform",
    "a_admin",
    "a_operator",
    "a_viewer",
    "b_admin",
    "sub_admin",
    "a_customer",
    "b_customer",
    "revoked",
]
RANK = {"a_viewer": 0, "a_operator": 1, "a_admin": 2, "b_admin": 2, "sub_admin": 2}
NOT_A = {"b_admin", "sub_admin"}
DISTRIBUTORS = {"a_admin", "a_operator", "a_viewer"}
OK = {200, 201}


@dataclass(frozen=True)
class Row:
    """One REST route: who may call it (``rule``), whether its path names one of A's
    objects, the body to send, and any further answer an allowed caller may get."""

    method: str
    template: str
    rule: str  # public, platform, customer, viewer, operator, admin, dist_*, decide
    a_object: bool = False
    body: Any = None
    also: frozenset[int] = frozenset()
    #: What another partner gets for A's object (a batch names it as a missing customer).
    not_a: int = 404


def _rows() -> list[Row]:
    return [
        Row("GET", "/openapi.json", "public"),
        Row("GET", "/docs", "public"),
        Row("GET", "/docs/oauth2-redirect", "public"),
        Row("GET", "/redoc", "public"),
        Row("GET", "/v1/pool", "viewer"),
        Row("GET", "/v1/customers", "viewer"),
        Row("POST", "/v1/customers", "operator", body={"name": "New <b>one</b>"}),
        Row("GET", "/v1/customers/{uin}", "viewer", a_object=True),
        Row("PATCH", "/v1/customers/{uin}", "operator", a_object=True, body={"remark": "x"}),
        Row("POST", "/v1/customers/{uin}/allocate", "operator", True, {"amount": "1.00"}),
        Row("POST", "/v1/customers/{uin}/withdraw", "operator", True, {"amount": "1.00"}),
        Row("GET", "/v1/customers/{uin}/thresholds", "viewer", a_object=True),
        # The vendor's order pipeline (platform key) checks any customer; a partner's
        # operator its own.
        Row(
            "POST",
            "/v1/customers/{uin}/purchase-checks",
            "operator+platform",
            True,
            {"amount": "1.00", "product": "cvm"},
        ),
        Row("GET", "/v1/purchase-checks", "viewer+platform"),
        Row("GET", "/v1/customers/{uin}/purchase-policy", "viewer", a_object=True),
        Row("PUT", "/v1/customers/{uin}/purchase-policy", "operator", True, {"policy": None}),
        Row("GET", "/v1/purchase-policy", "viewer"),
        Row("PUT", "/v1/purchase-policy", "admin", body={"policy": "block_at_limit"}),
        Row("GET", "/v1/customers/{uin}/top-up-rule", "viewer", a_object=True),
        Row("PUT", "/v1/customers/{uin}/top-up-rule", "operator", True, {"mode": "off"}),
        Row("GET", "/v1/top-up-rule", "viewer"),
        Row(
            "PUT",
            "/v1/top-up-rule",
            "admin",
            body={"available_below": "1.00", "amount": "1.00", "monthly_cap": "1.00"},
        ),
        Row("DELETE", "/v1/top-up-rule", "admin"),
        Row("PUT", "/v1/customers/{uin}/thresholds", "admin", True, {"thresholds": [80]}),
        Row("GET", "/v1/customers/{uin}/forecast-alarm", "viewer", a_object=True),
        Row("PUT", "/v1/customers/{uin}/forecast-alarm", "admin", True, {"days": 3}),
        Row(
            "POST",
            "/v1/allocation-batches",
            "operator",
            a_object=True,
            body={"items": [{"customer_uin": "{uin}", "amount": "1.00"}]},
            not_a=400,
        ),
        Row("GET", "/v1/allocation-records", "viewer"),
        Row("GET", "/v1/allocation-records.csv", "viewer"),
        Row("GET", "/v1/alarms", "viewer"),
        Row("GET", "/v1/alarms/unread-count", "viewer"),
        Row("POST", "/v1/alarms/{alarm_id}/read", "operator", a_object=True),
        Row("POST", "/v1/alarms/{alarm_id}/acknowledge", "operator", a_object=True),
        Row("GET", "/v1/thresholds", "viewer"),
        Row("PUT", "/v1/thresholds", "admin", body={"thresholds": [80]}),
        Row("GET", "/v1/forecast-alarm", "viewer"),
        Row("PUT", "/v1/forecast-alarm", "admin", body={"days": 3}),
        Row("GET", "/v1/api-keys", "admin"),
        Row("POST", "/v1/api-keys", "admin", body={"role": "viewer"}),
        Row("DELETE", "/v1/api-keys/{secret_id}", "admin", a_object=True),
        Row("GET", "/v1/webhook-endpoints", "viewer"),
        Row("POST", "/v1/webhook-endpoints", "admin", body={"url": "https://hooks.example.com/m"}),
        Row("GET", "/v1/webhook-endpoints/{endpoint_id}", "viewer", a_object=True),
        Row("PATCH", "/v1/webhook-endpoints/{endpoint_id}", "admin", True, {"enabled": True}),
        Row("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", "admin", True),
        Row("POST", "/v1/webhook-endpoints/{endpoint_id}/test", "admin", a_object=True),
        Row("GET", "/v1/deliveries", "viewer"),
        Row("GET", "/v1/deliveries/{delivery_id}", "viewer", a_object=True),
        Row("GET", "/v1/deliveries/{delivery_id}/attempts", "viewer", a_object=True),
        Row("POST", "/v1/deliveries/{delivery_id}/redeliver", "admin", a_object=True),
        # After the rest: the endpoint is gone after it.
        Row("DELETE", "/v1/webhook-endpoints/{endpoint_id}", "admin", a_object=True),
        Row("GET", "/v1/notification-settings", "viewer"),
        Row(
            "PATCH",
            "/v1/notification-settings",
            "admin",
            body={"add": ["finance@example.com"], "email_customer": True},
        ),
        Row("GET", "/v1/sub-resellers", "dist_viewer"),
        Row("POST", "/v1/sub-resellers", "dist_admin", body={"name": "S2"}),
        Row("GET", "/v1/sub-resellers/{sub_id}", "dist_viewer", a_object=True),
        Row(
            "POST",
            "/v1/sub-resellers/{sub_id}/pool-allocations",
            "dist_operator",
            True,
            {"amount": "1.00"},
        ),
        Row("GET", "/v1/credit-applications", "viewer+platform"),
        Row("POST", "/v1/credit-applications", "admin", body={"amount": "1.00"}),
        Row("GET", "/v1/credit-applications/{application_id}", "viewer+platform", True),
        Row("POST", "/v1/credit-applications/{application_id}/approve", "decide", True, {}),
        # Run after approve: the application is decided by then.
        Row(
            "POST",
            "/v1/credit-applications/{application_id}/reject",
            "decide",
            True,
            {},
            frozenset({409}),
        ),
        Row("GET", "/v1/partners", "platform"),
        Row("POST", "/v1/partners", "platform", body={"name": "P"}),
        Row("GET", "/v1/partners/{partner_id}", "platform"),
        Row("POST", "/v1/partners/{partner_id}/grants", "platform", body={"amount": "1.00"}),
        Row(
            "POST",
            "/v1/usage-batches",
            "platform",
            body={
                "records": [
                    {
                        "event_id": "matrix-1",
                        "customer_uin": "{uin}",
                        "product": "cvm",
                        "list_amount": "1.00",
                        "occurred_at": "2026-01-01T00:00:00Z",
                    }
                ]
            },
        ),
        Row("GET", "/v1/platform/audit", "platform"),
        Row("GET", "/v1/me/credit", "customer"),
        Row("GET", "/v1/customers/{uin}/statements/{month}", "viewer", a_object=True),
        Row("GET", "/v1/customer-settings", "viewer"),
        Row("PATCH", "/v1/customer-settings", "admin", body={"show_remarks": True}),
        Row("GET", "/v1/customers/{uin}/customer-alarms", "viewer", a_object=True),
        Row("PUT", "/v1/customers/{uin}/customer-alarms", "admin", True, {"enabled": True}),
    ]


def expected(principal: str, row: Row) -> set[int]:
    """The answers ``principal`` may get from ``row`` — the matrix itself."""
    allowed = OK | set(row.also)
    if row.rule == "public":
        return {200}
    if principal in ("anonymous", "revoked"):
        return {401}
    if row.rule == "platform":
        return allowed if principal == "platform" else {403}
    if row.rule == "customer":
        return allowed if principal in ("a_customer", "b_customer") else {403}
    if row.rule == "decide":
        # The platform decides a top-level partner's application; a partner never decides
        # its own, and to anyone else it is missing.
        if principal == "platform":
            return allowed
        # A's admin may decide only its sub-resellers' applications: its own is missing to
        # it; every other partner key is refused for not being a distributor's admin.
        return {404} if principal == "a_admin" else {403}
    if row.rule.endswith("+platform") and principal == "platform":
        return allowed  # the platform reads every application: it decides them
    if principal not in RANK:
        return {403}  # the platform and customers hold no partner's data
    role = row.rule.removeprefix("dist_").removesuffix("+platform")
    if RANK[principal] < {"viewer": 0, "operator": 1, "admin": 2}[role]:
        return {403}
    if row.rule.startswith("dist_") and principal not in DISTRIBUTORS:
        return {403}  # only a distributor has sub-resellers
    if row.a_object and principal in NOT_A:
        return {row.not_a}
    return allowed


def _fill(text: str, world: World) -> str:
    return (
        text.replace("{uin}", str(world.a_customer))
        .replace("{alarm_id}", str(world.ids["alarm"]))
        .replace("{application_id}", str(world.ids["application"]))
        .replace("{sub_id}", str(world.sub))
        .replace("{partner_id}", str(world.a))
        .replace("{secret_id}", world.keys["a_spare"][0])
        .replace("{endpoint_id}", str(world.ids["endpoint"]))
        .replace("{delivery_id}", str(world.ids["delivery"]))
        .replace("{month}", utcnow().strftime("%Y-%m"))
    )


def _body(body: Any, world: World) -> Any:
    if body is None:
        return None
    filled = json.loads(
        _fill(json.dumps(body), world).replace(f'"{world.a_customer}"', str(world.a_customer))
    )
    return filled


# --- Console: who may open each page or send each form ---------------------------------

#: Console routes: rule and whether the path names one of A's objects. ``partner`` pages
#: need a partner user; ``platform`` pages a platform admin; ``write``/``manage`` forms an
#: operator/admin; ``dist`` a distributor's user.
CONSOLE: dict[tuple[str, str], tuple[str, bool]] = {
    ("GET", "/login"): ("public", False),
    # Browsers ask for it before reading the page: a redirect to the static icon, for anyone.
    ("GET", "/favicon.ico"): ("icon", False),
    ("POST", "/login"): ("login", False),
    ("POST", "/logout"): ("session", False),
    # A partner's dashboard; a customer's user sees its own account here instead.
    ("GET", "/"): ("home", False),
    ("GET", "/account/usage-by-day.svg"): ("customer", False),
    ("POST", "/account/alarms/read"): ("customer", False),
    ("GET", "/customers/{uin}/statements"): ("partner", True),
    ("GET", "/customers/{uin}/statement.csv"): ("partner", True),
    ("GET", "/customers/{uin}/statement.pdf"): ("partner", True),
    ("POST", "/customers/{uin}/users"): ("manage", True),
    ("POST", "/customers/{uin}/customer-alarms"): ("manage", True),
    ("POST", "/settings/customers"): ("manage", False),
    ("GET", "/usage-by-day.svg"): ("partner", False),
    ("GET", "/pool-by-day.svg"): ("partner", False),
    ("GET", "/customers"): ("partner", False),
    ("GET", "/customers/{uin}"): ("partner", True),
    ("GET", "/customers/{uin}/credit"): ("write", True),
    ("POST", "/customers/{uin}/credit"): ("write", True),
    ("POST", "/customers/{uin}/thresholds"): ("manage", True),
    ("POST", "/customers/{uin}/forecast-alarm"): ("manage", True),
    # A customer's purchase policy is an operator's, the partner's default an admin's.
    ("GET", "/customers/{uin}/purchase-policy"): ("partner", True),
    ("POST", "/customers/{uin}/purchase-policy"): ("write", True),
    ("GET", "/settings/purchase-policy"): ("partner", False),
    ("POST", "/settings/purchase-policy"): ("manage", False),
    ("GET", "/customers/{uin}/top-up-rule"): ("partner", True),
    ("POST", "/customers/{uin}/top-up-rule"): ("write", True),
    ("GET", "/settings/top-up-rule"): ("partner", False),
    ("POST", "/settings/top-up-rule"): ("manage", False),
    ("GET", "/purchase-checks"): ("partner", False),
    ("GET", "/customers/{uin}/usage-by-day.svg"): ("partner", True),
    ("GET", "/customers/{uin}/usage-by-product.svg"): ("partner", True),
    ("GET", "/records"): ("partner", False),
    ("GET", "/records.csv"): ("partner", False),
    ("GET", "/messages"): ("partner", False),
    # Marking messages read is a write: an operator's, as in REST; viewers only look.
    ("POST", "/messages/read"): ("write", False),
    ("POST", "/messages/{alarm_id}/read"): ("write", True),
    ("GET", "/settings"): ("partner", False),
    ("POST", "/settings/thresholds"): ("manage", False),
    ("POST", "/settings/forecast-alarm"): ("manage", False),
    ("POST", "/settings/keys"): ("manage", False),
    ("POST", "/settings/keys/{secret_id}/revoke"): ("manage", True),
    ("POST", "/settings/users"): ("manage", False),
    ("POST", "/settings/users/{viewer_user_id}/remove"): ("manage", True),
    ("GET", "/settings/notifications"): ("partner", False),
    ("POST", "/settings/notifications/email"): ("manage", False),
    ("POST", "/settings/webhooks"): ("manage", False),
    ("GET", "/settings/webhooks/{endpoint_id}"): ("partner", True),
    ("POST", "/settings/webhooks/{endpoint_id}/enabled"): ("manage", True),
    ("POST", "/settings/webhooks/{endpoint_id}/rotate"): ("manage", True),
    ("POST", "/settings/webhooks/{endpoint_id}/test"): ("manage", True),
    ("POST", "/settings/webhooks/{endpoint_id}/remove"): ("manage", True),  # after the rest
    ("GET", "/bulk"): ("write", False),
    ("POST", "/bulk/preview"): ("write", False),
    ("POST", "/bulk/apply"): ("write", False),
    ("GET", "/distributors"): ("dist", False),
    ("POST", "/distributors/sub-resellers"): ("dist_manage", False),
    ("POST", "/distributors/{sub_id}/pool"): ("dist_write", True),
    ("GET", "/applications"): ("partner", False),
    ("POST", "/applications"): ("manage", False),
    ("POST", "/applications/{sub_application_id}/{decision}"): ("dist_manage", True),
    ("GET", "/platform/partners"): ("platform", False),
    ("POST", "/platform/partners"): ("platform", False),
    ("GET", "/platform/partners/{partner_id}"): ("platform", False),
    ("POST", "/platform/partners/{partner_id}/grants"): ("platform", False),
    ("POST", "/platform/partners/{partner_id}/users"): ("platform", False),
    ("GET", "/platform/applications"): ("platform", False),
    ("POST", "/platform/applications/{application_id}/{decision}"): ("platform", False),
    ("GET", "/platform/audit"): ("platform", False),
}


def test_every_route_has_a_row(client: TestClient) -> None:
    """A route without a row in the matrix fails here."""
    covered = {(r.method, r.template) for r in _rows()} | set(CONSOLE)
    placeholders = {
        "{viewer_user_id}": "{user_id}",
        "{sub_application_id}": "{application_id}",
    }
    named = set()
    for method, template in covered:
        for ours, theirs in placeholders.items():
            template = template.replace(ours, theirs)
        named.add((method, template))
    missing = every_route(client.app) - named  # type: ignore[arg-type]
    assert not missing, f"routes without a row in the authorization matrix: {sorted(missing)}"
    assert set(TC3) == set(ACTIONS), "Tencent actions without a row in the matrix"


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_rest_matrix(client: TestClient, world: World, principal: str) -> None:
    """Every REST route for one principal; then B's view never carries A's data."""
    wrong = []
    for row in _rows():
        path = _fill(row.template, world)
        answer = client.request(
            row.method, path, json=_body(row.body, world), headers=world.h(principal)
        )
        if answer.status_code not in expected(principal, row):
            wrong.append(f"{row.method} {row.template}: {answer.status_code} {answer.text[:200]}")
        if answer.status_code >= 400 and row.rule != "public":
            assert answer.json()["error"]["message"], "every refusal explains itself"
        if principal in NOT_A | {"b_customer"} and answer.status_code < 300:
            text = answer.text
            assert "Ann Ltd" not in text and "alpha-only" not in text, (row.template, text[:300])
            assert str(world.a_customer) not in text or row.template == "/openapi.json"
    assert not wrong, "\n".join(wrong)


# --- Tencent-compatible actions ---------------------------------------------------------

#: action -> (params aimed at A's objects, who may call it, whether it names A's objects)
TC3: dict[str, tuple[dict[str, Any], str, bool]] = {
    "AllocateCustomerCredit": ({"ClientUin": "{uin}", "AddedCredit": 1.5}, "operator", True),
    "AllocateCreditPool": ({"SubAgentUin": "{sub_id}", "Credit": 1.0}, "dist_operator", True),
    "QueryPartnerCredit": ({}, "viewer", False),
    "QueryCustomersCredit": ({"Page": 1, "PageSize": 10}, "viewer", False),
    "QueryCreditAllocationHistory": (
        {"ClientUin": "{uin}", "Page": 1, "PageSize": 10},
        "viewer",
        True,
    ),
    "QueryCreditByUinList": ({"UinList": ["{uin}"]}, "viewer", True),
    "QueryDirectCustomersCredit": ({}, "viewer", False),
    "QueryCustomerBillingQuota": ({}, "customer", False),
    "ModifyClientRemark": ({"ClientUin": "{uin}", "Remark": "x"}, "operator", True),
    "DescribeCustomerInfo": ({"CustomerUin": ["{uin}"]}, "viewer", True),
    "DescribeCustomerUin": ({"Page": 1, "PageSize": 10}, "viewer", False),
}


def signed_headers(
    action: str, body: bytes, secret_id: str, secret_key: str, *, now: float | None = None
) -> dict[str, str]:
    """Headers of a TC3-HMAC-SHA256-signed POST, as Tencent's SDK builds them."""
    timestamp = int(now if now is not None else time.time())
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    headers = {
        "content-type": "application/json; charset=utf-8",
        "host": "testserver",
        "x-tc-action": action,
        "x-tc-version": "2022-09-28",
        "x-tc-timestamp": str(timestamp),
    }
    import hashlib

    canonical = signature.canonical_request(
        method="POST",
        query="",
        headers=headers,
        signed_headers=("content-type", "host"),
        payload_hash=hashlib.sha256(body).hexdigest(),
    )
    scope = f"{date}/intlpartnersmgt/tc3_request"
    signed = signature.sign(
        secret_key,
        date=date,
        service="intlpartnersmgt",
        message=signature.string_to_sign(
            timestamp=str(timestamp), credential_scope=scope, canonical=canonical
        ),
    )
    headers["authorization"] = (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders=content-type;host, Signature={signed}"
    )
    return headers


def tc3_call(
    client: TestClient, world: World, principal: str, action: str, params: dict[str, Any]
) -> dict[str, Any]:
    """One Tencent-style call as ``principal`` (unsigned for ``anonymous``)."""
    body = json.dumps(params).encode()
    if principal == "anonymous":
        headers = {"content-type": "application/json", "x-tc-action": action}
    else:
        headers = signed_headers(action, body, *world.keys[principal])
    answer = client.post("/", content=body, headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(
        "application/json"
    )
    response: dict[str, Any] = answer.json()["Response"]
    return response


def tc3_expected(principal: str, rule: str, a_object: bool) -> str:
    """``ok`` or the Error.Code ``principal`` gets: the Tencent half of the matrix."""
    if principal == "anonymous":
        return "AuthFailure.InvalidAuthorization"
    if principal == "revoked":
        return "AuthFailure.SecretIdNotFound"
    if rule == "customer":
        return "ok" if principal in ("a_customer", "b_customer") else "UnauthorizedOperation"
    if principal not in RANK:
        return "UnauthorizedOperation"
    role = rule.removeprefix("dist_")
    if RANK[principal] < {"viewer": 0, "operator": 1}[role]:
        return "UnauthorizedOperation"
    if rule.startswith("dist_") and principal not in DISTRIBUTORS:
        return "FailedOperation.UinNotAgent"
    if a_object and principal in NOT_A:
        return "ResourceNotFound"
    return "ok"


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_tc3_matrix(client: TestClient, world: World, principal: str) -> None:
    wrong = []
    for action, (params, rule, a_object) in TC3.items():
        filled = json.loads(
            _fill(json.dumps(params), world)
            .replace(f'"{world.a_customer}"', str(world.a_customer))
            .replace(f'"{world.sub}"', str(world.sub))
        )
        if action == "ModifyClientRemark":
            # The one UIN Tencent declares as text (str); every other is an int.
            filled["ClientUin"] = str(filled["ClientUin"])
        response = tc3_call(client, world, principal, action, filled)
        got = response["Error"]["Code"] if "Error" in response else "ok"
        want = tc3_expected(principal, rule, a_object)
        if got != want:
            wrong.append(f"{action}: got {got} want {want}: {response}")
        if "Error" in response:
            assert response["Error"]["Message"], "every refusal explains itself"
        elif principal in NOT_A | {"b_customer"}:
            text = json.dumps(response)
            assert "Ann Ltd" not in text and str(world.a_customer) not in text, (action, text)
    assert not wrong, "\n".join(wrong)


# --- Console ----------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CONSOLE_USERS = [
    "anonymous",
    "platform",
    "a_admin",
    "a_operator",
    "a_viewer",
    "b_admin",
    "sub_admin",
    "a_cust_user",
]


def _console_login(client: TestClient, email: str) -> str:
    page = client.get("/login")
    token = _CSRF.search(page.text)
    assert token
    answer = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    home = client.get(answer.headers["location"])
    found = _CSRF.search(home.text)
    assert found, home.text[:500]
    return found.group(1)


def console_expected(user: str, rule: str, a_object: bool, method: str) -> set[int]:
    """What a console user gets: pages 200, forms a redirect (303) or a page; refusals are
    a redirect to the login page, 403 or 404 (another partner's object is a missing one).

    The forms are sent with only their CSRF token, so a refusal may also be 422 (the form
    is incomplete) when FastAPI checks the fields before the handler checks the user:
    either way nothing is shown or changed."""
    refused_form = {422} if method == "POST" else set()
    return _console_expected(user, rule, a_object, method) | (
        refused_form if user != "anonymous" and rule not in ("login", "session") else set()
    )


def _console_expected(user: str, rule: str, a_object: bool, method: str) -> set[int]:
    if rule == "public":
        return {200}
    if rule == "icon":
        return {308}
    if rule == "login":
        return {303}
    if user == "anonymous":
        return {403} if method == "POST" else {303}
    if rule == "session":
        return {303}
    if user == "a_cust_user":
        # A customer's user opens its own account and nothing else: every partner and
        # platform page, and every other customer, is missing to it.
        return {200, 303} if rule in ("home", "customer") else {404}
    if rule == "customer":
        return {404}
    if rule == "platform":
        return {200, 303} if user == "platform" else {404}
    if user == "platform":
        return {404}
    if rule.startswith("dist") and user not in DISTRIBUTORS:
        return {403, 404}
    if rule == "dist_write" and user == "a_viewer":
        return {403}
    if rule == "dist_manage" and user in ("a_viewer", "a_operator"):
        return {403}
    if a_object and user in NOT_A:
        return {404}
    if rule == "write" and user == "a_viewer":
        return {403}
    if rule == "manage" and user in ("a_viewer", "a_operator"):
        return {403}
    return {200, 303, 400, 422}


@pytest.mark.parametrize("user", CONSOLE_USERS)
def test_console_matrix(client: TestClient, world: World, user: str) -> None:
    csrf = "" if user == "anonymous" else _console_login(client, world.users[user])
    wrong = []
    for (method, template), (rule, a_object) in CONSOLE.items():
        if template in ("/login", "/logout"):
            continue  # logging in and out is what the other rows stand on
        path = (
            _fill(template, world)
            .replace("{viewer_user_id}", str(world.ids["viewer_user"]))
            .replace("{sub_application_id}", str(world.ids["sub_application"]))
            .replace("{endpoint_id}", str(world.ids["endpoint"]))
            .replace("{decision}", "approve")
        )
        if method == "GET":
            answer = client.get(path, follow_redirects=False)
        else:
            answer = client.post(path, data={"csrf_token": csrf}, follow_redirects=False)
        want = console_expected(user, rule, a_object, method)
        if answer.status_code not in want:
            wrong.append(f"{method} {template}: {answer.status_code} not in {sorted(want)}")
        if user in NOT_A and answer.status_code == 200:
            assert "Ann Ltd" not in answer.text and "alpha-only" not in answer.text, template
        if user == "a_cust_user" and answer.status_code == 200 and method == "GET":
            # Its own account only: no other customer, no pool, no partner's remark.
            text = answer.text
            assert "Bob Inc" not in text and "Alpha Sub" not in text, template
            assert "Pool" not in text and "alpha-only" not in text, template
    assert not wrong, "\n".join(wrong)
