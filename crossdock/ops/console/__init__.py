"""The web console: Routes, Dead letters and Lineage pages, server-rendered, on the daemon's admin port.

`console_app(ConsoleContext.of(engine, credentials))` is a Starlette app; the admin port
(:mod:`crossdock.ops.admin`) mounts it at `/` with its :class:`~crossdock.ops.admin.AdminCredentials`.
Pages are Jinja2 templates with autoescape on (payloads are untrusted); write actions are POST forms
that need the admin credentials and a CSRF token (:mod:`crossdock.ops.console.security`).
"""

from crossdock.ops.console.app import console_app
from crossdock.ops.console.context import ConsoleContext, LineageSearch
from crossdock.ops.console.rates import RateSampler
from crossdock.ops.console.security import AdminAuth

__all__ = ["AdminAuth", "ConsoleContext", "LineageSearch", "RateSampler", "console_app"]
