"""The console in a real browser: headless Chromium (Debian's package) driven by Playwright.

An operator's round on the admin port, as `crossdock run --admin` serves the console: the Routes
page, the dead letters of one route, one entry's payload and error, logging in and replaying it once
the cause is fixed, then the document's lineage. The Routes page is saved as a screenshot; with
CROSSDOCK_SCREENSHOT=1 in the environment it replaces docs/console.png, the one the README shows
(otherwise a test run would leave the checkout changed).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio
import console_sink
import pytest
from console_world import ADMIN_PASSWORD, ADMIN_USER, order, running_console
from playwright.async_api import ConsoleMessage, Page, async_playwright, expect

pytestmark = pytest.mark.anyio

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MORE_ORDERS = 16
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "console.png"


async def test_operator_round_in_chromium(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing at /usr/bin/chromium: scripts/test installs it (apt package chromium)")
    async with running_console(tmp_path, admin_port=True, sample_every=0.5, samples=12) as world, \
            async_playwright() as playwright:
        # Orders keep arriving for a few seconds, in bursts, so the rate charts have something to draw.
        for number in range(MORE_ORDERS):
            world.drop(f"more-{number}.json", order(f"PO-{100 + number}"))
            await anyio.sleep(0.15 if number % 8 < 4 else 0.45)
        browser = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            http_credentials={"username": ADMIN_USER, "password": ADMIN_PASSWORD},
            viewport={"width": 1280, "height": 800},
        )
        try:
            page = browser.pages[0] if browser.pages else await browser.new_page()
            problems: list[str] = []
            page.on("console", lambda message: _note_error(message, problems))
            page.on("pageerror", lambda error: problems.append(str(error)))
            await _routes_page(page, world.url, tmp_path / "console.png")
            await _dead_letter_replayed(page, world.erp)
            assert world.erp[-1] == "PO-3"
            await _lineage(page)
            assert problems == []  # no script error, nothing blocked by the content security policy
        finally:
            await browser.close()


def _note_error(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(message.text)


async def _routes_page(page: Page, url: str, screenshot: Path) -> None:
    await page.goto(url + "/")
    await expect(page.locator(".route-name")).to_have_text(["Web orders", "Marketplace feed"])
    web = page.locator('section[data-route="Web orders"]')
    await expect(web.locator('td[data-counter="received"]')).to_have_text(str(5 + MORE_ORDERS))
    await expect(web.locator('td[data-counter="delivered"]')).to_have_text(str(2 + MORE_ORDERS))
    await expect(web.locator('td[data-counter="dead_lettered"]')).to_have_text("3")
    await expect(web.locator(".badge.state")).to_have_text("running")
    await expect(web.locator("polyline.line.received")).to_have_count(1)
    market = page.locator('section[data-route="Marketplace feed"]')
    await expect(market.locator(".badge.state")).to_have_text("failed")
    await expect(market.locator(".failure")).to_contain_text("MKT503")
    await expect(page.locator("#login")).to_have_text("Log in")
    if os.environ.get("CROSSDOCK_SCREENSHOT") == "1":
        screenshot = README_SCREENSHOT
    await page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def _dead_letter_replayed(page: Page, erp: list[str]) -> None:
    await page.locator("header.top nav").get_by_role("link", name="Dead letters").click()
    await page.select_option("#filter-route", "Web orders")
    await page.click("#filter")
    await expect(page).to_have_url(re.compile(r"/dead-letters\?route=Web\+orders"))
    rows = page.locator("table.entries tbody tr")
    await expect(rows).to_have_count(3)
    await rows.filter(has_text="PO-3").locator("a").click()
    await expect(page.locator("#payload")).to_contain_text('"po": "PO-3"')
    await expect(page.locator("#entry-code")).to_have_text("ERP422")
    await expect(page.locator("#entry-error")).to_contain_text("ERP refused order PO-3")
    entry_url = page.url

    console_sink.REFUSED.discard("PO-3")  # the ERP learned the customer: worth replaying now
    await page.click("#login")  # the browser answers the Basic auth challenge with the admin credentials
    await expect(page.locator("#user")).to_have_text(ADMIN_USER)
    assert page.url == entry_url  # back where the operator was
    assert "PO-3" not in erp
    await page.click("#replay")
    await expect(page.locator("tr.ok .outcome")).to_have_text("delivered")
    await page.goto(entry_url)
    await expect(page.locator("#replayed")).to_contain_text("replayed 1×")


async def _lineage(page: Page) -> None:
    await page.locator("header.top nav").get_by_role("link", name="Lineage").click()
    await page.fill("#lineage-q", "PO-3")
    await page.click("#search")
    await expect(page.locator("#found")).to_contain_text("found by business key")
    events = await page.locator("ol.timeline li").evaluate_all("items => items.map(i => i.dataset.event)")
    assert events[0] == "received"
    assert events.index("dead-lettered") < events.index("replayed") < events.index("delivered")
    await expect(page.locator("section.trail .badge.outcome")).to_have_text("delivered")
