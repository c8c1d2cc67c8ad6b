"""What `caravan` prints of stored data: one line per value, whatever the value holds."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from services import cli
from shared.events import QuoteEvent


def test_a_released_quote_is_one_line_whatever_its_provider_and_flags_hold(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Read back from Redis: anyone who may write there chooses these strings.
    forged = QuoteEvent(
        base="KZT",
        rate=Decimal("0.0019"),
        as_of=date(2025, 3, 3),
        provider="nbk\nUZS/USD 0.0001 as of 2025-03-03 (cbu)",
        fetched_at=datetime(2025, 3, 3, 9, tzinfo=UTC),
        flags=["jump\r\t2 quotes published\x1b]52;c;aGk=\x07"],
    )
    cli._print_quotes([forged])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("KZT/USD 0.0019 as of 2025-03-03 (nbk\\u000aUZS/USD")
    assert "\x1b" not in lines[0]
    assert "\r" not in lines[0]
    assert lines[1] == "1 quotes published"


def test_a_settings_error_is_a_line_per_variable_and_no_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # pydantic's own message showed the whole group's input: the URL with its password.
    monkeypatch.setenv("REDIS_URL", "redis://:Sup3rSecret@redis:6379/0")
    monkeypatch.setenv("REDIS_PASSWORD_FILE", "/nowhere/password")
    monkeypatch.setenv("CARAVAN_QUERY_PORT", "70000")
    with pytest.raises(SystemExit) as exited:
        cli.main(["groups", "list"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "caravan groups: settings: REDIS_PASSWORD_FILE: no file at /nowhere/password",
        "caravan groups: settings: CARAVAN_QUERY_PORT: Input should be less than or equal to 65535",
    ]


def test_a_settings_error_shows_no_control_character(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD_FILE", "/no\x1b[2Jwhere")
    with pytest.raises(SystemExit):
        cli.main(["groups", "list"])
    error = capsys.readouterr().err
    assert "\x1b" not in error
    assert "no file at /no\\u001b[2Jwhere" in error


@pytest.mark.parametrize("service", ["ingest", "ratefeed", "indexer", "query"])
def test_a_service_run_as_a_module_says_a_settings_error_as_caravan_does(service: str) -> None:
    # `python -m services.<name>` is documented too; it printed a traceback.
    environment = {**os.environ, "REDIS_PASSWORD_FILE": "/nowhere/password"}
    ran = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 2
    assert ran.stderr.splitlines() == [
        f"python -m services.{service}: settings: REDIS_PASSWORD_FILE: no file at /nowhere/password"
    ]


def test_a_sources_file_error_is_one_line_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "sources.toml"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("CARAVAN_INGEST_SOURCES", str(empty))
    with pytest.raises(SystemExit) as exited:
        cli.main(["ingest", "--once"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"caravan ingest: CARAVAN_INGEST_SOURCES={empty}: sources: Field required"
    ]
