"""JSON read and written exactly as the standard library's ``json`` does, faster, where
msgspec is known to agree with it.

A request's body is read for its fingerprint (``auth.idempotency.request_hash``: its
keys sorted, compact) and for its audit row (``audit``: ``json.dumps``' own spacing); a
usage batch's body is 1,000 records, and ``json.loads`` then two ``json.dumps`` cost more
than the ledger's checks of them. msgspec reads and writes the same values, with three
differences, each detected here and answered by ``None`` / :data:`NOT_PLAIN` so that the
caller uses ``json`` instead:

- a number with a fraction or an exponent (a float) is written by its own rules: a body
  holding one is not read here (the callers' values then hold none);
- it writes characters beyond ASCII as they are, and DEL (0x7F) bare, where ``json``
  escapes them (``ensure_ascii``): such a text is not used;
- it refuses some texts ``json`` reads (a lone surrogate ``\\udc00``, ``NaN``, a byte order
  mark, other encodings than UTF-8): those are not read here.

Everything else — strings with their escapes, integers of any size, nesting, a repeated
key (the last value, at the first key's place) — comes out the same;
tests/test_json_text.py holds the two equal on generated values."""

from __future__ import annotations

from typing import Any

import msgspec

#: :func:`read`'s answer for a text it leaves to ``json``.
NOT_PLAIN: Any = object()


def _float(_text: str) -> Any:
    raise ValueError("a number with a fraction or an exponent")


_DECODER = msgspec.json.Decoder(float_hook=_float)


def read(body: bytes) -> Any:
    """``body`` as ``json.loads`` reads it, or :data:`NOT_PLAIN` (not JSON, holds a float,
    or anything msgspec reads otherwise or not at all: ask ``json``)."""
    try:
        return _DECODER.decode(body)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return NOT_PLAIN


def _same(text: bytes) -> bool:
    # What json (ensure_ascii) escapes and msgspec does not: beyond ASCII, and DEL.
    return text.isascii() and b"\x7f" not in text


def sorted_compact(value: Any) -> bytes | None:
    """``json.dumps(value, sort_keys=True, separators=(",", ":")).encode()`` for a value
    :func:`read` returned; None when msgspec's text would differ."""
    try:
        text = msgspec.json.encode(value, order="sorted")
    except (msgspec.MsgspecError, TypeError, ValueError, RecursionError):
        return None
    return text if _same(text) else None


def spaced(value: Any) -> str | None:
    """``json.dumps(value)`` (its default spacing, keys in their order) for a value
    :func:`read` returned; None when msgspec's text would differ."""
    try:
        text = msgspec.json.format(msgspec.json.encode(value), indent=0)
    except (msgspec.MsgspecError, TypeError, ValueError, RecursionError):
        return None
    return text.decode() if _same(text) else None
