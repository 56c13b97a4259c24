"""The web console over real HTTP: a real Engine on embedded stores, its console served by uvicorn.

See console_world.py for the daemon under test: three orders dead-lettered (PO-3 and PO-4 refused
by the ERP stand-in with ERP422, a truncated file refused by the JSON reader), two delivered, and a
route that failed at start.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import anyio
import console_sink
import pytest
from console_world import ADMIN_PASSWORD, ADMIN_USER, ROUTES, XSS_NAME, World, running_console

from crossdock.engine.clock import ManualClock
from crossdock.engine.stats import RouteStats
from crossdock.ops.admin import AdminCredentials
from crossdock.ops.console import RateSampler

pytestmark = pytest.mark.anyio



def basic(user: str, password: str) -> dict[str, str]:
    """An Authorization header with HTTP Basic credentials."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ADMIN = basic(ADMIN_USER, ADMIN_PASSWORD)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_console(tmp_path) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client that keeps cookies (also for 127.0.0.1, which aiohttp skips by default)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def get(session: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, str]:
    async with session.get(url, params=params) as answer:
        return answer.status, await answer.text()


async def post(session: aiohttp.ClientSession, url: str, fields: list[tuple[str, str]],
               headers: dict[str, str] = ADMIN) -> tuple[int, str]:
    async with session.post(url, data=fields, headers=headers) as answer:
        return answer.status, await answer.text()


async def csrf_token(session: aiohttp.ClientSession, world: World) -> str:
    """The token of the forms on the Dead letters page (which also sets this client's CSRF cookie)."""
    _, page = await get(session, f"{world.url}/dead-letters")
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)


def counters(page: str, route: str) -> dict[str, int]:
    """The counters shown in one route's section of the Routes page."""
    section = page.split(f'data-route="{html.escape(route)}"', 1)[1].split("</section>", 1)[0]
    return {name: int(value) for name, value in re.findall(r'data-counter="(\w+)"[^>]*>(\d+)<', section)}


def listed_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-entry="([0-9a-f]+)">', page)


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


async def test_routes_page_shows_state_counters_rates_and_chart(world: World, browser: aiohttp.ClientSession) -> None:
    await anyio.sleep(3 * world.context.sampler.interval)  # a few samples for the rates and the chart
    async with browser.get(world.url + "/") as answer:
        assert answer.status == 200
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        page = await answer.text()
    assert counters(page, "Web orders") == {"received": 5, "delivered": 2, "filtered": 0, "duplicates": 0,
                                            "dead_lettered": 3, "retried": 0, "errors": 0, "source_errors": 0}
    web = page.split('data-route="Web orders"', 1)[1].split("</section>", 1)[0]
    assert '<span class="badge state">running</span>' in web
    assert re.search(r'<polyline class="line received" points="[\d., ]+"', web)
    assert re.search(r'data-rate="received">\d+\.\d\d/s<', web)
    assert "3 dead letters" in web
    market = page.split('data-route="Marketplace feed"', 1)[1].split("</section>", 1)[0]
    assert '<span class="badge state">failed</span>' in market
    assert "MKT503 marketplace: the partner API is unreachable" in market
    assert '<span id="stored-dead-letters">3</span>' in page


async def test_routes_page_shows_the_last_reload(world: World, browser: aiohttp.ClientSession) -> None:
    route_file = world.routes / "shop.route"
    route_file.write_text(ROUTES.replace('map with "Order in"', 'map with "Order inn"'))
    with anyio.fail_after(10):
        while world.engine.reload_status is None:
            await anyio.sleep(0.05)
    _, page = await get(browser, world.url + "/")
    banner = html.unescape(page.split('<section id="reload" class="reload refused">', 1)[1].split("</section>", 1)[0])
    assert "Reload refused" in banner and "did you mean 'Order in'?" in banner
    assert f"{route_file}:" in banner and "1 refused" in banner
    assert counters(page, "Web orders")["received"] == 5  # still the running version

    route_file.write_text(ROUTES.replace("check every 100ms", "check every 200ms"))
    with anyio.fail_after(10):
        while not world.engine.reload_status.ok:
            await anyio.sleep(0.05)
    _, page = await get(browser, world.url + "/")
    assert '<section id="reload" class="reload ok">' in page
    web = page.split('data-route="Web orders"', 1)[1].split("</section>", 1)[0]
    assert "restarted in its new version by the reload at" in web
    assert '<span class="badge state">running</span>' in web


async def test_dead_letters_newest_first_and_filtered(world: World, browser: aiohttp.ClientSession) -> None:
    listed = await world.stores.dead_letters.list()
    status, page = await get(browser, f"{world.url}/dead-letters")
    assert status == 200
    assert listed_ids(page) == [e.id for e in listed] and len(listed) == 3
    [unreadable] = [e for e in listed if e.code != "ERP422"]
    assert unreadable.business_key is None  # the reader failed before the key was known
    decode_code = str(unreadable.code)

    _, page = await get(browser, f"{world.url}/dead-letters", code="ERP422")
    refused = {(await world.dead_letter("PO-3")).id, (await world.dead_letter("PO-4")).id}
    assert set(listed_ids(page)) == refused
    _, page = await get(browser, f"{world.url}/dead-letters", code=decode_code, route="Web orders")
    assert listed_ids(page) == [(await world.dead_letter(decode_code)).id]
    _, page = await get(browser, f"{world.url}/dead-letters", route="Marketplace feed")
    assert listed_ids(page) == [] and "No dead letters match these filters" in page
    _, page = await get(browser, f"{world.url}/dead-letters", since=day(0), until=day(0))
    assert len(listed_ids(page)) == 3
    _, page = await get(browser, f"{world.url}/dead-letters", since=day(1))
    assert listed_ids(page) == []
    _, page = await get(browser, f"{world.url}/dead-letters", until=day(-1))
    assert listed_ids(page) == []
    _, page = await get(browser, f"{world.url}/dead-letters", page="2")
    assert listed_ids(page) == [] and 'rel="prev"' in page


@pytest.mark.parametrize(("params", "message"), [
    ({"since": "last tuesday"}, "'since' takes a date (2026-01-31) or a date and time (2026-01-31T08:00), "
                                "not 'last tuesday'"),
    ({"until": "2026-02-30"}, "'until' takes a date"),
    ({"route": "Web order"}, "unknown route 'Web order'; did you mean 'Web orders'?"),
    ({"page": "two"}, "'page' takes a whole number from 1 to 10000, not 'two'"),
    ({"page": "0"}, "'page' takes a whole number"),
    ({"code": "<b>ERP</b>"}, "'<b>ERP</b>' is not an error code"),
    ({"since": "2026-03-02", "until": "2026-03-01"}, "'since' must come before 'until'"),
])
async def test_bad_parameters_are_400_with_a_message(world: World, browser: aiohttp.ClientSession,
                                                     params: dict[str, str], message: str) -> None:
    status, page = await get(browser, f"{world.url}/dead-letters", **params)
    assert status == 400
    assert message in html.unescape(page)
    assert "<b>" not in page  # what the request said is shown escaped


async def test_lineage_query_too_long_is_400(world: World, browser: aiohttp.ClientSession) -> None:
    status, page = await get(browser, f"{world.url}/lineage", q="x" * 201)
    assert status == 400
    assert "'search' is longer than 200 characters" in html.unescape(page)


async def test_entry_page_shows_escaped_payload_error_chain_and_attempts(world: World,
                                                                         browser: aiohttp.ClientSession) -> None:
    entry = await world.dead_letter("PO-4")
    status, page = await get(browser, f"{world.url}/dead-letters/{entry.id}")
    assert status == 200
    assert XSS_NAME not in page  # the payload is untrusted: shown, never run
    assert html.escape(XSS_NAME, quote=False) in page.replace("&#39;", "'")
    assert '<code id="entry-code">ERP422</code>' in page
    assert "ERP refused order PO-4: unknown customer" in page
    assert f"<code>{entry.correlation_id}</code>" in page
    attempts = page.split('<table class="attempts">', 1)[1].split("</table>", 1)[0]
    assert len(re.findall(r"<tr><td>\d+</td>", attempts)) == len(entry.attempts) == 1
    chain = page.split('<table class="chain">', 1)[1].split("</table>", 1)[0]
    assert "PermanentError" in chain and "ERP422" in chain


async def test_missing_entry_is_404_and_an_action_on_it_does_nothing(world: World,
                                                                     browser: aiohttp.ClientSession) -> None:
    status, page = await get(browser, f"{world.url}/dead-letters/0123456789abcdef")
    assert status == 404
    assert "there is no dead letter '0123456789abcdef'" in html.unescape(page)
    present = await world.dead_letter("PO-3")
    console_sink.REFUSED.clear()
    token = await csrf_token(browser, world)
    status, page = await post(browser, f"{world.url}/dead-letters/replay",
                              [("csrf", token), ("id", present.id), ("id", "gone")])
    assert status == 404 and "nothing was done" in page
    assert (await world.stores.dead_letters.get(present.id)).replayed_at is None  # type: ignore[union-attr]
    assert world.erp == ["PO-1", "PO-2"]


async def test_writes_without_credentials_are_401_and_change_nothing(world: World,
                                                                     browser: aiohttp.ClientSession) -> None:
    entry = await world.dead_letter("PO-3")
    console_sink.REFUSED.clear()
    token = await csrf_token(browser, world)
    fields = [("csrf", token), ("id", entry.id)]
    for action in ("replay", "purge"):
        for headers in ({}, basic(ADMIN_USER, "wrong"), basic("root", ADMIN_PASSWORD)):
            async with browser.post(f"{world.url}/dead-letters/{action}", data=fields, headers=headers) as answer:
                assert answer.status == 401
                assert answer.headers["www-authenticate"].startswith('Basic realm="crossdock admin"')
    stored = await world.stores.dead_letters.get(entry.id)
    assert stored is not None and stored.replayed_at is None
    assert world.erp == ["PO-1", "PO-2"]
    assert await world.stores.dead_letters.count() == 3


async def test_writes_need_the_csrf_token_of_this_browser(world: World, browser: aiohttp.ClientSession) -> None:
    entry = await world.dead_letter("PO-3")
    console_sink.REFUSED.clear()
    token = await csrf_token(browser, world)
    status, page = await post(browser, f"{world.url}/dead-letters/replay", [("id", entry.id)])
    assert status == 403 and "reload the page" in page
    status, _ = await post(browser, f"{world.url}/dead-letters/replay", [("csrf", "0" * 64), ("id", entry.id)])
    assert status == 403
    status, _ = await post(browser, f"{world.url}/dead-letters/purge", [("csrf", token), ("id", entry.id)],
                           headers={**ADMIN, "Origin": "https://evil.example"})
    assert status == 403
    async with aiohttp.ClientSession() as stranger:  # a token taken from another browser, without its cookie
        status, _ = await post(stranger, f"{world.url}/dead-letters/purge", [("csrf", token), ("id", entry.id)])
    assert status == 403
    stored = await world.stores.dead_letters.get(entry.id)
    assert stored is not None and stored.replayed_at is None
    assert world.erp == ["PO-1", "PO-2"]


async def test_writes_are_off_without_an_admin_password(world: World, browser: aiohttp.ClientSession) -> None:
    entry = await world.dead_letter("PO-3")
    world.context.auth = AdminCredentials(ADMIN_USER, None)
    token = await csrf_token(browser, world)
    status, page = await post(browser, f"{world.url}/dead-letters/purge", [("csrf", token), ("id", entry.id)])
    assert status == 403 and "CROSSDOCK_ADMIN_PASSWORD" in page
    assert await world.stores.dead_letters.count() == 3


async def test_replay_with_credentials_delivers_and_marks_the_entry(world: World,
                                                                   browser: aiohttp.ClientSession) -> None:
    entry = await world.dead_letter("PO-3")
    console_sink.REFUSED.clear()  # the ERP now knows the customer
    token = await csrf_token(browser, world)
    status, page = await post(browser, f"{world.url}/dead-letters/replay", [("csrf", token), ("id", entry.id)])
    assert status == 200
    assert re.search(rf'data-entry="{entry.id}">.*?<td class="outcome">delivered</td>', page, re.S)
    assert world.erp == ["PO-1", "PO-2", "PO-3"]
    [delivered] = [m for m in console_sink.RECEIVED["erp"] if m.business_key == "PO-3"]
    assert delivered.correlation_id == entry.correlation_id
    stored = await world.stores.dead_letters.get(entry.id)
    assert stored is not None and stored.replayed_at is not None and stored.replay_count == 1
    assert world.engine.stats.routes["Web orders"].delivered == 3
    _, page = await get(browser, f"{world.url}/dead-letters/{entry.id}")
    assert '<span class="badge replayed" id="replayed">replayed 1×' in page


async def test_replay_that_fails_again_says_so(world: World, browser: aiohttp.ClientSession) -> None:
    entry = await world.dead_letter("PO-4")
    token = await csrf_token(browser, world)
    status, page = await post(browser, f"{world.url}/dead-letters/replay", [("csrf", token), ("id", entry.id)])
    assert status == 200 and "dead-lettered again (a new entry)" in page
    assert await world.stores.dead_letters.count() == 4
    assert "PO-4" not in world.erp


async def test_purge_removes_the_selected_entries(world: World, browser: aiohttp.ClientSession) -> None:
    first, second = await world.dead_letter("PO-3"), await world.dead_letter("PO-4")
    token = await csrf_token(browser, world)
    status, page = await post(browser, f"{world.url}/dead-letters/purge",
                              [("csrf", token), ("id", first.id), ("id", second.id)])
    assert status == 200 and "Purge: 2 of 2 done" in page
    assert await world.stores.dead_letters.get(first.id) is None
    assert await world.stores.dead_letters.get(second.id) is None
    _, page = await get(browser, f"{world.url}/dead-letters")
    assert len(listed_ids(page)) == 1
    status, _ = await get(browser, f"{world.url}/dead-letters/{first.id}")
    assert status == 404


async def test_lineage_by_business_key_correlation_id_and_dead_letter(world: World,
                                                                     browser: aiohttp.ClientSession) -> None:
    status, page = await get(browser, f"{world.url}/lineage", q="PO-1")
    assert status == 200
    events = re.findall(r'<li data-event="([\w-]+)">', page)
    assert events[0] == "received" and events[-1] == "acked"
    assert {"mapped", "delivered"} <= set(events)
    assert "found by business key" in page and '<span class="badge outcome outcome-delivered">' in page

    entry = await world.dead_letter("PO-3")
    _, page = await get(browser, f"{world.url}/lineage", q=entry.id)
    assert "dead-letter id" in page
    assert 'data-event="dead-lettered"' in page and f"/dead-letters/{entry.id}" in page
    _, page = await get(browser, f"{world.url}/lineage", q=entry.correlation_id)
    assert "correlation id" in page and f'data-correlation="{entry.correlation_id}"' in page

    status, page = await get(browser, f"{world.url}/lineage", q="PO-404")
    assert status == 200 and 'id="nothing-found"' in page


async def test_unknown_page_and_method_get_the_console_error_page(world: World,
                                                                  browser: aiohttp.ClientSession) -> None:
    status, page = await get(browser, f"{world.url}/nowhere")
    assert status == 404 and "the console has no such page" in page
    async with browser.get(f"{world.url}/dead-letters/replay") as answer:
        assert answer.status == 404  # GET on an action reads as an entry named "replay": there is none


def test_rates_and_chart_come_from_the_sampled_counters() -> None:
    clock = ManualClock()
    stats = {"r": RouteStats()}
    sampler = RateSampler(lambda: stats, clock, interval=5, keep=4)
    sampler.sample()
    assert sampler.rates("r") is None and sampler.chart("r").empty
    for received in (10, 30, 30):
        clock.advance(5)
        stats["r"].received = stats["r"].delivered = received
        sampler.sample()
    assert sampler.rates("r") == {"received": 2.0, "delivered": 2.0, "dead_lettered": 0.0}
    chart = sampler.chart("r", width=150, height=50)
    assert chart.peak == 4.0
    assert chart.lines["received"] == "50.0,25.0 100.0,1.0 150.0,49.0"
    stats["r"] = RouteStats(received=5)  # a reload gave the route new counters: a reset, not a negative rate
    clock.advance(5)
    sampler.sample()
    assert len(sampler.samples["r"]) == 4
    assert sampler.chart("r", width=150, height=50).lines["received"].endswith("150.0,37.0")
    del stats["r"]
    sampler.sample()
    assert sampler.rates("r") is None
