"""Schema-driven fuzz: every operation of the OpenAPI document (and the search page,
which takes the search parameters), with values its schema allows and values it does
not, against the running service. No answer may be a 5xx; every /api answer is JSON.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.settings import Settings
from tests.e2e.conftest import QueryService

pytestmark = pytest.mark.e2e

# Any text a URL can carry: lone surrogates cannot be encoded as UTF-8 at all.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
SYNTAX = st.lists(
    st.sampled_from(
        [
            '"',
            "-",
            "|",
            "+",
            "OR",
            "*",
            "~2",
            "(",
            ")",
            "\\",
            " ",
            "Java",
            "Плисецкая",
            "title:x",
            "🎪",
            "\x00",
        ]
    ),
    max_size=12,
).map("".join)


def _schema_values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema accepts, near its edges."""
    if "anyOf" in schema:
        return st.one_of([_schema_values(s) for s in schema["anyOf"]])
    kind = schema.get("type")
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if kind == "integer":
        low, high = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)
        return st.integers(low, high) | st.sampled_from([low, high])
    if kind == "string" and schema.get("format") == "date":
        return st.dates().map(lambda d: d.isoformat())
    if kind == "string" and "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True)
    if kind == "string":
        return TEXT | SYNTAX
    if kind == "array":
        return st.lists(_schema_values(schema["items"]), max_size=3)
    return st.none()


def _any_values() -> st.SearchStrategy[Any]:
    """Values the schema may refuse: those must be 4xx, not 5xx."""
    return (
        TEXT
        | SYNTAX
        | st.integers()
        | st.sampled_from(["", "-1", "1e9", "9" * 30])
        | st.lists(TEXT, max_size=3)
    )


def _operations() -> list[tuple[str, list[dict[str, Any]]]]:
    from services.query.app import create_app  # noqa: PLC0415 — read the document as served

    document = create_app(Settings.from_env()).openapi()
    operations = [
        (path, op.get("parameters", []))
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method == "get"
    ]
    # The search page takes the same parameters as the search API.
    return [*operations, ("/", document["paths"]["/api/search"]["get"]["parameters"])]


OPERATIONS = _operations()


@st.composite
def _request(draw: st.DrawFn, path: str, parameters: list[dict[str, Any]]) -> tuple[str, Any]:
    query: list[tuple[str, Any]] = []
    url = path
    for parameter in parameters:
        valid = draw(st.booleans()) or parameter["in"] == "path"
        value = draw(_schema_values(parameter["schema"]) if valid else _any_values())
        if parameter["in"] == "path":
            url = url.replace("{" + parameter["name"] + "}", quote(str(value), safe="") or "x")
        elif draw(st.booleans()) or parameter.get("required"):
            values = value if isinstance(value, list) else [value]
            query += [(parameter["name"], v) for v in values]
    return url, query


def test_no_request_the_schema_describes_gets_a_server_error(query_service: QueryService) -> None:
    # One service for every operation: starting it is most of this test's time.
    with httpx.Client(base_url=query_service.url) as client:
        for path, parameters in OPERATIONS:

            @settings(
                max_examples=60 if parameters else 3,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture],
            )
            @given(_request(path, parameters))
            def check(request: tuple[str, Any]) -> None:
                url, query = request
                response = client.get(url, params=query)
                assert response.status_code < 500, (url, query, response.text)
                if url.startswith("/api/"):
                    # Feeds answer as Atom, and everything else (their errors too) as JSON.
                    feed = url.endswith(".atom") and response.status_code == 200
                    expected = "application/atom+xml" if feed else "application/json"
                    assert response.headers["content-type"].startswith(expected)

            check()
