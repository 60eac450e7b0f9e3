"""A signed write is applied once: every signature of a writing action is remembered for
as long as its ``X-TC-Timestamp`` is accepted, and a repeat is refused.

The memory is the ``tc3_signatures`` table, so it holds across server processes and
machines. The rule is "the first verified use claims the signature", whatever that use
ends in: a write that succeeds claims it in its own transaction (the claim commits exactly
when the write does); a write refused after its signature was verified (a limit, a bad
parameter, the rate limit) claims it in a short transaction of its own after the rollback,
so a captured request that was refused cannot be replayed later, once it would pass. To
repeat an operation, a client signs it again (the SDK signs every call afresh).

Reads are not remembered: repeating one changes nothing, and the SDK may send the same
read twice within a second, when its signature is the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from creditline.auth import signatures
from creditline.db import transaction
from creditline.tc3.errors import REPLAY_ATTACK, TencentError
from creditline.tc3.signature import MAX_SKEW_SECONDS

log = logging.getLogger(__name__)


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class Signed:
    """What identifies one signed request: its key, its signature and its timestamp."""

    secret_id: str
    signature: str
    timestamp: int


def claim(session: Session, signed: Signed, *, now: float) -> bool:
    """Claim the signature in the caller's transaction; False when it was used before."""
    return signatures.claim(
        session,
        secret_id=signed.secret_id,
        signature=signed.signature,
        # After this moment the timestamp check refuses the request by itself.
        expires_at=_moment(signed.timestamp + MAX_SKEW_SECONDS),
        now=_moment(now),
    )


def refuse_repeat(session: Session, signed: Signed, *, now: float) -> None:
    """Claim the signature, or refuse the request as a replay."""
    if not claim(session, signed, now=now):
        raise TencentError(
            REPLAY_ATTACK,
            "this signed request was already received; a write is applied once per "
            "signature. Sign the request again (a new X-TC-Timestamp) to repeat it",
        )


def claim_after_refusal(engine: Engine, signed: Signed, *, now: float) -> None:
    """Claim the signature of a refused write in a short transaction of its own (the
    write's was rolled back). If that fails (the database gone), the refusal stands and a
    warning is logged."""
    try:
        with transaction(engine) as session:
            claim(session, signed, now=now)
    except Exception as error:  # the refusal stands; remembering it is what failed
        log.warning(
            "tc3: the signature of a refused write by %s was not remembered (%s)",
            signed.secret_id,
            type(getattr(error, "orig", None) or error).__name__,
        )
