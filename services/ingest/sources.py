"""The sources config: which feeds to poll, how often, and how to tag what they bring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.ingest.kinds import Kind
from shared.configfiles import TimeZoneName, read_config, resolve_location
from shared.events import language_code
from shared.settings import LONGEST_INTERVAL_SECONDS

# The variable naming the sources file, for messages about the file.
SOURCES_VARIABLE = "CARAVAN_INGEST_SOURCES"


def _language(value: str) -> str:
    # Published as every article's language the source's pages do not name: the one
    # form events carry (`ru`), which filters and the analysis go by, not "Russian (RU)".
    code = language_code(value)
    if code is None:
        msg = f"language must be an ISO 639 code such as ru, uz or kk, not {value[:40]!r}"
        raise ValueError(msg)
    return code


class Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1)
    url: str = Field(min_length=1, description="http(s) URL, or a path relative to the config file")
    # None: recognised from the content at each poll (feed, sitemap or HTML page).
    kind: Kind | None = None
    interval: float = Field(
        default=900.0, gt=0, le=LONGEST_INTERVAL_SECONDS, description="seconds between polls"
    )
    tags: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    language: Annotated[str, AfterValidator(_language)] | None = Field(
        default=None, description="ISO 639 code of its articles when they name none: ru, uz, kk"
    )
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

    @model_validator(mode="after")
    def _unique_names(self) -> SourcesFile:
        # A source's lease and due time are keyed by its name: two of one name would be
        # polled as one, on whichever interval wrote last.
        names = [source.name for source in self.sources]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            msg = f"source names must be unique: {repeated}"
            raise ValueError(msg)
        return self


def load_sources(path: Path) -> list[Source]:
    """Read a TOML file of `[[sources]]` tables; local paths become absolute.

    What is wrong with the file is a ConfigFileError naming it."""
    parsed = read_config(path, SOURCES_VARIABLE, SourcesFile).sources
    return [
        source.model_copy(update={"url": resolve_location(source.url, path.parent)})
        for source in parsed
    ]
