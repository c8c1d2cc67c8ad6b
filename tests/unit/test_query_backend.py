"""The query backend starts whatever the cluster says to its first probe."""

from __future__ import annotations

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders
from elasticsearch import AsyncElasticsearch, AuthenticationException

from services.query import backend as backend_module
from services.query.backend import Backend


async def test_a_refused_credential_at_start_up_is_probed_again_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers: list[bool | Exception] = [
        AuthenticationException(
            message="api key is expired",
            body={},
            meta=ApiResponseMeta(
                status=401,
                http_version="1.1",
                headers=HttpHeaders(),
                duration=0.0,
                node=None,  # type: ignore[arg-type]
            ),
        ),
        True,
    ]

    async def probe(_: AsyncElasticsearch) -> bool:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(backend_module, "has_language_analyzers", probe)
    backend = Backend(
        AsyncElasticsearch("http://127.0.0.1:1"),
        "articles",
        "quotes",
        exact_total_up_to=10_000,
        cache_seconds=0,
        rate_digits=10,
    )

    assert await backend.languages() is False
    assert backend.analyzers == "unknown"
    assert await backend.languages() is True  # the key was fixed: probed again
    await backend.es.close()
