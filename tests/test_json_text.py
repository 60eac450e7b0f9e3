"""creditline.json_text reads and writes what ``json`` does, or says it cannot: generated
JSON values (floats, every kind of character, repeated keys, deep and wide nesting) are
read and written both ways and compared."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from creditline import json_text

_TEXTS = st.text(
    alphabet=st.one_of(
        st.characters(max_codepoint=0x7F),
        st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF, exclude_categories=["Cs"]),
    ),
    max_size=12,
)
_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False),
        _TEXTS,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(_TEXTS, inner, max_size=5)
    ),
    max_leaves=30,
)


def _both(value: Any) -> None:
    for body in (json.dumps(value).encode(), json.dumps(value, ensure_ascii=False).encode()):
        expected = json.loads(body)
        read = json_text.read(body)
        if read is json_text.NOT_PLAIN:
            continue
        assert read == expected
        assert type(read) is type(expected)
        compact = json_text.sorted_compact(read)
        if compact is not None:
            assert compact == json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()
        spaced = json_text.spaced(read)
        if spaced is not None:
            assert spaced == json.dumps(expected)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_read_and_written_as_json_does(value: Any) -> None:
    _both(value)


def test_the_cases_it_leaves_to_json() -> None:
    for body in (b"[1.5]", b"[1e2]", b'"\\udc00"', b"NaN", b"\xef\xbb\xbf{}", b"[1,]", b"\x01"):
        assert json_text.read(body) is json_text.NOT_PLAIN, body
    assert json_text.read(b"[" * 5000 + b"]" * 5000) is json_text.NOT_PLAIN
    for value in ("\x7f", "é", {"é": 1}):
        assert json_text.sorted_compact(value) is None
        assert json_text.spaced(value) is None


def test_a_repeated_key_and_escapes_read_as_json_reads_them() -> None:
    body = (
        b'{"b": 1, "a": "x\\u0001\\"\\\\/\\n", '
        b'"b": [true, null, -0, 123456789012345678901234567890]}'
    )
    _both(json.loads(body))
    read = json_text.read(body)
    assert read == json.loads(body) and list(read) == list(json.loads(body))
    assert json_text.spaced(read) == json.dumps(json.loads(body))
