"""What every answer of the query service carries, whichever path writes it: the short
path of a search, a route, an error handler, the rate limit, the server-error
middleware, the live ticker's stream, the page's own files."""

from __future__ import annotations

import httpx
import pytest
from elastic_transport import ConnectionError as TransportConnectionError

from tests.querynode import Node, article, query_over

KEPT = "a" * 32
MISSING = "0" * 32


def _nosniff(response: httpx.Response) -> bool:
    return response.headers.get_list("x-content-type-options") == ["nosniff"]


async def test_every_answer_is_nosniff(monkeypatch: pytest.MonkeyPatch) -> None:
    async with query_over(Node(article(KEPT)), monkeypatch, live_max_seconds=0.1) as client:
        answers = {
            "search, short path": await client.get("/api/search"),
            "search, route": await client.get("/api/search", params={"page": "01"}),
            "search page": await client.get("/"),
            "article": await client.get(f"/api/articles/{KEPT}"),
            "feed": await client.get("/api/search.atom"),
            "unknown article": await client.get(f"/api/articles/{MISSING}"),
            "unknown article page": await client.get(f"/articles/{MISSING}"),
            "unknown address": await client.get("/nowhere"),
            "refused parameter": await client.get("/api/search", params={"size": "0"}),
            "refused page parameter": await client.get("/", params={"size": "0"}),
            "script": await client.get("/static/ticker.js"),
            "live ticker": await client.get("/api/quotes/stream"),
            "liveness": await client.get("/healthz"),
            "metrics": await client.get("/metrics"),
        }
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {
        **dict.fromkeys(answers, 200),
        "unknown article": 404,
        "unknown article page": 404,
        "unknown address": 404,
        "refused parameter": 422,
        "refused page parameter": 422,
    }
    assert answers["live ticker"].headers["content-type"].startswith("text/event-stream")
    assert [name for name, response in answers.items() if not _nosniff(response)] == []


async def test_the_rate_limits_refusal_is_nosniff(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node(article(KEPT))
    async with query_over(node, monkeypatch, rate_limit=0.001, rate_burst=1) as client:
        assert (await client.get("/api/search")).status_code == 200
        refused = await client.get("/api/search")
    assert refused.status_code == 429
    assert _nosniff(refused)


@pytest.mark.parametrize(
    ("error", "status"), [(TransportConnectionError("refused"), 503), (RuntimeError("bug"), 500)]
)
async def test_failures_are_nosniff(
    monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    async with query_over(Node(error=error), monkeypatch) as client:
        answers = [await client.get(target) for target in ("/api/search", "/")]
    assert [answer.status_code for answer in answers] == [status, status]
    assert all(_nosniff(answer) for answer in answers)


PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


async def test_pages_say_what_they_may_load_and_what_a_link_tells(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with query_over(Node(article(KEPT)), monkeypatch) as client:
        pages = {
            "search": await client.get("/", params={"q": "caravan"}),
            "article": await client.get(f"/articles/{KEPT}"),
            "missing": await client.get(f"/articles/{MISSING}"),
            "invalid": await client.get("/", params={"page": "two"}),
        }
        others = [await client.get(target) for target in ("/api/search", "/docs")]
    assert {name: page.status_code for name, page in pages.items()} == {
        "search": 200,
        "article": 200,
        "missing": 404,
        "invalid": 422,
    }
    for page in pages.values():
        assert page.headers["content-security-policy"] == PAGE_POLICY
        assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    # The API's answers load nothing; the OpenAPI page loads its viewer from elsewhere.
    assert all("content-security-policy" not in other.headers for other in others)


async def test_the_page_while_elasticsearch_is_away_has_the_policy_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with query_over(Node(error=TransportConnectionError("refused")), monkeypatch) as client:
        page = await client.get("/")
    assert page.status_code == 503
    assert page.headers["content-security-policy"] == PAGE_POLICY
