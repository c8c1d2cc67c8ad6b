"""`caravan extract` on files and standard input: one JSON object per page, in order."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from services.cli import main as cli_main
from services.ingest.extract_command import run
from shared.fetcher import FetchPolicy
from tests.conftest import REALDATA

FIELDS = {
    "source",
    "title",
    "text",
    "authors",
    "date",
    "language",
    "site_name",
    "canonical_url",
    "path",
}


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_files_and_stdin_give_one_record_each_in_order() -> None:
    out = io.StringIO()
    page = REALDATA / "article-lsm-lv.html"
    stdin = io.BytesIO((REALDATA / "article-heraldsun.html").read_bytes())
    status = run([str(page), "-"], FetchPolicy(user_agent="test"), stdin, out)
    lsm, herald = _lines(out)
    assert status == 0
    assert set(lsm) == set(herald) == FIELDS
    assert (lsm["source"], herald["source"]) == (str(page), "-")
    assert lsm["title"] == "Norvēģijā pēc zemes nogruvuma pieci bojāgājušie"
    assert lsm["language"] == "lv"
    assert "piekto bojāgājušo" in str(lsm["text"])
    assert herald["title"] == "Angry media won’t buckle over new surveillance laws"
    assert "Laurie Oakes" in json.dumps(herald["authors"])
    assert lsm["path"]


def test_a_page_without_an_article_and_a_missing_file_are_reported_not_fatal(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "home.html"
    empty.write_text("<html><body><nav><a href='/a'>A</a></nav></body></html>")
    out = io.StringIO()
    sources = [str(empty), str(tmp_path / "missing.html"), str(REALDATA / "article-lsm-lv.html")]
    status = run(sources, FetchPolicy(user_agent="test"), io.BytesIO(), out)
    no_article, missing, article = _lines(out)
    assert status == 1
    assert "no article text" in str(no_article["error"])
    assert "missing.html" in str(missing["error"])
    assert article["title"]


def test_the_command_line_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    html = (REALDATA / "article-lsm-lv.html").read_bytes()

    class Stdin(io.StringIO):
        buffer = io.BytesIO(html)

    monkeypatch.setattr("sys.stdin", Stdin())
    cli_main(["extract", "-"])
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["title"] == "Norvēģijā pēc zemes nogruvuma pieci bojāgājušie"
