"""The envelope's JSON: written as ``json.dumps`` writes it (compact, characters beyond
ASCII in values as they are), whatever the values; amounts as two-decimal numbers."""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from creditline.tc3.envelope import Cents, render

_KEYS = st.text(alphabet=string.ascii_letters + string.digits + '_"\\', max_size=12)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_render_writes_what_json_dumps_writes(value: dict[str, Any]) -> None:
    text = render(value).decode("utf-8")
    assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert render(value) == render(value)  # a key written once is written alike after


def test_cents_are_two_decimal_numbers() -> None:
    assert render({"Amount": Cents(1250), "Count": 3, "Id": "é"}) == (
        '{"Amount":12.50,"Count":3,"Id":"é"}'.encode()
    )
