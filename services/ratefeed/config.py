"""The providers file (TOML): which rate providers to read, how often, and how to check them.

[crosscheck]
tolerance_pct = "1.0"   # providers further apart than this flag the quote
jump_pct = "5.0"        # a day-on-day move beyond this is quarantined unless confirmed

[primary]               # whose quote of each currency the API shows first
KZT = "nbk"

[[providers]]
name = "nbk"
kind = "nbk"            # cbr, nbk, nbkr, cbu, nbt, peg or json
url = "realdata/nbk-rates-all-2016-04-18.xml"   # URL, or path relative to this file
history_url = "https://…/get_rates.cfm?fdate={date:%d.%m.%Y}"
timezone = "Asia/Almaty"
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.ratefeed.parsers.json_rates import JsonRatesSpec
from services.ratefeed.peg import Peg
from shared.configfiles import TimeZoneName, read_config, resolve_location
from shared.settings import LONGEST_INTERVAL_SECONDS

# The variable naming the providers file, for messages about the file.
PROVIDERS_VARIABLE = "CARAVAN_RATEFEED_PROVIDERS"
# Days a provider's dates may lead or its quotes stay fresh at most: ten years, far past
# any real use, and within the dates Python can count to (a larger one crashed the feed).
LONGEST_DAYS = 3650

Kind = Literal["cbr", "nbk", "nbkr", "cbu", "nbt", "peg", "json"]


class Provider(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9-]+$")
    kind: Kind
    url: str | None = Field(default=None, description="the current rates: URL or path")
    history_url: str | None = Field(
        default=None, description="rates of one day; `{date:%d/%m/%Y}` is replaced by the day"
    )
    interval: float | None = Field(
        default=None, gt=0, le=LONGEST_INTERVAL_SECONDS, description="seconds between polls"
    )
    timezone: TimeZoneName = "UTC"
    max_lead_days: int = Field(default=1, ge=0, le=LONGEST_DAYS)
    stale_after_days: int = Field(default=4, ge=1, le=LONGEST_DAYS)
    peg: Peg | None = None
    json_rates: JsonRatesSpec | None = None

    @model_validator(mode="after")
    def _complete(self) -> Provider:
        if self.kind == "peg" and self.peg is None:
            msg = f"{self.name}: a peg provider needs a [providers.peg] table"
            raise ValueError(msg)
        if self.kind == "json" and self.json_rates is None:
            msg = f"{self.name}: a json provider needs a [providers.json_rates] table"
            raise ValueError(msg)
        if self.kind != "peg" and self.url is None:
            msg = f"{self.name}: url is required"
            raise ValueError(msg)
        return self


class CrossCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tolerance_pct: Decimal = Field(default=Decimal(1), gt=0)
    jump_pct: Decimal = Field(default=Decimal(5), gt=0)


class RatesConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    crosscheck: CrossCheck = CrossCheck()
    primary: dict[str, str] = Field(default_factory=dict)
    providers: list[Provider]

    @model_validator(mode="after")
    def _known_names(self) -> RatesConfig:
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            msg = f"provider names must be unique: {names}"
            raise ValueError(msg)
        unknown = sorted(set(self.primary.values()) - set(names))
        if unknown:
            msg = f"primary providers not configured: {unknown}"
            raise ValueError(msg)
        return self

    def provider(self, name: str) -> Provider | None:
        return next((p for p in self.providers if p.name == name), None)


def load_rates_config(path: Path) -> RatesConfig:
    """Read the providers file; local paths become absolute, relative to the file.

    What is wrong with the file is a ConfigFileError naming it."""
    config = read_config(path, PROVIDERS_VARIABLE, RatesConfig)
    providers = [
        p if p.url is None else p.model_copy(update={"url": resolve_location(p.url, path.parent)})
        for p in config.providers
    ]
    return config.model_copy(update={"providers": providers})
