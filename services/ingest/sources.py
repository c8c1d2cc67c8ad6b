"""The sources config: which feeds to poll, how often, and how to tag what they bring."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    url: str = Field(min_length=1, description="http(s) URL, or a path relative to the config file")
    kind: Literal["feed"] = "feed"
    interval: float = Field(default=900.0, gt=0, description="seconds between polls")
    tags: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    language: str | None = None


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[Source]


def load_sources(path: Path) -> list[Source]:
    """Read a TOML file of `[[sources]]` tables; local paths become absolute."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    parsed = SourcesFile.model_validate(data).sources
    return [_resolve(source, path.parent) for source in parsed]


def _resolve(source: Source, base: Path) -> Source:
    if "://" in source.url:
        return source
    return source.model_copy(update={"url": str((base / source.url).resolve())})
