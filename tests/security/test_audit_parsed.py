"""The audit row of a request whose body is parsed JSON (``after_parsed``) is redacted by
its JSON text when nothing in it can be a secret: the row must be exactly what full
redaction keeps — the same value, the same summary of a large body — and anything that
might be a secret must still be redacted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from creditline import audit, json_text
from creditline.audit import MAX_CHANGE_CHARS, REDACTED
from creditline.auth import idempotency


def _usage_body(records: int, **extra: Any) -> Any:
    return {
        "records": [
            {
                "event_id": f"evt-{n}",
                "customer_uin": 100000000000 + n,
                "product": "cvm",
                "list_amount": "0.35",
                "voucher_amount": "0.05",
                "occurred_at": "2026-01-03T10:00:00+00:00",
                **extra,
            }
            for n in range(records)
        ]
    }


def _after(body: Any) -> Any:
    # What an adapter hands the audit log: the request and the answer, both from JSON text.
    return json.loads(json.dumps({"request": body, "answer": {"accepted": 1, "alarm_ids": []}}))


VALUES = [
    _after(_usage_body(1)),
    _after(_usage_body(1000)),  # summed up: longer than MAX_CHANGE_CHARS
    _after(_usage_body(3, note="whsec_abc")),  # a webhook secret as a value
    _after(_usage_body(900, Password="pw")),  # a secret's field, large
    _after({"secret_id": "AKID1", "secret_key": "s3cret", "name": "x"}),
    _after({"items": [{"Authorization": "Bearer x"}], "csrf_TOKEN": None}),
    _after({"n\u00e4me": "Gr\u00fc\u00dfe", "to\u212aen": "kelvin k"}),  # escapes in the text
    _after({"text": 'line\nbreak \\u0041 "quoted"', "nums": [1, 2.5, True, None]}),
    _after([]),
    _after("plain text"),
    _after(None),
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_parsed_after_is_kept_exactly_as_full_redaction_keeps_it(value: Any) -> None:
    quick = audit.row(audit.Actor("api", "p", None), action="a", after=value, after_parsed=True)
    full = audit.row(audit.Actor("api", "p", None), action="a", after=value)
    assert quick["audit_after"] == full["audit_after"]
    assert json.dumps(quick["audit_after"]) == json.dumps(full["audit_after"])


def test_a_large_parsed_body_is_summed_up_with_its_secrets_redacted() -> None:
    value = _after(_usage_body(900, Password="pw", hook="whsec_live"))
    kept = audit.row(audit.Actor("api", "p", None), action="a", after=value, after_parsed=True)
    summary = kept["audit_after"]
    assert summary["truncated"] is True and summary["chars"] > MAX_CHANGE_CHARS
    assert '"Password": "pw"' not in summary["start"] and "whsec_live" not in summary["start"]
    assert f'"Password": "{REDACTED}"' in summary["start"]


def test_objects_the_write_changed_are_not_taken_for_parsed_json() -> None:
    # States of changed objects hold times and the like: redacted the full way.
    value = _after(_usage_body(1))
    changed: tuple[dict[str, Any], dict[str, Any]] = (
        {},
        {"customer 1": {"name": "x", "token": "t", "at": object()}},
    )
    kept = audit.row(
        audit.Actor("api", "p", None), action="a", after=value, changed=changed, after_parsed=True
    )
    assert kept["audit_after"]["customer 1"]["token"] == REDACTED
    assert isinstance(kept["audit_after"]["customer 1"]["at"], str)


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_a_body_read_by_json_text_keeps_the_same_row_and_fingerprint(value: Any) -> None:
    # What api.context.Call does with a body creditline.json_text reads: the row's text
    # and the request's fingerprint written by msgspec, the same as json writes them.
    request_value = value["request"]
    for body in (
        json.dumps(request_value).encode(),
        json.dumps(request_value, ensure_ascii=False, separators=(",", ":")).encode(),
    ):
        parsed = json_text.read(body)
        if parsed is json_text.NOT_PLAIN:
            continue
        answer = value["answer"]
        request = json_text.spaced(parsed)
        text = (
            None if request is None else f'{{"request": {request}, "answer": {json.dumps(answer)}}}'
        )
        after = {"request": parsed, "answer": answer}
        quick = audit.row(
            audit.Actor("api", "p", None),
            action="a",
            after=after,
            after_parsed=True,
            after_text=text,
        )
        full = audit.row(audit.Actor("api", "p", None), action="a", after=value)
        assert json.dumps(quick["audit_after"]) == json.dumps(full["audit_after"])
        fingerprint = idempotency.request_hash(
            "POST", "/v1/x", "", body, canonical=json_text.sorted_compact(parsed)
        )
        assert fingerprint == idempotency.request_hash("POST", "/v1/x", "", body)
