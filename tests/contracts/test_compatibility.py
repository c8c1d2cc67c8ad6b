"""Event contracts stay readable by consumers of the schema_version they were written for."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from services.specs import event_schemas
from shared.events import EVENT_MODELS
from tests.contracts.compat import breaking_changes

BASELINES = Path(__file__).parent


@pytest.mark.parametrize("name", sorted(EVENT_MODELS))
def test_no_breaking_change_without_a_schema_version_bump(name: str) -> None:
    version = EVENT_MODELS[name].model_fields["schema_version"].default
    baseline = BASELINES / f"v{version}" / f"{name}.json"
    assert baseline.exists(), (
        f"{name} is at schema_version {version}: freeze its schema as {baseline} "
        "(and keep the older ones)"
    )
    problems = breaking_changes(json.loads(baseline.read_text()), event_schemas()[name])
    assert problems == [], f"{name} breaks v{version} consumers, bump schema_version: {problems}"


def _quote_schema() -> dict[str, object]:
    return json.loads((BASELINES / "v1" / "QuoteEvent.json").read_text())  # type: ignore[no-any-return]


def test_the_checker_sees_a_removed_field() -> None:
    old = _quote_schema()
    new = copy.deepcopy(old)
    del new["properties"]["provider"]  # type: ignore[attr-defined]
    assert breaking_changes(old, new) == ["provider: removed"]


def test_the_checker_sees_a_retyped_field() -> None:
    old = _quote_schema()
    new = copy.deepcopy(old)
    new["properties"]["rate"] = {"type": "number"}  # type: ignore[index]
    assert breaking_changes(old, new) == ["rate: schema changed"]


def test_the_checker_sees_a_field_that_became_optional() -> None:
    old = _quote_schema()
    new = copy.deepcopy(old)
    new["required"].remove("as_of")  # type: ignore[attr-defined]
    assert breaking_changes(old, new) == ["as_of: no longer always present"]


def test_the_checker_accepts_additions_and_new_wording() -> None:
    old = _quote_schema()
    new = copy.deepcopy(old)
    new["properties"]["flags"] = {"type": "array", "items": {"type": "string"}}  # type: ignore[index]
    new["properties"]["rate"]["description"] = "now documented"  # type: ignore[index]
    assert breaking_changes(old, new) == []
