"""`caravan extract` on a URL: through the guarded fetcher, like ingest."""

from __future__ import annotations

import io
import json

from services.ingest.extract_command import run
from shared.fetcher import FetchPolicy
from shared.ssrf import AllowList
from tests.conftest import REALDATA
from tests.loopback import LoopbackServer, static


def _policy(allow: str) -> FetchPolicy:
    return FetchPolicy(user_agent="test", host_delay=0, backoff_max=2, allow=AllowList.parse(allow))


def _records(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_url_is_fetched_and_extracted(web: LoopbackServer) -> None:
    web.routes["/news/landslide"] = static(
        (REALDATA / "article-lsm-lv.html").read_bytes(), "text/html; charset=utf-8"
    )
    out = io.StringIO()
    status = run([web.url("/news/landslide")], _policy("127.0.0.1"), io.BytesIO(), out)
    (record,) = _records(out)
    assert status == 0, record
    assert record["source"] == web.url("/news/landslide")
    assert record["title"] == "Norvēģijā pēc zemes nogruvuma pieci bojāgājušie"
    assert "/news/landslide" in web.paths()


def test_a_loopback_url_is_refused_without_the_allow_list(web: LoopbackServer) -> None:
    web.routes["/news/landslide"] = static(b"<html></html>", "text/html")
    out = io.StringIO()
    status = run([web.url("/news/landslide")], _policy(""), io.BytesIO(), out)
    (record,) = _records(out)
    assert status == 1
    assert "internal address" in str(record["error"])
    assert web.paths() == []
