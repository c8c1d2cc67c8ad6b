"""Settings are read once, at the entry point: importing builds nothing from the
environment, and a bad setting is one clear line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

BROKEN = {**os.environ, "CARAVAN_STREAM_MAXLEN": "not-a-number"}


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=BROKEN, cwd=REPO, capture_output=True, text=True, check=False
    )


def test_importing_every_entry_point_reads_no_settings() -> None:
    imported = _python(
        "-c",
        "import services.cli, services.specs, services.ingest.app, services.ratefeed.app, "
        "services.indexer.app, services.query.app",
    )
    assert imported.returncode == 0, imported.stderr


def test_a_bad_setting_is_reported_once_in_one_line_per_field() -> None:
    run = _python("-m", "services", "groups", "list")
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "caravan groups: settings: CARAVAN_STREAM_MAXLEN: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]
    assert "Traceback" not in run.stderr
