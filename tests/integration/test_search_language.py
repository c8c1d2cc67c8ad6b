"""Search that knows the region's languages, on the real Elasticsearch (minimal distribution).

Word forms (Russian, English), Uzbek and Kazakh in either script, place and
currency names across languages, near spellings with "Did you mean", through the
query API over documents made by the indexer's own document builder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from elasticsearch import AsyncElasticsearch

from services.indexer.documents import article_action
from services.indexer.mappings import ensure_indices
from shared.events import ArticleEvent, content_hash
from shared.index import IndexNames
from shared.settings import Settings
from tests.conftest import Namespace
from tests.pipeline import query_client

pytestmark = pytest.mark.integration

ARTICLES = {
    "station": (
        "Поезда снова ходят по расписанию",
        "Ненокса",
        "Первый поезд ушёл с железнодорожного вокзала Ненокса в шесть утра.",
    ),
    "envoy": (
        "EU Sanctions Envoy’s Kazakh Visit Signals Rising Stakes",
        "Astana",
        "David O’Sullivan discussed the new sanctions package in Astana.",
    ),
    "counter": ("Moscow answers with Counter Sanctions", "Russia", "Counter measures follow."),
    "derby": (
        "Ўзбекистон Суперлигаси: Андижон — Хоразм",
        "Superliga",
        "Ўзбекистон Суперлигаси 19-турида жамоамиз ўз майдонида Хоразмни қабул қилади.",
    ),
    "victory": (
        "Damir Temirov: “Haqli g'alabaga erishdik”",
        "FK Andijon",
        "Haqli g'alabaga erishdik, dedi murabbiy.",
    ),
    "visit": (
        "Токаев встретился с Путиным в Астане",
        "Казахстан",
        "Президент Казахстана Касым-Жомарт Токаев принял гостя в Акорде.",
    ),
    "ballet": (
        "Сто лет назад родилась Майя Плисецкая — великая балерина",
        "Балет",
        "Великая балерина и мировая звезда.",
    ),
    "tenge": ("Теңге бағамы нығайды", "Ұлттық банк", "Ұлттық банк теңге бағамын жариялады."),
    "stress": ("Зáмок над Ташке́нтом", "Словарь", "Кремль й за́мок."),
    "spam": ("Pоссия и Kыргызcтан", "Сhina", "Сhina news."),
    "baikonur": ("Байқоңыр ауылы", "Шымкент", "Байқоңыр ауылының жаңалықтары."),
}


def _event(key: str, title: str, summary: str, body: str) -> ArticleEvent:
    url = f"https://news.example/{key}"
    return ArticleEvent(
        source="example",
        url=url,
        canonical_url=url,
        title=title,
        summary=summary,
        body=body,
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
        content_hash=content_hash(title, body),
    )


@pytest.fixture
async def api(
    es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    names = IndexNames(namespace.index_prefix)
    await ensure_indices(es, names, settings.common)
    operations: list[Any] = []
    for key, fields in ARTICLES.items():
        operations.extend(article_action(_event(key, *fields), names.articles).operations())
    response = await es.bulk(operations=operations, refresh=True)
    assert not response["errors"]
    unlimited = settings.query.model_copy(update={"rate_limit": 0, "cache_seconds": 0})
    async with query_client(replace(settings, query=unlimited)) as client:
        yield client


async def _search(api: httpx.AsyncClient, q: str) -> dict[str, Any]:
    response = await api.get("/api/search", params={"q": q})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def _found(api: httpx.AsyncClient, q: str) -> set[str]:
    return {r["url"].rsplit("/", 1)[1] for r in (await _search(api, q))["results"]}


async def test_word_forms_are_found_and_the_forms_in_the_text_are_marked(
    api: httpx.AsyncClient,
) -> None:
    page = await _search(api, "вокзал")
    assert [r["url"].rsplit("/", 1)[1] for r in page["results"]] == ["station"]
    assert "<mark>вокзала</mark>" in page["results"][0]["excerpt"]
    assert await _found(api, "sanction") == {"envoy", "counter"}
    assert await _found(api, "балерины") == {"ballet"}


async def test_phrases_or_and_exclusions_keep_working_on_word_forms(api: httpx.AsyncClient) -> None:
    assert await _found(api, '"железнодорожный вокзал"') == {"station"}
    assert await _found(api, '"вокзал железнодорожный"') == set()
    assert await _found(api, "вокзал -Ненокса") == set()
    assert await _found(api, "вокзал OR sanction") == {"station", "envoy", "counter"}
    assert await _found(api, "sanction -counter") == {"envoy"}


async def test_uzbek_is_found_in_either_script_with_any_okina(api: httpx.AsyncClient) -> None:
    for spelling in ("Oʻzbekiston", "O'zbekiston", "O‘zbekiston", "Ozbekiston", "Ўзбекистон"):
        assert "derby" in await _found(api, spelling), spelling
    page = await _search(api, "O'zbekiston")
    assert "<mark>Ўзбекистон</mark>" in page["results"][0]["excerpt"]
    assert await _found(api, "Xorazm") == {"derby"}
    assert await _found(api, "ғалабага") == {"victory"}


async def test_place_and_currency_names_cross_languages_and_scripts(api: httpx.AsyncClient) -> None:
    assert await _found(api, "Kazakhstan") == {"visit"}  # "Президент Казахстана"
    assert await _found(api, "Қазақстан") == {"visit"}
    assert await _found(api, "Nur-Sultan") == {"visit", "envoy"}
    assert await _found(api, "tenge") == {"tenge"}
    page = await _search(api, "Kazakhstan")
    excerpts = {r["url"].rsplit("/", 1)[1]: r["excerpt"] for r in page["results"]}
    assert "<mark>Казахстана</mark>" in excerpts["visit"]


async def test_stress_marks_and_look_alike_letters_do_not_hide_a_word(
    api: httpx.AsyncClient,
) -> None:
    for spelling in ("Ташкент", "Ташке́нт", "замок", "за̀мок"):
        assert "stress" in await _found(api, spelling), spelling
    for spelling in ("Россия", "Pоссия", "Кыргызстан", "Kыргызcтан", "China"):
        assert "spam" in await _found(api, spelling), spelling
    assert "visit" in await _found(api, "Kaзaхcтан")  # "Президент Казахстана"


async def test_kazakh_is_found_in_every_latin_alphabet(api: httpx.AsyncClient) -> None:
    # 2021, 2018 (acute), 2017 (apostrophe), informal ASCII
    for spelling in ("Baiqoñyr", "Baıqońyr", "Bai'qon'yr", "Bayqongyr"):
        assert "baikonur" in await _found(api, spelling), spelling
    for spelling in ("auyly", "aýyly", "ay'yly", "Şymkent", "S'ymkent", "Shymkent"):
        assert "baikonur" in await _found(api, spelling), spelling
    for spelling in ("Ūlttyq", "Ulttyq", "Ulttyk"):
        assert "tenge" in await _found(api, spelling), spelling
    assert "derby" in await _found(api, "O'zbekiston")


async def test_a_typo_finds_near_titles_and_the_page_offers_the_correction(
    api: httpx.AsyncClient,
) -> None:
    page = await _search(api, "Плесецкая")
    assert page["broadened"] is True
    assert [r["url"].rsplit("/", 1)[1] for r in page["results"]] == ["ballet"]
    assert page["did_you_mean"] == "плисецкая"
    html = (await api.get("/", params={"q": "Плесецкая"})).text
    assert "Did you mean" in html
    assert "q=%D0%BF%D0%BB%D0%B8%D1%81%D0%B5%D1%86%D0%BA%D0%B0%D1%8F" in html
    exact = await _search(api, "Плисецкая")
    assert exact["broadened"] is False
    assert exact["did_you_mean"] is None


async def test_readiness_says_which_language_features_are_active(api: httpx.AsyncClient) -> None:
    language = (await api.get("/readyz")).json()["details"]["language"]
    assert language["word_forms"] == ["english", "russian"]
    assert language["place_names"] > 20
    assert language["unanalysed_articles"] == 0
