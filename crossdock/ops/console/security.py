"""Who may change things from the console, and proof that a form came from the console itself.

Reading is open (the admin port is an operator's port); every write (replay, purge) is a POST that
needs both:

- **the admin credentials**, HTTP basic auth checked by an :class:`AdminAuth` (the admin port's
  :class:`~crossdock.ops.admin.AdminCredentials`: user `admin` or `--admin-user`, password from
  `CROSSDOCK_ADMIN_PASSWORD`). Without a password configured, writes are refused outright.
- **a CSRF token**. Basic auth is ambient: a browser that logged in sends the credentials with any
  request to the console, including a form another site makes it submit. So each browser gets a
  random cookie (HttpOnly, SameSite=Strict, so a cross-site POST arrives without it) and every form
  carries HMAC(secret, cookie), the secret being random per process. A POST whose token does not
  match its cookie is refused (403), and so is one whose Origin names another host.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from starlette.requests import Request

CSRF_COOKIE = "crossdock_console_csrf"
CSRF_FIELD = "csrf"


class AdminAuth(Protocol):
    """Checks a request's admin credentials (:class:`crossdock.ops.admin.AdminCredentials` does)."""

    realm: str

    @property
    def configured(self) -> bool:
        """False when no password is set, so nobody can log in."""
        ...

    def user(self, request: Request) -> str | None:
        """The user the request authenticates as, or None without valid credentials."""
        ...


@dataclass
class CsrfGuard:
    """Signed double-submit tokens: the form field is HMAC(secret, the browser's cookie)."""

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @staticmethod
    def new_cookie() -> str:
        """A fresh random cookie value for a browser that has none."""
        return secrets.token_hex(16)

    def token(self, cookie: str) -> str:
        """The form token that goes with `cookie`."""
        return hmac.new(self.secret, cookie.encode(), hashlib.sha256).hexdigest()

    def valid(self, request: Request, submitted: str | None) -> bool:
        """True when `submitted` matches the request's cookie and the request is not cross-origin."""
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie or not submitted:
            return False
        if not same_origin(request):
            return False
        return hmac.compare_digest(self.token(cookie), submitted)


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from a page on another host (Origin header)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # No Origin (older clients, scripts): the token alone decides. "null" comes from sandboxed or
        # privacy-restricted contexts, which cannot hold our cookie's token either.
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host
