"""Hostile input through every door: hypothesis-generated Tencent-style requests (wrong
types, huge numbers, unicode, missing fields, duplicate parameters), fuzzed CSV and JSON
Lines usage files, and console forms carrying HTML/JS. No 5xx, no partial write, every
refusal explains itself, and what is shown is escaped.

Example counts are modest in every run; ``CREDITLINE_LONG_TESTS=1`` multiplies them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from tests.security.conftest import World
from tests.security.test_authorization_matrix import _console_login, signed_headers

from creditline.db import transaction
from creditline.db.tables import AllocationRecord, AuditEvent, UsageEvent
from creditline.errors import CreditlineError
from creditline.ledger.verify import verify
from creditline.tc3.actions import ACTIONS
from creditline.usage_file import import_file

SCALE = 10 if os.environ.get("CREDITLINE_LONG_TESTS") == "1" else 1
FUZZ = settings(
    max_examples=40 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=False,
)

PARAM_NAMES = [
    "ClientUin",
    "AddedCredit",
    "Remark",
    "SubAgentUin",
    "Credit",
    "Page",
    "PageSize",
    "UinList",
    "CustomerUin",
    "FilterType",
    "Filter",
    "Order",
    "EventId",
]
hostile_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        ["<script>alert(1)</script>", "1e400", "NaN", "-0", "١٢٣", "\u202e", "' OR 1=1"]
    ),
)
hostile_value = st.one_of(hostile_scalar, st.lists(hostile_scalar, max_size=4))


def _counts(engine: Engine) -> tuple[int, int, int]:
    with transaction(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(AllocationRecord)) or 0,
            s.scalar(select(func.count()).select_from(UsageEvent)) or 0,
            s.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        )


def test_hostile_tencent_requests(client: TestClient, world: World, engine: Engine) -> None:
    @FUZZ
    @given(
        action=st.sampled_from(sorted(ACTIONS)),
        params=st.dictionaries(st.sampled_from(PARAM_NAMES), hostile_value, max_size=5),
        duplicate=st.booleans(),
    )
    def run(action: str, params: dict[str, Any], duplicate: bool) -> None:
        body = json.dumps(params)
        if duplicate and params:
            # A parameter given twice: the JSON parser keeps the last; the signature covers
            # the bytes as sent, so nothing can be slipped past it.
            name = next(iter(params))
            body = body[:-1] + f', "{name}": {json.dumps(params[name])}}}'
        raw = body.encode()
        before = _counts(engine)
        answer = client.post(
            "/", content=raw, headers=signed_headers(action, raw, *world.keys["a_operator"])
        )
        assert answer.status_code == 200
        response = answer.json()["Response"]
        if "Error" in response:
            assert response["Error"]["Code"] != "InternalError", response
            assert response["Error"]["Message"]
            changed = _counts(engine)
            assert changed[:2] == before[:2], "a refused request left a trace"

    run()
    with transaction(engine) as s:
        assert verify(s) == []


def test_fuzzed_usage_files(world: World, engine: Engine) -> None:
    line = st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda e, u, a, v, k: f"{e},{u},cvm,{a},{v},2026-01-01T00:00:00Z,{k}",
            st.text(alphabet="abc-1", min_size=1, max_size=8),
            st.sampled_from([str(world.a_customer), str(world.b_customer), "0", "x", "9" * 30]),
            st.sampled_from(["1.00", "-1", "1.001", "1e9", "NaN", "", "99999999999.99"]),
            st.sampled_from(["0", "0.50", "5.00", "-0.01", ""]),
            st.sampled_from(["charge", "refund", "gift", ""]),
        ),
    )
    json_line = st.one_of(
        st.text(max_size=60),
        st.dictionaries(
            st.sampled_from(
                ["event_id", "customer_uin", "product", "list_amount", "voucher_amount", "kind"]
            ),
            hostile_scalar,
            max_size=6,
        ).map(json.dumps),
    )

    @FUZZ
    @given(fmt=st.sampled_from(["csv", "jsonl"]), data=st.data())
    def run(fmt: str, data: st.DataObject) -> None:
        if fmt == "csv":
            lines = ["event_id,customer_uin,product,list_amount,voucher_amount,occurred_at,kind"]
            lines += data.draw(st.lists(line, max_size=6))
        else:
            lines = data.draw(st.lists(json_line, max_size=6))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"usage.{fmt}"
            path.write_text("\n".join(lines), encoding="utf-8")
            before = _counts(engine)
            try:
                with transaction(engine) as s:
                    import_file(s, path)
            except CreditlineError as refusal:
                assert refusal.message  # every refusal explains itself
                assert _counts(engine)[1] == before[1], "a refused file counted usage"

    run()
    with transaction(engine) as s:
        assert verify(s) == []


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_console_shows_hostile_names_escaped(client: TestClient, world: World) -> None:
    made = client.post(
        "/v1/customers",
        json={"name": HOSTILE, "remark": HOSTILE},
        headers=world.h("a_operator"),
    )
    assert made.status_code == 201
    uin = made.json()["uin"]
    allocated = client.post(
        f"/v1/customers/{uin}/allocate",
        json={"amount": "1.00", "remark": HOSTILE},
        headers=world.h("a_operator"),
    )
    assert allocated.status_code == 200
    _console_login(client, world.users["a_admin"])
    for page in ("/customers", f"/customers/{uin}", "/records", "/"):
        answer = client.get(page)
        assert answer.status_code == 200, page
        assert "<script>alert" not in answer.text and "<img src=x" not in answer.text, page
    assert "&lt;script&gt;" in client.get("/customers").text
