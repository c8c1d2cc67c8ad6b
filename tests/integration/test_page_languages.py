"""The pages in the reader's language over an index filled by the real pipeline:
Accept-Language and `?lang=` pick it, links keep a chosen one, every page kind speaks
it, and the API is the same whatever the language."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.ingest.app import ingest_once
from services.ratefeed.app import ratefeed_once
from shared.settings import Settings
from tests.conftest import REALDATA, Namespace
from tests.pipeline import index_streams, query_client

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    await ingest_once(settings, str(REALDATA / "feed-heise-developer.atom"), name="heise")
    await ratefeed_once(settings, str(REALDATA / "cbr-xml-daily-2023-09-27.xml"))
    await index_streams(redis, es, settings)
    async with query_client(settings) as client:
        yield client


def html_lang(page: httpx.Response) -> str:
    found = re.search(r'<html lang="([^"]+)">', page.text)
    assert found
    return found.group(1)


async def test_accept_language_picks_the_page_language(api: httpx.AsyncClient) -> None:
    russian = await api.get("/", headers={"Accept-Language": "de-DE,ru;q=0.8,en;q=0.5"})
    assert html_lang(russian) == "ru"
    assert russian.headers["content-language"] == "ru"
    assert "Accept-Language" in russian.headers["vary"]
    assert "Показаны 1–10, всего 15 результатов" in russian.text
    assert "KGS/USD = 0,01127" in russian.text  # the ticker's decimal sign too
    uzbek = await api.get("/", headers={"Accept-Language": "uz"})
    assert html_lang(uzbek) == "uz-Latn"
    assert "15 ta natijadan 1–10 koʻrsatilmoqda" in uzbek.text
    english = await api.get("/", headers={"Accept-Language": "fr"})
    assert html_lang(english) == "en"
    assert "Viewing results 1 - 10 of 15" in english.text


async def test_a_chosen_language_wins_and_every_link_keeps_it(api: httpx.AsyncClient) -> None:
    page = await api.get("/", params={"lang": "kk"}, headers={"Accept-Language": "ru"})
    assert html_lang(page) == "kk"
    assert '<input type="hidden" name="lang" value="kk">' in page.text
    links = re.findall(r'href="(/[^"]*)"', page.text)
    to_pages = [link for link in links if not link.startswith("/static/")]
    switch = [link for link in to_pages if re.search(r"lang=(en|ru|uz-Latn|uz-Cyrl)\b", link)]
    assert len(switch) == 4  # the switch's other languages
    assert all("lang=kk" in link for link in to_pages if link not in switch)
    assert any(link.startswith("/articles/") for link in to_pages)
    # Negotiated, not chosen: links name no language (each request negotiates again).
    negotiated = await api.get("/", headers={"Accept-Language": "kk"})
    assert html_lang(negotiated) == "kk"
    assert 'name="lang"' not in negotiated.text
    article = re.search(r'href="(/articles/[0-9a-f]{32})"', negotiated.text)
    assert article


async def test_every_page_kind_speaks_the_language(api: httpx.AsyncClient) -> None:
    found = await api.get("/", params={"lang": "uz-Cyrl"})
    article_url = re.search(r'href="(/articles/[0-9a-f]{32}\?lang=uz-Cyrl)"', found.text)
    assert article_url
    article = await api.get(article_url.group(1))
    assert html_lang(article) == "uz-Cyrl"
    assert '<a href="/?lang=uz-Cyrl">Қидирувга қайтиш</a>' in article.text

    missing = await api.get("/articles/" + "0" * 32, params={"lang": "ru"})
    assert missing.status_code == 404
    assert "<h1>Такой статьи нет</h1>" in missing.text

    invalid = await api.get("/", params={"page": "two", "lang": "kk"})
    assert invalid.status_code == 422
    assert "<h1>Бұл мекенжай көрсету мүмкін емес нәрсені сұрап тұр</h1>" in invalid.text
    assert '<li lang="en">page: ' in invalid.text

    refused = await api.get(
        "/", params={"date_from": "2025-03-02", "date_to": "2025-03-01", "lang": "ru"}
    )
    assert refused.status_code == 400
    assert 'Такой поиск выполнить нельзя: <span lang="en">date_from 2025-03-02' in refused.text

    nothing = await api.get("/", params={"q": "qxzvqxzv", "lang": "uz-Latn"})
    assert '<p id="viewing" class="viewing" role="status">Mos maqola topilmadi.' in nothing.text


async def test_the_api_is_the_same_whatever_the_language(api: httpx.AsyncClient) -> None:
    asked = {"Accept-Language": "ru"}
    for path in ("/api/search", "/api/quotes/latest"):
        english, russian = await api.get(path), await api.get(path, headers=asked)
        assert russian.json() == english.json()
        assert "content-language" not in russian.headers
    latest = (await api.get("/api/quotes/latest", headers=asked)).json()
    assert latest["ticker"][0] == "KGS/USD = 0.01127"
