"""The search page in a real headless Chromium: title suggestions, search, page, filter
by a facet, watch the ticker change live when a quote arrives on the stream, and keep
screenshots; axe-core finds nothing serious on any page, in English and Russian; it is
used with the keyboard alone, in the language Accept-Language asks for or the switch
picks, and on a phone's width.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio import Redis

from shared.events import QuoteEvent
from shared.streams import DATA_FIELD
from tests.conftest import REPO
from tests.e2e.conftest import QueryService

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, ViewportSize

pytestmark = pytest.mark.e2e

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
# Installed by deploy/local/provision.sh from tests/e2e/package-lock.json (npm ci).
AXE = REPO / "tests" / "e2e" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
PHONE: ViewportSize = {"width": 390, "height": 844}
# How the browser names the policy when it reports what the page may not load.
POLICY = "Content Security Policy"
# A query the samples answer with highlighted hits, and one nothing matches.
FOUND = "Java OR Microsoft OR Scrum"
NOTHING = "qxzvqxzvqxzv"


@pytest.fixture(autouse=True)
def _browser_tools() -> None:
    """A failure, not a skip: a runner without them would go green with none of this tried."""
    for tool in (Path(CHROMIUM), AXE):
        if not tool.exists():
            pytest.fail(f"needs {tool}: run deploy/local/provision.sh")


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright  # noqa: PLC0415 — e2e only

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def blocking_violations(page: Page) -> list[str]:
    """What axe-core finds serious or critical on the page as it is now, one line each."""
    await page.add_script_tag(path=str(AXE))
    results: dict[str, Any] = await page.evaluate("() => axe.run(document)")
    return [
        f"{found['id']} ({found['impact']}): {found['help']} at "
        + ", ".join(str(node["target"]) for node in found["nodes"])
        for found in results["violations"]
        if found["impact"] in BLOCKING
    ]


async def first_article_url(page: Page, base: str, query: str) -> str:
    await page.goto(f"{base}/?{query}")
    href = await page.locator(".hits h2 a").first.get_attribute("href")
    assert href
    return f"{base}{href}"


async def test_search_page_in_a_browser(query_service: QueryService, redis: Redis) -> None:
    from playwright.async_api import async_playwright, expect  # noqa: PLC0415 — e2e only

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 1000})
        # The pages' Content-Security-Policy lets them load all they use: what it
        # refuses, the browser reports on the console, naming the policy.
        refused: list[str] = []
        page.on("console", lambda message: refused.append(message.text))
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

        # A new quote on the stream reaches the open page without a reload; an older
        # day's (a backfill's) does not replace the rate the page shows.
        await expect(page.locator("#ticker")).to_have_attribute("data-live", "on")
        for base, rate, day in [("KGS", "0.02", date(2020, 1, 1)), ("KZT", "0.0021", None)]:
            shown = await page.locator(f'#ticker li[data-base="{base}"]').get_attribute("data-day")
            assert shown
            older = QuoteEvent(
                base=base,
                rate=Decimal(rate),
                as_of=day or date.fromisoformat(shown),
                provider="cbr",
                fetched_at="2023-09-28T09:00:00Z",
            )
            await redis.xadd(
                query_service.namespace.streams.quotes,
                {DATA_FIELD: older.model_dump_json().encode()},
            )
        # The KZT quote of the page's own day came after the older KGS one, and shows.
        await expect(page.locator('#ticker li[data-base="KZT"]')).to_have_text(
            re.compile(r"^KZT/USD = 0\.002100")
        )
        await expect(page.locator('#ticker li[data-base="KGS"]')).to_have_text(
            re.compile(r"^KGS/USD = 0\.01127")
        )
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
        await expect(page.locator('#ticker li[data-base="KGS"]')).to_have_attribute(
            "title", "as of 28 September 2023"
        )
        await page.screenshot(path=str(ARTIFACTS / "search-page.png"), full_page=True)

        # The article page, from the first result.
        await page.locator(".hits h2 a").first.click()
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await page.screenshot(path=str(ARTIFACTS / "article-page.png"), full_page=True)
        assert [text for text in refused if POLICY in text] == []
        # And the check can fail: an inline script is refused.
        async with page.expect_console_message(lambda message: POLICY in message.text):
            await page.evaluate(
                "() => document.body.append(Object.assign("
                "document.createElement('script'), {textContent: '1'}))"
            )
        await browser.close()


@pytest.mark.parametrize(
    ("locale", "lang", "status"),
    [
        ("en-US", "en", {"search": "Viewing results 1 - 10 of", "empty": "No articles match."}),
        ("ru-RU", "ru", {"search": "Показаны 1–10, всего", "empty": "Подходящих статей нет."}),
        ("uz", "uz-Latn", {"search": "ta natijadan 1–10", "empty": "Mos maqola topilmadi."}),
        ("uz-Cyrl", "uz-Cyrl", {"search": "та натижадан 1–10", "empty": "Мос мақола топилмади."}),
        ("kk-KZ", "kk", {"search": "нәтиженің 1–10 аралығы", "empty": "Сәйкес мақала табылмады."}),
    ],
)
async def test_axe_finds_nothing_serious_on_any_page(
    query_service: QueryService, locale: str, lang: str, status: dict[str, str]
) -> None:
    from playwright.async_api import expect  # noqa: PLC0415 — e2e only

    base = query_service.url
    async with chromium() as browser:
        # The language comes from the browser's Accept-Language, as a reader's would;
        # axe-core is put in the page as an inline script, which its policy refuses.
        page = await browser.new_page(
            locale=locale, viewport={"width": 1280, "height": 1000}, bypass_csp=True
        )
        pages = {
            "search": f"{base}/",
            "results": f"{base}/?q={FOUND}",
            "article": await first_article_url(page, base, f"q={FOUND}"),
            "empty": f"{base}/?q={NOTHING}",
        }
        found = {}
        for name, url in pages.items():
            await page.goto(url)
            await expect(page.locator("html")).to_have_attribute("lang", lang)
            if name in status:
                await expect(page.locator(".viewing")).to_contain_text(status[name])
            found[name] = await blocking_violations(page)
        assert found == {name: [] for name in pages}
        # And the check can fail: an image with no text alternative is critical.
        await page.evaluate("() => document.querySelector('main').append(new Image())")
        assert any(line.startswith("image-alt") for line in await blocking_violations(page))


async def test_keyboard_alone_searches_and_opens_a_result(query_service: QueryService) -> None:
    from playwright.async_api import expect  # noqa: PLC0415 — e2e only

    async with chromium() as browser:
        page = await browser.new_page(locale="ru-RU", viewport={"width": 1280, "height": 1000})
        await page.goto(query_service.url)
        keyboard = page.keyboard

        # The skip link first; Enter on it, and the next Tab is the search box.
        await keyboard.press("Tab")
        await expect(page.get_by_role("link", name="Перейти к содержанию")).to_be_focused()
        await keyboard.press("Enter")
        await keyboard.press("Tab")
        box = page.get_by_label("Поиск статей")
        await expect(box).to_be_focused()
        await keyboard.type(FOUND)
        await keyboard.press("Enter")
        await expect(page.locator(".viewing")).to_contain_text("Показаны 1–")

        # Tab on (skip link, masthead, form) until the first result's link has focus.
        first = page.locator(".hits h2 a").first
        title = await first.inner_text()
        for _ in range(30):
            await keyboard.press("Tab")
            if await first.evaluate("link => link === document.activeElement"):
                break
        await expect(first).to_be_focused()
        # A visible focus ring: the outline the style sheet gives :focus-visible.
        outline = await first.evaluate("link => getComputedStyle(link).outlineStyle")
        assert outline == "solid"
        await keyboard.press("Enter")
        await expect(page.get_by_role("heading", level=1)).to_have_text(title)
        await expect(page.locator("html")).to_have_attribute("lang", "ru")


async def test_the_switch_keeps_its_language_across_search_paging_and_filters(
    query_service: QueryService, redis: Redis
) -> None:
    from playwright.async_api import expect  # noqa: PLC0415 — e2e only

    async with chromium() as browser:
        page = await browser.new_page(locale="en-GB", viewport={"width": 1280, "height": 1000})
        await page.goto(query_service.url)
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        switch = page.get_by_role("navigation", name="Language")
        await switch.get_by_role("link", name="Қазақша").click()
        await expect(page.locator("html")).to_have_attribute("lang", "kk")
        await expect(page.locator(".viewing")).to_contain_text("нәтиженің 1–10 аралығы")
        # The live ticker writes a new quote as the page's language does.
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
        kgs = page.locator('#ticker li[data-base="KGS"]')
        await expect(kgs).to_have_text("KGS/USD = 0,01235 -1,5%")
        await expect(kgs).to_have_attribute("title", re.compile(r"2023.* жағдай бойынша$"))

        pages = page.get_by_role("navigation", name="Нәтиже беттері")
        await pages.get_by_role("link", name="Келесі").click()
        await expect(page.locator(".viewing")).to_contain_text("нәтиженің 11–20 аралығы")
        box = page.get_by_label("Мақалаларды іздеу")
        await box.fill(FOUND)
        await box.press("Enter")
        await expect(page.locator("html")).to_have_attribute("lang", "kk")
        assert "lang=kk" in page.url
        facets = page.get_by_role("navigation", name="Нәтижелерді сүзу")
        await facets.get_by_role("link").first.click()
        await expect(page.locator(".hits .chosen, .facets .chosen")).to_have_count(1)
        await expect(page.locator("html")).to_have_attribute("lang", "kk")
        await page.locator(".hits h2 a").first.click()
        await expect(page.locator("html")).to_have_attribute("lang", "kk")
        await expect(page.get_by_role("link", name="Іздеуге оралу")).to_have_attribute(
            "href", "/?lang=kk"
        )
        # Uzbek in Cyrillic from the switch, on the same article.
        await page.get_by_role("navigation", name="Тіл").get_by_role("link", name="Ўзбекча").click()
        await expect(page.locator("html")).to_have_attribute("lang", "uz-Cyrl")
        await expect(page.get_by_role("link", name="Қидирувга қайтиш")).to_be_visible()


async def test_a_phone_wide_page_needs_no_sideways_scrolling(query_service: QueryService) -> None:
    from playwright.async_api import expect  # noqa: PLC0415 — e2e only

    base = query_service.url
    async with chromium() as browser:
        for locale, lang in (("en-GB", "en"), ("ru-RU", "ru")):
            page = await browser.new_page(
                locale=locale, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
            )
            pages = {
                "search": f"{base}/",
                "results": f"{base}/?q={FOUND}",
                "article": await first_article_url(page, base, f"q={FOUND}"),
                "empty": f"{base}/?q={NOTHING}",
            }
            for name, url in pages.items():
                await page.goto(url)
                await expect(page.locator("html")).to_have_attribute("lang", lang)
                widths = await page.evaluate(
                    "() => [document.scrollingElement.scrollWidth, window.innerWidth]"
                )
                assert widths[0] <= widths[1], f"{name} ({lang}) scrolls sideways: {widths}"
                await page.screenshot(
                    path=str(ARTIFACTS / f"phone-{name}-{lang}.png"), full_page=True
                )
            await page.close()
