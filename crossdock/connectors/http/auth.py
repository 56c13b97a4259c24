"""Who may call an endpoint: API keys in a header, and HMAC-SHA256 body signatures with a time window.

The signature scheme (documented for senders in the connector's docstring and docs/language.md):
`signature header: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` with the Unix time in
seconds in `timestamp header`; the timestamp must be within `window` seconds of crossdock's clock.
Comparisons are constant-time (:func:`hmac.compare_digest`) so response timing tells nothing about
how much of a key or signature was right.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from crossdock.connectors.http.problems import HttpProblem

SIGNATURE_PREFIX = "sha256="
_TIMESTAMP = re.compile(r"\d{1,12}")


def parse_keys(text: str | None) -> tuple[bytes, ...]:
    """API keys from a setting: separated by commas or new lines, blanks ignored."""
    if not text:
        return ()
    return tuple(key.strip().encode() for key in re.split(r"[,\n]", text) if key.strip())


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The signature header value a sender computes: `sha256=` + hex HMAC of `timestamp.body`."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


@dataclass(frozen=True, slots=True)
class Authenticator:
    """The authentication settings of one endpoint."""

    key_header: str = "X-Api-Key"
    keys: tuple[bytes, ...] = ()
    hmac_secret: bytes | None = None
    signature_header: str = "X-Signature"
    timestamp_header: str = "X-Timestamp"
    window: float = 300.0

    @property
    def open(self) -> bool:
        """True when the endpoint checks neither keys nor signatures."""
        return not self.keys and self.hmac_secret is None

    def client(self, headers: Mapping[str, str]) -> str | None:
        """The caller's identity (a digest of its key) for rate limits and idempotency scopes;
        None when the endpoint has no API keys. Raises 401 for a missing or unknown key."""
        if not self.keys:
            return None
        given = headers.get(self.key_header.lower())
        if not given:
            raise HttpProblem(401, "HTP010", f"this endpoint needs an API key in the {self.key_header} header",
                              headers={"WWW-Authenticate": f'ApiKey header="{self.key_header}"'})
        candidate = given.encode("latin-1", "replace")
        # Every key is compared, so the time taken does not tell which one nearly matched.
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise HttpProblem(401, "HTP011", "the API key is not valid",
                              headers={"WWW-Authenticate": f'ApiKey header="{self.key_header}"'})
        return "key:" + hashlib.sha256(candidate).hexdigest()[:16]

    def verify_signature(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        """Check the HMAC signature of `body` when the endpoint has a secret; raises 401 otherwise."""
        if self.hmac_secret is None:
            return
        timestamp = headers.get(self.timestamp_header.lower())
        signature = headers.get(self.signature_header.lower())
        if not timestamp or not signature:
            raise HttpProblem(401, "HTP012", f"this endpoint needs a signed request: the {self.timestamp_header} "
                                             f"and {self.signature_header} headers")
        if not _TIMESTAMP.fullmatch(timestamp) or not signature.startswith(SIGNATURE_PREFIX):
            raise HttpProblem(401, "HTP012", f"{self.timestamp_header} must be Unix seconds and "
                                             f"{self.signature_header} 'sha256=<hex>'")
        if abs(now - int(timestamp)) > self.window:
            raise HttpProblem(401, "HTP014", f"the request's timestamp is more than {self.window:g}s from the "
                                             f"server's clock; sign it again with the current time")
        expected = sign(self.hmac_secret, timestamp, body)
        if not hmac.compare_digest(signature.strip().lower().encode("latin-1", "replace"), expected.encode()):
            raise HttpProblem(401, "HTP013", "the signature does not match the body")
