"""The requests whose answers tests/contracts/test_query_responses.py holds to recorded bytes.

A wide set of `GET /api/search` requests (words in the corpus's four languages,
phrases, `OR`, exclusions, prefixes, misspellings that take the second try, every
filter, both sorts, pages, sizes, cursors followed and forged, and parameters that
are refused, one by one and together, as 422s or 400s) and the other endpoints
(articles, similar, suggest, the latest quotes, the Atom feed, the HTML pages and
the OpenAPI document itself), as raw request targets: the answers to them are the
contract the query service keeps whatever its code path (issue #27).
"""

from __future__ import annotations

import base64
import json
import random
from urllib.parse import quote, urlencode

from shared.events import ArticleEvent

# How a followed cursor is named in the record.
FOLLOW = "→ next_cursor"


def _cursor(data: object) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _search(params: list[tuple[str, object]] | dict[str, object]) -> str:
    items = params.items() if isinstance(params, dict) else params
    return "/api/search?" + urlencode([(k, str(v)) for k, v in items])


def _words(articles: list[ArticleEvent]) -> list[str]:
    words = [w.strip("«»\"'“”:,.!?()—") for a in articles for w in a.title.split()]
    return sorted({w for w in words if len(w) > 4})


def mixed_searches(articles: list[ArticleEvent], count: int = 140) -> list[str]:
    """Searches as readers send them (the bench's mix, with more filters and sizes)."""
    rng = random.Random(2027)  # reproducible test data
    words = _words(articles)
    sources = sorted({a.source for a in articles})
    countries = sorted({c for a in articles for c in a.countries})
    tags = sorted({t for a in articles for t in a.tags})
    languages = sorted({a.language for a in articles if a.language})
    out = []
    for _ in range(count):
        first, second = rng.choice(words), rng.choice(words)
        params: list[tuple[str, object]] = [
            (
                "q",
                rng.choice(
                    [
                        first,
                        f"{first} {second}",
                        f'"{first} {second}"',
                        f"{first} OR {second}",
                        f"{first} -{second}",
                        "",
                        first[:5],
                        f"{first[:4]}*",
                        first[:-1] + "x",
                    ]
                ),
            )
        ]
        if rng.random() < 0.3:
            params.append(("source", rng.choice(sources)))
        if rng.random() < 0.15:
            params.append(("country", rng.choice(countries)))
        if rng.random() < 0.1 and tags:
            params.append(("tag", rng.choice(tags)))
        if rng.random() < 0.15:
            params.append(("language", rng.choice(languages)))
        if rng.random() < 0.2:
            params.append(("sort", rng.choice(["newest", "relevance"])))
        if rng.random() < 0.2:
            params.append(
                ("date_from", f"{rng.choice([2023, 2024, 2025])}-0{rng.randint(1, 9)}-01")
            )
        if rng.random() < 0.1:
            params.append(("date_to", f"{rng.choice([2024, 2025, 2026])}-1{rng.randint(0, 2)}-28"))
        if rng.random() < 0.6:
            params.append(("page", rng.choice([1, 1, 2, 3, 5])))
        if rng.random() < 0.3:
            params.append(("size", rng.choice([1, 3, 10, 20, 50])))
        out.append(_search(params))
    return out


WRITTEN_SEARCHES = [
    # Words, phrases and operators in the corpus's languages and scripts.
    "/api/search",
    "/api/search?q=",
    "/api/search?q=+++",
    "/api/search?q=Плисецкая",
    "/api/search?q=плисецкой",
    "/api/search?q=%22великая+балерина%22",
    "/api/search?q=%22балерина+великая%22",
    "/api/search?q=балерина+великая",
    "/api/search?q=Плисецкая+-балерина",
    "/api/search?q=Java+OR+Microsoft+OR+Scrum",
    "/api/search?q=Java+or+Microsoft",
    "/api/search?q=Java+%7C+Microsoft",
    "/api/search?q=Java+OR+Microsoft&sort=newest&size=50",
    "/api/search?q=Toshkent",
    "/api/search?q=Тошкент",
    "/api/search?q=Ташкент",
    "/api/search?q=O%CA%BBzbekiston",
    "/api/search?q=Ўзбекистон",
    "/api/search?q=Ozbekiston",
    "/api/search?q=Қазақстан",
    "/api/search?q=Brasil+-Lula",
    "/api/search?q=Bundesregierung",
    "/api/search?q=Sanktionen~1",
    "/api/search?q=Micro*",
    "/api/search?q=%28Java+%7C+Python%29+-Microsoft",
    "/api/search?q=%22unterminated+phrase",
    "/api/search?q=%22%22",
    "/api/search?q=-",
    "/api/search?q=OR",
    "/api/search?q=%7C%7C%7C",
    "/api/search?q=%5C%5C",
    "/api/search?q=title%3Ax",
    "/api/search?q=%F0%9F%8E%AA",
    "/api/search?q=%00",
    "/api/search?q=%FF%FE",
    "/api/search?q=%ZZ",
    "/api/search?q=a+OR+o+OR+%D0%B8&size=5",
    # Misspellings: the second, near-spelling try, did_you_mean and broadened.
    "/api/search?q=Plisetskaya",
    "/api/search?q=Плесецкая",
    "/api/search?q=Mircosoft",
    "/api/search?q=Microsfot+Java",
    "/api/search?q=Bobur+Arenada",
    "/api/search?q=qwertyuiopasdf",
    "/api/search?q=zzzz+yyyy",
    # Filters, alone and together.
    "/api/search?source=meduza.io",
    "/api/search?source=meduza.io&source=heise.de&size=50",
    "/api/search?country=BR",
    "/api/search?country=UZ&country=RU&sort=newest",
    "/api/search?tag=sport",
    "/api/search?language=ru&language=de",
    "/api/search?language=uz",
    "/api/search?source=nowhere.example",
    "/api/search?date_from=2025-03-01",
    "/api/search?date_to=2024-01-31",
    "/api/search?date_from=2024-01-01&date_to=2024-12-31&sort=newest",
    "/api/search?date_from=2025-03-02&date_to=2025-03-02",
    "/api/search?q=Java&source=heise.de&country=DE&language=de&date_from=2020-01-01",
    # Sorts, pages and sizes.
    "/api/search?sort=relevance",
    "/api/search?sort=newest",
    "/api/search?q=Java&sort=newest",
    "/api/search?page=2",
    "/api/search?page=3&size=7",
    "/api/search?page=1000",
    "/api/search?page=1000&size=10",
    "/api/search?page=200&size=50",
    "/api/search?size=1",
    "/api/search?size=50",
    "/api/search?page=1&page=2",
    "/api/search?q=Java&q=Microsoft",
    "/api/search?size=5&size=6",
    "/api/search?sort=newest&sort=relevance&q=Java",
    "/api/search?page=01",
    "/api/search?unknown=1&q=Java",
    "/api/search?q=Java&lang=ru",
    # Cursors, forged or of the wrong kind: 400s.
    "/api/search?cursor=bm90IGEgY3Vyc29y",
    "/api/search?cursor=",
    "/api/search?cursor=%3D%3D%3D",
    "/api/search?cursor=" + _cursor({"o": 0, "s": "newest", "a": [1, 2, "x"]}),
    "/api/search?cursor=" + _cursor({"o": True, "s": "newest", "a": [1, 2, "x"]}),
    "/api/search?cursor=" + _cursor({"o": 5, "s": "oldest", "a": [1, 2, "x"]}),
    "/api/search?cursor=" + _cursor({"o": 5, "s": "newest", "a": [1, 2]}),
    "/api/search?cursor=" + _cursor({"o": 5, "s": "newest", "a": [1, 2, "x"], "x": 1}),
    "/api/search?cursor=" + _cursor({"o": 5, "s": "newest", "a": [[1], 2, "x"]}),
    "/api/search?cursor=" + _cursor([1, 2, 3]),
    "/api/search?cursor=" + quote(base64.urlsafe_b64encode(b"[" * 5000).decode()),
    "/api/search?q=Java&cursor=" + _cursor({"o": 11, "s": "newest", "a": [1, 2, "x"]}),
    # Cursors the service could have made: deep offsets, both sorts.
    "/api/search?cursor="
    + _cursor({"o": 20000, "s": "newest", "a": [1700000000000, 1790000000000, "https://x"]}),
    "/api/search?q=Java&cursor="
    + _cursor({"o": 11, "s": "relevance", "a": [1.5, 1700000000000, "https://x"]}),
    "/api/search?q=Java&sort=newest&cursor="
    + _cursor({"o": 3, "s": "newest", "a": [None, None, "https://bench.invalid/"]}),
    # Refused: 400s from the checks of the parameters together.
    "/api/search?page=1001",
    "/api/search?page=5000&size=10",
    "/api/search?page=201&size=50",
    "/api/search?date_from=2025-03-02&date_to=2025-03-01",
    # Refused: 422s from the checks of each parameter.
    "/api/search?page=0",
    "/api/search?page=-1",
    "/api/search?page=two",
    "/api/search?page=",
    "/api/search?page=1.5",
    "/api/search?page=1.0",
    "/api/search?page=+1",
    "/api/search?page=%201",
    "/api/search?page=1e3",
    "/api/search?page=99999999999999999999999",
    "/api/search?size=0",
    "/api/search?size=51",
    "/api/search?size=ten",
    "/api/search?size=",
    "/api/search?sort=random",
    "/api/search?sort=",
    "/api/search?sort=Newest",
    "/api/search?date_from=2025-13-01",
    "/api/search?date_from=2025-1-5",
    "/api/search?date_from=20250105",
    "/api/search?date_from=1700000000",
    "/api/search?date_from=2025-03-01T00:00:00",
    "/api/search?date_from=",
    "/api/search?date_to=yesterday",
    "/api/search?q=" + "x" * 500,
    "/api/search?q=" + "x" * 501,
    "/api/search?q=" + "Ж" * 501,
    "/api/search?cursor=" + "x" * 2001,
    "/api/search?" + "&".join(["source=s"] * 20),
    "/api/search?" + "&".join(["source=s"] * 21),
    "/api/search?" + "&".join(["country=c"] * 21),
    "/api/search?" + "&".join(["tag=t"] * 21),
    "/api/search?" + "&".join(["language=l"] * 21),
    "/api/search?page=0&size=0&sort=x&date_from=x&date_to=y",
    "/api/search?page=two&q=" + "x" * 501,
]

OTHER_REQUESTS = [
    "/healthz",
    "/openapi.json",
    "/api/suggest",
    "/api/suggest?q=",
    "/api/suggest?q=+",
    "/api/suggest?q=Сто+лет",
    "/api/suggest?q=java&size=10",
    "/api/suggest?q=Mic",
    "/api/suggest?q=" + "x" * 101,
    "/api/suggest?q=a&size=11",
    "/api/suggest?q=a&size=0",
    "/api/quotes/latest",
    "/api/articles/" + "0" * 32,
    "/api/articles/" + "0" * 32 + "/similar",
    "/api/articles/not-an-id",
    "/api/articles/not-an-id/similar",
    "/api/search.atom?q=Java",
    "/api/search.atom?source=meduza.io&size=5",
    "/api/search.atom?q=Java&page=0",
    "/",
    "/?q=Java",
    "/?q=Плисецкая&lang=ru",
    "/?q=Mircosoft",
    "/?source=meduza.io&page=2",
    "/?page=two",
    "/?page=5000",
    "/articles/" + "0" * 32,
]

# Paths built from the corpus: each article of the first hits, with its similar ones.
ARTICLE_PATHS = (
    "/api/articles/{id}",
    "/api/articles/{id}/similar",
    "/api/articles/{id}/similar?size=20",
    "/api/articles/{id}/similar?size=21",
    "/articles/{id}",
)

# Searches whose next_cursor is followed, three pages deep.
FOLLOWED = [
    "/api/search?size=7",
    "/api/search?q=Java+OR+Microsoft&size=3",
    "/api/search?q=a+OR+o+OR+%D0%B8&size=5&sort=newest",
    "/api/search?source=meduza.io&size=4",
    "/api/search?q=Ташкент&size=2",
]
