"""The sources config: which feeds to poll, how often, and how to tag what they bring."""

from __future__ import annotations

import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from services.ingest.kinds import Kind
from shared.configfiles import TimeZoneName, resolve_location


class Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    url: str = Field(min_length=1, description="http(s) URL, or a path relative to the config file")
    # None: recognised from the content at each poll (feed, sitemap or HTML page).
    kind: Kind | None = None
    interval: float = Field(default=900.0, gt=0, description="seconds between polls")
    tags: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    language: str | None = None
    timezone: TimeZoneName = Field(
        default="UTC",
        description="IANA zone of dates the source writes without an offset, e.g. Asia/Almaty",
    )
    max_items: int | None = Field(
        default=100,
        ge=1,
        description="articles read per poll at "
        "most; None (one-shot `caravan ingest --source`): all",
    )
    max_pages: int = Field(default=5, ge=1, description="listing pages followed per poll")
    sitemap_depth: int = Field(default=2, ge=0, description="sitemap index levels followed")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[Source]


def load_sources(path: Path) -> list[Source]:
    """Read a TOML file of `[[sources]]` tables; local paths become absolute."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    parsed = SourcesFile.model_validate(data).sources
    return [
        source.model_copy(update={"url": resolve_location(source.url, path.parent)})
        for source in parsed
    ]
