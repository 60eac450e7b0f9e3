"""Request rate limits per API key and action, as Tencent applies them.

Tencent documents 5 requests a second per caller for AllocateCustomerCredit and 20 a
second for the other actions of the service. Each key and action has a token bucket in the
database (``rate_buckets``, scope ``tc3:<Action>``; creditline.auth.rate_limit), shared by
every server process: ``requests/seconds`` allows up to ``requests`` calls at once, then
refills ``requests`` tokens every ``seconds``.

Configured by ``CREDITLINE_TC3_RATE_LIMITS``, e.g. ``AllocateCustomerCredit=5/1,*=20/1``
(``requests/seconds``; ``*`` is every action not named).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic_settings import BaseSettings, SettingsConfigDict

from creditline.auth.rate_limit import LeasePending, RateLimited, SharedBuckets


@dataclass(frozen=True)
class Limit:
    """At most ``requests`` calls in any ``seconds``-long span."""

    requests: int
    seconds: float


DEFAULT_LIMITS: Mapping[str, Limit] = {"AllocateCustomerCredit": Limit(5, 1.0), "*": Limit(20, 1.0)}


class Tc3Settings(BaseSettings):
    """Settings of the Tencent-compatible endpoint (``CREDITLINE_TC3_*``)."""

    model_config = SettingsConfigDict(env_prefix="CREDITLINE_TC3_", extra="ignore")

    #: ``Action=requests/seconds`` pairs, comma-separated; empty means Tencent's defaults.
    rate_limits: str = ""
    #: The ``Host`` values a signed request may name, comma-separated (``api.example.com``,
    #: ``127.0.0.1:8000``); empty means any, the signature still covering the one sent.
    hosts: str = ""

    def host_list(self) -> list[str]:
        """The accepted hosts, lower case; empty when any is accepted."""
        return [host.strip().lower() for host in self.hosts.split(",") if host.strip()]


def parse_limits(text: str) -> dict[str, Limit]:
    """``"AllocateCustomerCredit=5/1,*=20/1"`` over the defaults; ValueError if malformed."""
    limits = dict(DEFAULT_LIMITS)
    for item in filter(None, (part.strip() for part in text.split(","))):
        action, sep, rate = item.partition("=")
        requests, slash, seconds = rate.partition("/")
        if not sep or not slash or not action.strip():
            raise ValueError(f"rate limit {item!r} is not Action=requests/seconds")
        limit = Limit(int(requests), float(seconds))
        if limit.requests < 1 or limit.seconds <= 0:
            raise ValueError(f"rate limit {item!r} must allow at least 1 request in > 0 s")
        limits[action.strip()] = limit
    return limits


class RateLimiter:
    """Admits or refuses each call of an action by a key, against the shared buckets."""

    def __init__(self, buckets: SharedBuckets, limits: Mapping[str, Limit] | None = None) -> None:
        self._limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self.buckets = buckets

    def limit_for(self, action: str) -> Limit | None:
        """The limit applied to ``action``; None when neither it nor ``*`` is limited."""
        return self._limits.get(action, self._limits.get("*"))

    def admit(self, key: str, action: str, *, wait: bool | None = None) -> bool:
        """Count one call; False (and not counted) when the key is over its limit. With
        ``wait`` false, raises :class:`LeasePending` when the process must lease first."""
        limit = self.limit_for(action)
        if limit is None:
            return True
        try:
            self.buckets.take(
                key,
                f"tc3:{action}",
                capacity=limit.requests,
                rate=limit.requests / limit.seconds,
                wait=wait,
            )
        except LeasePending:
            raise
        except RateLimited:
            return False
        return True
