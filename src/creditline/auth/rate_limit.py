"""Per-key rate limit: a token bucket per API key, in the serving process's memory."""

from __future__ import annotations

import math
import threading
import time

from creditline.errors import CreditlineError


class RateLimited(CreditlineError):
    code = "rate_limited"
    kind = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests for this API key; retry after {retry_after} s")
        self.retry_after = retry_after


class RateLimiter:
    """Allows ``per_minute`` requests a minute per key, in bursts of up to ``per_minute``."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one token of ``key``'s bucket, or raise :class:`RateLimited`."""
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited(max(1, math.ceil((1.0 - tokens) / rate)))
            self._buckets[key] = (tokens - 1.0, now)
