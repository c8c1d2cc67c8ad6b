"""The judged corpus: every real sample feed item and page, and the central banks' names.

Sources (samples/realdata, the same files as /work/shared/realdata):

* the feed items of samples/sources.toml, read by the ingest service's own parser
  (Russian, Uzbek Latin, German, Portuguese);
* the six articles of the seed page (English, on Central Asia) and the Herald Sun
  and LSM articles;
* the currency names of the Central Bank of Uzbekistan's file in Russian, Uzbek
  Latin, Uzbek Cyrillic and English, one document each, and the Bank of Russia's
  and the National Bank of Kazakhstan's names (Russian);
* the Uzbek feed items once more in Cyrillic (`uzbek_to_cyrillic`): the samples
  have no Uzbek Cyrillic news, and readers write both.

Each document's id is its last URL segment (`cbu-USD-uz`), which the judgments name.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from bench.corpus import sample_articles
from shared.events import ArticleEvent, content_hash
from shared.language.scripts import uzbek_to_cyrillic

REPO = Path(__file__).resolve().parents[2]
REALDATA = REPO / "samples" / "realdata"
FETCHED = datetime(2026, 1, 1, tzinfo=UTC)
CBU_LANGUAGES = {"RU": "ru", "UZ": "uz", "UZC": "uz-Cyrl", "EN": "en"}


def _doc(
    doc_id: str, source: str, language: str, title: str, body: str = "", summary: str = ""
) -> ArticleEvent:
    url = f"https://relevance.invalid/{doc_id}"
    return ArticleEvent(
        source=source,
        url=url,
        canonical_url=url,
        title=title,
        summary=summary,
        body=body,
        language=language,
        fetched_at=FETCHED,
        content_hash=content_hash(title, body),
    )


def _feed_items() -> list[ArticleEvent]:
    docs = []
    counts: dict[str, int] = {}
    for item in sample_articles(REPO / "samples" / "sources.toml"):
        source = item.source.split(".")[0]
        n = counts[source] = counts.get(source, -1) + 1
        docs.append(
            _doc(
                f"{source}-{n}",
                item.source,
                item.language or "",
                item.title,
                item.body,
                item.summary,
            )
        )
        if item.language == "uz":
            docs.append(
                _doc(
                    f"{source}-{n}-cyrl",
                    item.source,
                    "uz-Cyrl",
                    uzbek_to_cyrillic(item.title),
                    uzbek_to_cyrillic(item.body),
                    uzbek_to_cyrillic(item.summary),
                )
            )
    return docs


def _seed_articles() -> list[ArticleEvent]:
    text = (REALDATA / "seed-page.txt").read_text(encoding="utf-8")
    blocks = text.split("Viewing results 1 - 6 of 9", 1)[1].strip().split("\n\n")
    docs = []
    for n in range(0, len(blocks) - 1, 2):
        docs.append(_doc(f"seed-{n // 2}", "seed", "en", blocks[n].strip(), blocks[n + 1]))
    return docs


def _pages() -> list[ArticleEvent]:
    herald = json.loads((REALDATA / "article-heraldsun.expected-metadata.json").read_text())
    lsm = (REALDATA / "article-lsm-lv.expected.txt").read_text(encoding="utf-8")
    return [
        _doc(
            "heraldsun-0",
            "heraldsun",
            "en",
            herald["title"].split("\n")[0].strip(),
            herald["excerpt"],
        ),
        _doc("lsm-0", "lsm", "lv", lsm.split(".")[0], lsm),
    ]


def _currency_names() -> list[ArticleEvent]:
    docs = []
    for row in json.loads((REALDATA / "cbu-uz-rates-2022-04-11.json").read_text()):
        for key, language in CBU_LANGUAGES.items():
            docs.append(
                _doc(
                    f"cbu-{row['Ccy']}-{language}",
                    "cbu.uz",
                    language,
                    row[f"CcyNm_{key}"],
                    f"{row['Ccy']} {row['Rate']} ({row['Date']})",
                )
            )
    cbr = (REALDATA / "cbr-xml-daily-2023-09-27.xml").read_text(encoding="utf-8")
    for code, name in re.findall(r"<CharCode>(\w+)</CharCode>.*?<Name>(.*?)</Name>", cbr, re.S):
        docs.append(_doc(f"cbr-{code}", "cbr.ru", "ru", name, code))
    for row in json.loads((REALDATA / "nbk-derived-rates-2023-11-18.json").read_text()):
        docs.append(
            _doc(
                f"nbk-{row['code']}",
                "nationalbank.kz",
                "ru",
                row["title"],
                f"{row['code']} {row['value']}",
            )
        )
    return docs


def corpus() -> list[ArticleEvent]:
    return [*_feed_items(), *_seed_articles(), *_pages(), *_currency_names()]


def doc_id(event: ArticleEvent) -> str:
    return str(event.canonical_url).rsplit("/", 1)[1]
