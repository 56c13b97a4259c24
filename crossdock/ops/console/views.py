"""The console's pages: Routes, Dead letters (list, one entry, replay, purge), Lineage, and log in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from crossdock.engine.stores.base import DeadLetter
from crossdock.ops.console import actions, params
from crossdock.ops.console.context import ConsoleContext
from crossdock.ops.console.params import ConsoleError, bad_request
from crossdock.ops.console.rates import Chart
from crossdock.ops.console.security import CSRF_COOKIE, CSRF_FIELD
from crossdock.ops.reload import ReloadStatus

PAGE_SIZE = 50
PAYLOAD_CAP = 64 * 1024  # bytes of a payload shown; the rest is counted, not rendered
MAX_SELECTED = 1000
SECURITY_HEADERS = {
    # Payloads are untrusted: even if escaping were missed somewhere, no script but ours could run.
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def environment() -> Environment:
    """The console's Jinja2 environment: autoescape on for every template, undefined names are errors."""
    env = Environment(loader=PackageLoader("crossdock.ops.console", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = when
    return env


def when(epoch: float | None) -> str:
    """An epoch time as UTC, to the second (`2026-01-31 08:00:05Z`)."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@dataclass
class Payload:
    """A payload as shown: text (or a hex dump when binary) cut at :data:`PAYLOAD_CAP` bytes."""

    text: str
    size: int
    shown: int
    binary: bool

    @classmethod
    def of(cls, data: bytes) -> Payload:
        """`data` for the page: a NUL byte makes it binary, other bytes that are not UTF-8 show as �."""
        head = data[:PAYLOAD_CAP]
        binary = b"\x00" in head
        if binary:
            head = head[:PAYLOAD_CAP // 4]  # a hex dump line takes about four times the bytes it shows
            lines = [f"{offset:08x}  {head[offset:offset + 16].hex(' ')}" for offset in range(0, len(head), 16)]
            return cls("\n".join(lines), len(data), len(head), True)
        return cls(head.decode("utf-8", errors="replace"), len(data), len(head), False)

    @property
    def truncated(self) -> bool:
        """True when only the first bytes are shown."""
        return self.shown < self.size


@dataclass
class RouteView:
    """One route's section of the Routes page."""

    name: str
    source: str
    state: str
    failure: str | None
    counters: dict[str, int]
    deliveries: list[tuple[str, int]]
    rates: dict[str, float] | None
    chart: Chart
    stored_dead_letters: int
    last_dead_letter: DeadLetter | None
    reload: str | None = None


def _reloaded(route: str, status: ReloadStatus | None) -> str | None:
    """What the last reload did to `route`, if anything."""
    if status is None or not status.ok:
        return None
    if route in status.changes.added:
        return f"added by the reload at {when(status.at)}"
    if route in status.changes.changed:
        return f"restarted in its new version by the reload at {when(status.at)}"
    return None


class Console:
    """The handlers, sharing the context, the template environment and a lock for write actions."""

    def __init__(self, context: ConsoleContext) -> None:
        self.context = context
        self.env = environment()
        # One write action at a time, so two operators replaying the same entries never run it twice.
        self.writing = anyio.Lock()

    # ---- rendering ------------------------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None,
               section: str = "", **values: Any) -> HTMLResponse:
        """A page, with the CSRF cookie set when the browser has none yet (its token is in every form)."""
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        fresh = not cookie
        if fresh:
            cookie = self.context.csrf.new_cookie()
        html = self.env.get_template(template).render(
            request=request,
            url=lambda name, **path: request.url_for(name, **path).path,
            csrf_field=CSRF_FIELD,
            csrf_token=self.context.csrf.token(cookie),
            user=self.context.auth.user(request),
            now=self.context.clock.now(),
            section=section,
            **values,
        )
        response = HTMLResponse(html, status, headers={"cache-control": "no-store", **(headers or {})})
        if fresh:
            root = request.scope.get("root_path", "") or "/"
            response.set_cookie(CSRF_COOKIE, cookie, path=root, httponly=True, samesite="strict")
        return response

    def error_page(self, request: Request, error: ConsoleError) -> HTMLResponse:
        """The error page for a :class:`ConsoleError`."""
        return self.render(request, "error.html", error.status, error.headers, error=error)

    # ---- Routes ---------------------------------------------------------------------------------

    async def routes(self, request: Request) -> Response:
        """Every route: state, counters, live rates, a rate chart, its dead letters; the last reload."""
        engine = self.context.engine
        sampler = self.context.sampler
        states = engine.route_states()
        reload = engine.reload_status
        views = []
        for name, runner in engine.runners.items():
            stats = runner.stats
            counters = {**stats.as_dict(), "errors": stats.errors, "source_errors": stats.source_errors}
            failure = runner.failure or runner.waiting
            last = await self.context.stores.dead_letters.list(route=name, limit=1)
            views.append(RouteView(
                name=name,
                source=runner.plan.source.label,
                state="failed" if runner.failure is not None else "waiting" if runner.waiting is not None
                else states.get(name, "stopped"),
                failure=f"{failure.code} {failure}" if failure is not None else None,
                counters=counters,
                deliveries=sorted(stats.deliveries.items()),
                rates=sampler.rates(name),
                chart=sampler.chart(name),
                stored_dead_letters=await self.context.stores.dead_letters.count(name),
                last_dead_letter=last[0] if last else None,
                reload=_reloaded(name, reload),
            ))
        total = await self.context.stores.dead_letters.count()
        return self.render(request, "routes.html", section="routes", routes=views, stored_dead_letters=total,
                           interval=sampler.interval, reload=reload)

    # ---- Dead letters ---------------------------------------------------------------------------

    async def dead_letters(self, request: Request) -> Response:
        """Dead letters newest first, filtered by route, error code and date range, a page at a time."""
        query = request.query_params
        known = list(self.context.engine.runners)
        route = params.route_name(query.get("route"), known)
        code = params.error_code(query.get("code"))
        since = params.moment(query.get("since"), "since")
        until = params.moment(query.get("until"), "until", end_of_day=True)
        page = params.page_number(query.get("page"))
        if since is not None and until is not None and since >= until:
            raise bad_request("'since' must come before 'until'")
        found = await self.context.stores.dead_letters.list(route=route, code=code, since=since, until=until,
                                                            limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
        entries, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE

        def page_url(number: int) -> str:
            url = request.url.include_query_params(page=number)
            return f"{url.path}?{url.query}"

        filters = {"route": route or "", "code": code or "", "since": query.get("since", "").strip(),
                   "until": query.get("until", "").strip()}
        return self.render(request, "dead_letters.html", section="dead_letters", entries=entries, routes=known,
                           filters=filters, page=page, previous_url=page_url(page - 1) if page > 1 else None,
                           next_url=page_url(page + 1) if more else None)

    async def dead_letter(self, request: Request) -> Response:
        """One entry: the error and its chain, every attempt, the payloads, the correlation id."""
        entry = await self._entry(request.path_params["entry_id"])
        stage = Payload.of(entry.stage_payload) if entry.stage_payload is not None else None
        return self.render(request, "dead_letter.html", section="dead_letters", entry=entry,
                           payload=Payload.of(entry.payload), stage_payload=stage,
                           route_known=entry.route in self.context.engine.runners)

    async def _entry(self, entry_id: str) -> DeadLetter:
        entry = await self.context.stores.dead_letters.get(entry_id)
        if entry is None:
            raise ConsoleError(404, "No such dead letter",
                               f"there is no dead letter '{entry_id}'; it may have been purged")
        return entry

    async def replay(self, request: Request) -> Response:
        """POST: replay the selected entries (admin credentials and CSRF token required)."""
        fields = await self._authorized_form(request)
        from_start = fields.get("from_start", [""])[-1] == "yes"
        async with self.writing:
            entries = await self._selected(fields)
            results = await actions.replay(self.context, entries, from_start=from_start)
        return self.render(request, "action.html", section="dead_letters", action="Replay", results=results)

    async def purge(self, request: Request) -> Response:
        """POST: delete the selected entries (admin credentials and CSRF token required)."""
        fields = await self._authorized_form(request)
        async with self.writing:
            entries = await self._selected(fields)
            results = await actions.purge(self.context, entries)
        return self.render(request, "action.html", section="dead_letters", action="Purge", results=results)

    def _require_admin(self, request: Request, off: str, needed: str) -> None:
        """403 titled `off` when the daemon has no admin password; 401 saying `needed` without the credentials."""
        auth = self.context.auth
        if not auth.configured:
            raise ConsoleError(403, off,
                               "the daemon has no admin password: set CROSSDOCK_ADMIN_PASSWORD and restart it")
        if auth.user(request) is None:
            raise ConsoleError(401, "Log in required", needed,
                               {"www-authenticate": f'Basic realm="{auth.realm}", charset="UTF-8"'})

    async def _authorized_form(self, request: Request) -> dict[str, list[str]]:
        """The form of a write action, after the credentials (401) and the CSRF token (403) are checked."""
        self._require_admin(request, "Write actions are off", "replay and purge need the admin credentials")
        fields = await params.form(request)
        if not self.context.csrf.valid(request, fields.get(CSRF_FIELD, [""])[-1]):
            raise ConsoleError(403, "Form expired",
                               "the form's security token does not match this browser (the daemon restarted, "
                               "or the form came from another site); reload the page and try again")
        return fields

    async def _selected(self, fields: dict[str, list[str]]) -> list[DeadLetter]:
        """The entries named by the form's `id` fields; 400 for none or too many, 404 if one is missing."""
        ids = list(dict.fromkeys(i.strip() for i in fields.get("id", []) if i.strip()))
        if not ids:
            raise bad_request("select at least one dead letter")
        if len(ids) > MAX_SELECTED:
            raise bad_request(f"select at most {MAX_SELECTED} dead letters at a time")
        entries, missing = [], []
        for entry_id in ids:
            entry = await self.context.stores.dead_letters.get(entry_id)
            if entry is None:
                missing.append(entry_id)
            else:
                entries.append(entry)
        if missing:
            raise ConsoleError(404, "No such dead letter",
                               f"nothing was done: no dead letter {', '.join(repr(m) for m in missing)} "
                               "(purged meanwhile?)")
        return entries

    # ---- Lineage --------------------------------------------------------------------------------

    async def lineage(self, request: Request) -> Response:
        """Search by business key, correlation id or dead-letter id; each message found as a timeline."""
        value = params.text(request.query_params.get("q"), "search")
        found = await self.context.lineage(value) if value is not None else None
        return self.render(request, "lineage.html", section="lineage", q=value or "", lineage=found)

    # ---- Log in ---------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        """Ask the browser for the admin credentials, then go back where the operator came from."""
        self._require_admin(request, "Log in is off", "give the admin user and password to replay and purge")
        root = request.url_for("routes").path
        target = request.query_params.get("next", "")
        # Only a path inside the console: never an open redirect to another site.
        if not (target.startswith(root) and not target.startswith("//") and "\\" not in target):
            target = root
        return RedirectResponse(target, 303)
