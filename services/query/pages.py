"""The search page and the article page: server-rendered HTML, usable without JavaScript.

Links carry the whole state in the query string (words, filters, page or cursor,
and the language when the reader chose one), so every view can be bookmarked,
shared and followed with the keyboard. The scripts update the rate ticker live
and suggest titles; without them the ticker is as rendered and the box a plain one.
"""

# No `from __future__ import annotations`: FastAPI reads these signatures at run time,
# and their Depends/Query markers refer to values local to the router factories.

from collections import Counter
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, tzinfo
from functools import partial
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from services.query.api import (
    FILTERS,
    MAX_CURSOR_LENGTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    SearchParams,
    search_params_dependency,
)
from services.query.articles import ARTICLE_ID
from services.query.backend import ArticleNotFound, Backend
from services.query.languages import LANGUAGES, NAMES, Language, choose, content_language
from services.query.quotes import LatestQuotes
from services.query.search import RESULT_WINDOW, SearchPage, month_range
from shared.saved_searches import MAX_VALUE_CHARS

HERE = FilePath(__file__).parent
PAGER_SPAN = 2
# What the pages load, and nothing else: their script and style files from /static (no
# inline script or style, no image, no font), the title suggestions and the live
# ticker from this origin, the search form sent here. A title or excerpt that got
# markup past the escaping could run nothing, load nothing, and send nothing away.
# No frame may show a page, and no <base> may move its links.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# What a modern browser does unasked, said so for any other: a link followed to an
# article's own site tells it this origin only, never the page's address, which holds
# the reader's words and filters.
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def search_url(params: SearchParams, lang: str | None = None, **changes: Any) -> str:
    """The page URL for `params` with `changes`, in `lang` if given; a filter change
    starts again at page 1."""
    state = replace(params, **changes)
    query: dict[str, Any] = {
        "q": state.q,
        "source": state.source,
        "country": state.country,
        "tag": state.tag,
        "language": state.language,
        "date_from": state.date_from,
        "date_to": state.date_to,
        "sort": state.sort if state.sort != "relevance" else None,
        "size": state.size if state.size != 10 else None,
        "page": state.page if state.page != 1 and not state.cursor else None,
        "cursor": state.cursor,
        "lang": lang,
    }
    pairs = [(k, v) for k, v in query.items() if v not in (None, "", ())]
    return "/?" + urlencode(pairs, doseq=True) if pairs else "/"


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    current: bool = False


def toggle(values: tuple[str, ...], value: str) -> tuple[str, ...]:
    return tuple(v for v in values if v != value) if value in values else (*values, value)


def facet_links(
    params: SearchParams, page: SearchPage, language: Language
) -> dict[str, list[tuple[Link, int]]]:
    """Each facet value as a link that adds (or, when already chosen, removes) its filter,
    under the facet's name in `language`."""
    start: dict[str, Any] = {"page": 1, "cursor": None, "lang": language.carried}
    links: dict[str, list[tuple[Link, int]]] = {
        "facet_source": [],
        "facet_country": [],
        "facet_month": [],
    }
    for facet in page.facets.source:
        links["facet_source"].append(
            (
                Link(
                    facet.value,
                    search_url(params, source=toggle(params.source, facet.value), **start),
                    facet.value in params.source,
                ),
                facet.count,
            )
        )
    for facet in page.facets.country:
        links["facet_country"].append(
            (
                Link(
                    facet.value,
                    search_url(params, country=toggle(params.country, facet.value), **start),
                    facet.value in params.country,
                ),
                facet.count,
            )
        )
    for facet in page.facets.month:
        first, last = month_range(facet.value)
        chosen = (params.date_from, params.date_to) == (first, last)
        label = language.month(first)
        url = search_url(
            params, date_from=None if chosen else first, date_to=None if chosen else last, **start
        )
        links["facet_month"].append((Link(label, url, chosen), facet.count))
    return {str(language.text(name)): entries for name, entries in links.items() if entries}


def pager(params: SearchParams, page: SearchPage, language: Language) -> list[Link]:
    """Previous, nearby page numbers and next; past the 10,000-hit window, next is a cursor."""
    size = page.size
    in_window = RESULT_WINDOW // size
    last = min(in_window, -(-page.total // size)) if page.total else 1
    lang = language.carried
    links: list[Link] = []
    if 1 < page.page <= in_window + 1:
        links.append(
            Link(
                str(language.text("pager_previous")),
                search_url(params, lang, page=page.page - 1, cursor=None),
            )
        )
    for number in range(max(1, page.page - PAGER_SPAN), min(last, page.page + PAGER_SPAN) + 1):
        links.append(
            Link(
                language.number(number),
                search_url(params, lang, page=number, cursor=None),
                number == page.page,
            )
        )
    if page.next_cursor:
        following = page.page + 1
        url = (
            search_url(params, lang, page=following, cursor=None)
            if following <= in_window
            else search_url(params, lang, page=1, cursor=page.next_cursor)
        )
        links.append(Link(str(language.text("pager_next")), url))
    return links


# What a page's links carry of its address: the parameters the pages read, as many
# values as they take, each as long as they take it. 20,000 unknown parameters were
# copied into each of the five links: 200 ms of CPU and 700 KB a page.
_CARRIED = {f.name: MAX_VALUE_CHARS for f in fields(SearchParams)} | {
    "q": MAX_QUERY_LENGTH,
    "cursor": MAX_CURSOR_LENGTH,
}


def carried(query: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The parameters of a page's address its links keep (`lang` aside): of a filter,
    its first values; of any other, the last, which is the one the page reads."""
    kept: list[tuple[str, str]] = []
    counts: Counter[str] = Counter()
    last: dict[str, str] = {}
    for name, value in query:
        if len(value) > _CARRIED.get(name, -1):
            continue
        if name not in FILTERS:
            last[name] = value
        elif counts[name] < MAX_TERMS:
            counts[name] += 1
            kept.append((name, value))
    return kept + list(last.items())


def language_links(
    path: str, query: list[tuple[str, str]], current: Language
) -> list[tuple[str, Link]]:
    """The switch: each language the page speaks, with this page (`path` with what
    it reads of its `query`) in it."""
    kept = carried(query)
    return [
        (tag, Link(NAMES[tag], f"{path}?{urlencode([*kept, ('lang', tag)])}", tag == current.tag))
        for tag in LANGUAGES
    ]


# The explicit bidirectional controls (embeddings, overrides and isolates with their
# ends) dropped; the paragraph separators, which end every isolate, made spaces.
_BIDI_CONTROLS: dict[int, str | None] = {
    **dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)]),
    **dict.fromkeys([0x1C, 0x1D, 0x1E, 0x85, 0x2029], " "),
}


def isolated(text: str) -> str:
    """`text` for the tab's <title>, where no element can isolate it: its own bidi
    controls dropped (one unmatched end would close the isolate early) and the rest
    between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE, so that a stored title or a
    reader's words reorder only themselves, never the " – Caravan" after them."""
    return f"\u2068{text.translate(_BIDI_CONTROLS)}\u2069"


def local_day(value: str | None, zone: tzinfo) -> date | str | None:
    """The day a stored moment (`2026-12-06T21:30:00Z`) falls on in `zone`, the day its
    date filters and month facets count it in; anything else as it is."""
    try:
        moment = datetime.fromisoformat(value) if value else None
    except ValueError:
        return value
    if moment is None or moment.tzinfo is None:
        return value
    try:
        return moment.astimezone(zone).date()
    except OverflowError:  # 9999-12-31T22:00Z in UTC+5 (another writer's date)
        return moment.date()


def language_of(request: Request) -> Language:
    return choose(request.query_params.get("lang"), request.headers.get("accept-language"))


def problems(exc: RequestValidationError) -> list[str]:
    """`size: Input should be less than or equal to 50`: one line per refused parameter."""
    return [
        f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}"
        for error in exc.errors()
    ]


class PageRenderer:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        # The readers' calendar, the one the backend's date filters and facets follow.
        self.zone = ZoneInfo(backend.time_zone)
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.filters["day"] = partial(local_day, zone=self.zone)
        self.templates.env.filters["content_lang"] = content_language
        self.templates.env.filters["isolated"] = isolated

    def _respond(
        self,
        request: Request,
        name: str,
        context: dict[str, Any],
        status_code: int,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        language = language_of(request)
        return self.templates.TemplateResponse(
            request,
            name,
            {
                "lang": language,
                "languages": language_links(
                    request.url.path, request.query_params.multi_items(), language
                ),
                "today": datetime.now(self.zone).date(),
                **context,
            },
            status_code=status_code,
            # The same address answers in the language its Accept-Language asks for.
            headers={
                **PAGE_HEADERS,
                "Vary": "Accept-Language",
                "Content-Language": language.tag,
                **(headers or {}),
            },
        )

    async def render(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> HTMLResponse:
        quotes = await self.backend.latest_quotes()
        return self._respond(request, name, {"quotes": quotes, **context}, status_code)

    def unavailable(self, request: Request) -> HTMLResponse:
        """The page while Elasticsearch cannot be reached: no ticker, since it lives there too."""
        return self._respond(
            request,
            "unavailable.html",
            {"quotes": LatestQuotes(quotes=[], ticker=[])},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    async def invalid(self, request: Request, exc: RequestValidationError) -> HTMLResponse:
        """A page address with values that are not values (`?page=two`), for a person."""
        return await self.render(
            request, "invalid.html", {"problems": problems(exc)}, status_code=422
        )

    async def refused(self, request: Request, problem: str) -> HTMLResponse:
        """A search Elasticsearch refused (a 400 of its own), for a person."""
        return await self.render(request, "invalid.html", {"problems": [problem]}, status_code=400)


def pages_router(renderer: PageRenderer, max_page_size: int) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    backend, render = renderer.backend, renderer.render
    params_dependency = search_params_dependency(max_page_size)

    @router.get("/", response_class=HTMLResponse)
    async def search_page(
        request: Request, params: Annotated[SearchParams, Depends(params_dependency)]
    ) -> HTMLResponse:
        try:
            search = params.request()
        except ValueError as exc:
            return await render(
                request, "search.html", {"params": params, "error": str(exc)}, status_code=400
            )
        page = await backend.search(search)
        language = language_of(request)
        return await render(
            request,
            "search.html",
            {
                "params": params,
                "page": page,
                "facets": facet_links(params, page, language),
                "pager": pager(params, page, language),
                "did_you_mean_url": (
                    search_url(params, language.carried, q=page.did_you_mean, page=1, cursor=None)
                    if page.did_you_mean
                    else None
                ),
                "clear_url": search_url(
                    params,
                    language.carried,
                    source=(),
                    country=(),
                    tag=(),
                    language=(),
                    date_from=None,
                    date_to=None,
                    page=1,
                    cursor=None,
                ),
            },
        )

    @router.get("/articles/{article_id}", response_class=HTMLResponse)
    async def article_page(
        request: Request, article_id: Annotated[str, Path(pattern=ARTICLE_ID)]
    ) -> HTMLResponse:
        try:
            article = await backend.article(article_id)
        except ArticleNotFound:
            return await render(request, "missing.html", {}, status_code=404)
        similar = await backend.similar(article_id, 5)
        return await render(
            request,
            "article.html",
            {
                "article": article,
                "paragraphs": [p for p in article.body.split("\n") if p.strip()],
                # Many feeds repeat the summary as the body's first words: show it once.
                "summary": "" if article.body.startswith(article.summary) else article.summary,
                "similar": similar.results,
            },
        )

    return router
