"""Token buckets per client, in memory: `rate` requests per `per` seconds, bursts up to `rate`.

A bucket starts full and refills continuously, so a client that stays under the rate is never
refused, and one that bursts is refused only until enough time has passed for one more request
(what `Retry-After` says). Buckets are per process: with several crossdock instances behind a
balancer, each enforces the limit on the requests it sees.
"""

from __future__ import annotations

from dataclasses import dataclass

# Past this many clients, buckets that have refilled completely are dropped: a full bucket is the same
# as no bucket, so forgetting it changes nothing and keeps memory bounded under many distinct callers.
PRUNE_ABOVE = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """Allows `rate` requests per `per` seconds per client."""

    def __init__(self, rate: int, per: float) -> None:
        self.rate = rate
        self.per = per
        self._refill = rate / per  # tokens per second
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str, now: float) -> float | None:
        """Spend one token of `client`'s bucket: None when allowed, else the seconds until one is back."""
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= PRUNE_ABOVE:
                self._prune(now)
            bucket = self._buckets[client] = _Bucket(float(self.rate), now)
        else:
            bucket.tokens = min(float(self.rate), bucket.tokens + (now - bucket.updated) * self._refill)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self._refill

    def _prune(self, now: float) -> None:
        full = [client for client, bucket in self._buckets.items()
                if bucket.tokens + (now - bucket.updated) * self._refill >= self.rate]
        for client in full:
            del self._buckets[client]
