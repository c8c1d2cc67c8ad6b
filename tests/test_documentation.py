"""The documents people read stay true to the code."""

from __future__ import annotations

from pydantic_settings import BaseSettings

from services.specs import write_documents
from shared import settings
from shared.settings import Settings
from tests.conftest import REPO


def test_generated_contract_documents_are_up_to_date() -> None:
    stale = write_documents(Settings.from_env(), REPO / "docs", check=True)
    assert stale == [], f"run `caravan docs` and commit: {stale}"


def _environment_variables() -> set[str]:
    names = set()
    for value in vars(settings).values():
        if isinstance(value, type) and issubclass(value, BaseSettings) and value.model_fields:
            prefix = value.model_config.get("env_prefix", "")
            names |= {f"{prefix}{field}".upper() for field in value.model_fields}
    return names


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    variables = _environment_variables()

    assert "REDIS_URL" in variables
    assert "CARAVAN_INDEXER_CLAIM_IDLE_MS" in variables
    undocumented = sorted(v for v in variables if f"`{v}`" not in readme)
    assert undocumented == []
