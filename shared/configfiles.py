"""Pieces shared by the services' TOML config files (ingest sources, rate providers)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA zone name, e.g. Asia/Almaty, checked against the tz database."""


def resolve_location(location: str, base: Path) -> str:
    """A URL as it is; a path relative to the config file's folder made absolute."""
    if "://" in location:
        return location
    return str((base / location).resolve())
