"""TC3-HMAC-SHA256 request signing, verified exactly as Tencent's SDKs sign.

The canonical request is ``METHOD\\n/\\nQUERY\\nHEADERS\\nSIGNED_HEADERS\\nSHA256(payload)``
where QUERY is the query string as received (empty for a JSON POST), HEADERS are the
signed headers ``name:value\\n`` with names lower-cased and values as received, and the
payload is the POST body (empty for GET). The string to sign is
``TC3-HMAC-SHA256\\nTIMESTAMP\\nDATE/SERVICE/tc3_request\\nSHA256(canonical)``, and the key
is derived by HMAC chaining ``"TC3" + secret``, the date, the service and ``tc3_request``.

These are pure functions; :func:`verify` raises :class:`TencentError` with the code the
caller would get from Tencent.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from creditline.tc3.errors import (
    INVALID_AUTHORIZATION,
    INVALID_PARAMETER,
    MISSING_PARAMETER,
    SIGNATURE_EXPIRE,
    SIGNATURE_FAILURE,
    TencentError,
)

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "intlpartnersmgt"
TERMINATOR = "tc3_request"
#: How far ``X-TC-Timestamp`` may be from the server's clock, either way, as Tencent allows.
MAX_SKEW_SECONDS = 300
#: Headers a signature must cover: without them a signed request could be replayed
#: against another host or re-read with another content type.
REQUIRED_SIGNED_HEADERS = ("content-type", "host")
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Authorization:
    """The parts of an ``Authorization: TC3-HMAC-SHA256 ...`` header."""

    secret_id: str
    date: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def credential_scope(self) -> str:
        return f"{self.date}/{self.service}/{self.terminator}"


_SIGNATURE = re.compile(r"[0-9a-f]{64}")


def parse_authorization(value: str | None) -> Authorization:
    """Split the Authorization header; anything malformed is ``InvalidAuthorization``."""
    if not value:
        raise TencentError(INVALID_AUTHORIZATION, "the Authorization header is missing")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise TencentError(INVALID_AUTHORIZATION, f"the signing algorithm must be {ALGORITHM}")
    parts: dict[str, str] = {}
    for piece in rest.split(","):
        name, sep, item = piece.strip().partition("=")
        if not sep or name in parts:
            raise TencentError(INVALID_AUTHORIZATION, "the Authorization header is malformed")
        parts[name] = item.strip()
    if set(parts) != {"Credential", "SignedHeaders", "Signature"}:
        raise TencentError(
            INVALID_AUTHORIZATION,
            "the Authorization header needs Credential, SignedHeaders and Signature",
        )
    credential = parts["Credential"].split("/")
    if len(credential) != 4 or not all(credential):
        raise TencentError(
            INVALID_AUTHORIZATION,
            "Credential must be SecretId/YYYY-MM-DD/intlpartnersmgt/tc3_request",
        )
    secret_id, date, service, terminator = credential
    signed = tuple(parts["SignedHeaders"].split(";"))
    if any(not name or name != name.lower() for name in signed) or len(set(signed)) != len(signed):
        raise TencentError(INVALID_AUTHORIZATION, "SignedHeaders is malformed")
    missing = [name for name in REQUIRED_SIGNED_HEADERS if name not in signed]
    if missing:
        raise TencentError(
            INVALID_AUTHORIZATION, f"SignedHeaders must include {', '.join(missing)}"
        )
    signature = parts["Signature"]
    if not _SIGNATURE.fullmatch(signature):
        raise TencentError(INVALID_AUTHORIZATION, "Signature must be 64 lower-case hex digits")
    return Authorization(secret_id, date, service, terminator, signed, signature)


def canonical_request(
    *,
    method: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload_hash: str,
) -> str:
    """The canonical request the SDK builds. ``headers`` are keyed by lower-case name."""
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    return "\n".join(
        [method, "/", query, canonical_headers, ";".join(signed_headers), payload_hash]
    )


def string_to_sign(*, timestamp: str, credential_scope: str, canonical: str) -> str:
    """What the derived key signs."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{credential_scope}\n{digest}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.digest(key, text.encode("utf-8"), "sha256")


@functools.lru_cache(maxsize=1024)
def _derived_key(secret_key: str, date: str, service: str) -> bytes:
    """The signing key of a secret for one day and service: the same for every request of
    that key on that day, so derived once (three HMACs of the four per request). A key
    kept here checks nothing by itself: a request is verified only with the secret the
    key store hands out for a live key (a revoked key's never is)."""
    return _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), service), TERMINATOR)


def sign(secret_key: str, *, date: str, service: str, message: str) -> str:
    """The hex HMAC-SHA256 signature of ``message`` with the key derived for date/service."""
    return _hmac(_derived_key(secret_key, date, service), message).hex()


def payload_hash(method: str, body: bytes, headers: Mapping[str, str]) -> str:
    """SHA-256 of what the signature covers: the body of a POST, nothing for a GET."""
    if headers.get("x-tc-content-sha256") == UNSIGNED_PAYLOAD:
        # Tencent lets a client leave the body unsigned; for money that would let anyone
        # on the path change an amount under a valid signature, so creditline refuses it.
        raise TencentError(
            INVALID_AUTHORIZATION, "unsigned payloads are not accepted; sign the request body"
        )
    return hashlib.sha256(b"" if method == "GET" else body).hexdigest()


def request_time(headers: Mapping[str, str], *, now: float) -> int:
    """``X-TC-Timestamp`` as an integer, refused if more than 300 s from ``now``."""
    raw = headers.get("x-tc-timestamp")
    if raw is None or raw == "":
        raise TencentError(MISSING_PARAMETER, "the X-TC-Timestamp header is missing")
    # ASCII and short: int() of "²" raises, and a 5,000-digit number cannot be compared
    # with the clock; neither is anyone's time.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise TencentError(INVALID_PARAMETER, "X-TC-Timestamp must be unix seconds")
    timestamp = int(raw)
    if abs(now - timestamp) > MAX_SKEW_SECONDS:
        raise TencentError(
            SIGNATURE_EXPIRE,
            f"the signature has expired: X-TC-Timestamp is more than {MAX_SKEW_SECONDS} "
            "seconds from the server's time",
        )
    return timestamp


@functools.lru_cache(maxsize=8)
def _utc_date(day: int) -> str:
    """The UTC date (``YYYY-MM-DD``) of a day counted from 1970-01-01."""
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")


def check_scope(authorization: Authorization, timestamp: int) -> None:
    """The credential scope must be today's (by the request's timestamp) for this service."""
    if authorization.service != SERVICE or authorization.terminator != TERMINATOR:
        raise TencentError(
            INVALID_AUTHORIZATION,
            f"the credential scope must be <date>/{SERVICE}/{TERMINATOR}",
        )
    expected = _utc_date(timestamp // 86_400)
    if authorization.date != expected:
        raise TencentError(
            SIGNATURE_FAILURE,
            f"the credential date does not match X-TC-Timestamp (expected the UTC date {expected})",
        )


def verify(
    authorization: Authorization,
    *,
    secret_key: str,
    method: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """Check the signature; ``SignatureFailure`` unless it is exactly the SDK's.

    ``headers`` are keyed by lower-case name, values as received.
    """
    missing = [name for name in authorization.signed_headers if name not in headers]
    if missing:
        raise TencentError(
            INVALID_AUTHORIZATION, f"signed headers are missing: {', '.join(missing)}"
        )
    canonical = canonical_request(
        method=method,
        query=query,
        headers=headers,
        signed_headers=authorization.signed_headers,
        payload_hash=payload_hash(method, body, headers),
    )
    expected = sign(
        secret_key,
        date=authorization.date,
        service=authorization.service,
        message=string_to_sign(
            timestamp=headers.get("x-tc-timestamp", ""),
            credential_scope=authorization.credential_scope,
            canonical=canonical,
        ),
    )
    if not hmac.compare_digest(expected, authorization.signature):
        raise TencentError(
            SIGNATURE_FAILURE,
            "the request signature does not match; check the SecretKey and sign the request "
            "exactly as sent",
        )
