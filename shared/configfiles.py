"""Pieces shared by the services' TOML config files (ingest sources, rate providers)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ValidationError


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


M = TypeVar("M", bound=BaseModel)


class ConfigFileError(Exception):
    """A config file that cannot be used; the message names its variable and path."""


def read_config(path: Path, variable: str, model: type[M]) -> M:
    """The TOML file `path` (the value of `variable`) as `model`: what is wrong with it, a
    ConfigFileError naming both in one line, not a traceback naming neither."""
    try:
        return model.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigFileError(f"{variable}={path}: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigFileError(f"{variable}={path}: not TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            ".".join(str(part) for part in error["loc"]) + f": {error['msg']}"
            if error["loc"]
            else error["msg"]
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigFileError(f"{variable}={path}: {problems}") from None
