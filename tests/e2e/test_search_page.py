"""The search page in a real headless Chromium: title suggestions, search, page, filter
by a facet, watch the ticker change live when a quote arrives on the stream, and keep
screenshots.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared.events import QuoteEvent
from shared.streams import DATA_FIELD
from tests.conftest import REPO
from tests.e2e.conftest import QueryService

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists(),
        reason="needs Debian's chromium at /usr/bin/chromium "
        "(deploy/local/provision.sh installs it)",
    ),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = REPO / "test-artifacts"
VIEWING = re.compile(r"Viewing results (\d+) - (\d+) of (\d+)")


async def test_search_page_in_a_browser(query_service: QueryService, redis: Redis) -> None:
    from playwright.async_api import async_playwright, expect  # noqa: PLC0415 — e2e only

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 1000})
        await page.goto(query_service.url)

        ticker = page.get_by_role("list", name="Currency rates per US dollar")
        await expect(ticker.get_by_role("listitem")).to_have_count(5)
        await expect(ticker).to_contain_text("KGS/USD = 0.01127")
        await expect(page.locator("#ticker")).to_have_attribute("data-live", "on")

        # Keyboard first: the skip link, then the search box by its label.
        await page.keyboard.press("Tab")
        await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        box = page.get_by_label("Search articles")
        await box.press_sequentially("Сто л")
        await expect(page.locator("#suggestions option")).to_have_count(1)
        assert (await page.locator("#suggestions option").get_attribute("value") or "").startswith(
            "Сто лет назад родилась Майя Плисецкая"
        )
        await box.fill("Java OR Microsoft OR Scrum")
        await box.press("Enter")
        await expect(page.locator(".viewing")).to_have_text(VIEWING)
        await expect(page.locator("mark").first).to_be_visible()
        await page.screenshot(path=str(ARTIFACTS / "search-results.png"), full_page=True)

        # Everything, newest first, then the second page through the pager.
        await box.fill("")
        await box.press("Enter")
        first = VIEWING.search(await page.locator(".viewing").inner_text())
        assert first
        total = int(first.group(3))
        assert (first.group(1), first.group(2)) == ("1", "10")
        pages = page.get_by_role("navigation", name="Result pages")
        await pages.get_by_role("link", name="Next").click()
        await expect(page.locator(".viewing")).to_have_text(f"Viewing results 11 - 20 of {total}")
        await expect(pages.get_by_role("link", name="2")).to_have_attribute("aria-current", "page")

        # A facet link filters, and its count is the new total.
        facets = page.get_by_role("navigation", name="Filter results")
        meduza = facets.get_by_role("listitem").filter(has_text="meduza.io")
        count = await meduza.locator(".count").inner_text()
        await meduza.get_by_role("link").click()
        await expect(page.locator(".viewing")).to_have_text(f"Viewing results 1 - 10 of {count}")
        sources = await page.locator(".hits .meta").all_inner_texts()
        assert sources
        assert all(text.startswith("meduza.io") for text in sources)

        # A new quote on the stream reaches the open page without a reload.
        await expect(page.locator("#ticker")).to_have_attribute("data-live", "on")
        quote = QuoteEvent(
            base="KGS",
            rate=Decimal("0.0123456"),
            change_pct=Decimal("-1.5"),
            previous_rate=Decimal("0.0125335"),
            as_of=date(2023, 9, 28),
            provider="cbr",
            fetched_at="2023-09-28T09:00:00Z",
        )
        await redis.xadd(
            query_service.namespace.streams.quotes, {DATA_FIELD: quote.model_dump_json().encode()}
        )
        await expect(page.locator('#ticker li[data-base="KGS"]')).to_have_text(
            "KGS/USD = 0.01235 -1.5%"
        )
        await page.screenshot(path=str(ARTIFACTS / "search-page.png"), full_page=True)

        # The article page, from the first result.
        await page.locator(".hits h2 a").first.click()
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await page.screenshot(path=str(ARTIFACTS / "article-page.png"), full_page=True)
        await browser.close()
