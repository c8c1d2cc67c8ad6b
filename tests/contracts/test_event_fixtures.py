"""The sample events other teams test against are what the published schemas say.

docs/examples/events/valid/ holds real events (read off the streams of a sample
run); invalid/ holds the same events, each with one defect its name tells.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from services.indexer.decode import Invalid, decode_entry
from shared.consumer import Entry
from shared.events import EVENT_MODELS
from shared.index import IndexNames
from shared.settings import CommonSettings
from shared.streams import DATA_FIELD, Streams
from tests.conftest import REPO

FIXTURES = REPO / "docs" / "examples" / "events"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

# jsonschema checks date-time only with an optional extra installed; the rule is short.
_FORMATS = FormatChecker()
_FORMATS.checks("date-time")(
    lambda value: not isinstance(value, str) or _RFC3339.match(value) is not None
)


def _validator(event_type: str) -> Draft202012Validator:
    schema = json.loads((REPO / "docs" / "schemas" / f"{event_type}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_FORMATS)


def _fixtures(kind: str) -> list[Path]:
    return sorted((FIXTURES / kind).glob("*.json"))


def _load(path: Path) -> tuple[str, Any]:
    return path.stem.split("-", 1)[0], json.loads(path.read_text(encoding="utf-8"))


def test_there_is_a_valid_fixture_of_every_event() -> None:
    assert {path.stem for path in _fixtures("valid")} == set(EVENT_MODELS)


@pytest.mark.parametrize("path", _fixtures("valid"), ids=lambda p: p.stem)
def test_valid_fixtures_pass_the_schema_and_the_model(path: Path) -> None:
    event_type, event = _load(path)
    errors = [error.message for error in _validator(event_type).iter_errors(event)]
    assert errors == []
    EVENT_MODELS[event_type].model_validate_json(path.read_bytes())


@pytest.mark.parametrize("path", _fixtures("invalid"), ids=lambda p: p.stem)
def test_invalid_fixtures_fail_the_schema(path: Path) -> None:
    event_type, event = _load(path)
    assert list(_validator(event_type).iter_errors(event)), f"{path.name} passes the schema"


# The indexer computes an event's key from its canonical URL, as its producer did:
# an event without one loses nothing, and is read.
COMPUTED_BY_THE_READER = {"ArticleEvent-without-idempotency_key"}


@pytest.mark.parametrize(
    "path",
    [p for p in _fixtures("invalid") if p.stem.startswith(("ArticleEvent", "QuoteEvent"))],
    ids=lambda p: p.stem,
)
def test_the_indexer_refuses_what_it_would_otherwise_alter(path: Path) -> None:
    # Indexed before: a rate as a JSON number (its digits lost to a float on the way),
    # and an event without an event_id (a new one made up at every read).
    streams, names = Streams(CommonSettings(stream_prefix="t:")), IndexNames("t-")
    stream = streams.articles if path.stem.startswith("Article") else streams.quotes
    entry = Entry(stream, "1-0", {DATA_FIELD: path.read_bytes()})
    decoded = decode_entry(entry, streams, names)
    assert isinstance(decoded, Invalid) is (path.stem not in COMPUTED_BY_THE_READER)
