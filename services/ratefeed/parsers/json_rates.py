"""Any JSON "rates per base" API, described by field paths instead of code.

Two shapes are read. An object of rates keyed by currency code, as most rate
APIs answer:

    {"base": "USD", "date": "2024-05-02", "rates": {"KZT": 443.9, "UZS": 12650}}
    rates_path = "rates", base_path = "base", date_path = "date"

or an array of records, as some banks and scrapers publish:

    [{"code": "USD", "value": "462.79", "date": "2023-11-18"}, ...]
    rates_path = "", code_field = "code", value_field = "value", date_field = "date"

`quotation` says which way the numbers go: "per_base" is units of the currency
per one base unit (USD 1 = KZT 443.9); "in_base" is the value of one unit (or
`nominal_field`, or the fixed `nominals`) in the base currency, as central banks
write. Numbers may be JSON numbers or strings with a point decimal.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.ratefeed.parsers.parsing import (
    commonest_date,
    is_currency_code,
    parse_json,
    per_unit_values,
)
from services.ratefeed.providers import OfficialRates, RatesError, WrongFormat
from shared.decimals import shown


class JsonRatesSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rates_path: str = Field(description="dotted path to the rates; empty for the document")
    quotation: Literal["per_base", "in_base"]
    base: str | None = Field(default=None, description="the base currency, if the API omits it")
    base_path: str | None = None
    date_path: str | None = Field(default=None, description="dotted path to the as-of date")
    date_field: str | None = Field(default=None, description="the date field of each record")
    date_format: str = "%Y-%m-%d"
    code_field: str = "code"
    value_field: str = "value"
    nominal_field: str | None = None
    nominals: dict[str, int] = Field(
        default_factory=dict, description="units a value is quoted for, where the API omits it"
    )

    @model_validator(mode="after")
    def _one_of_each(self) -> JsonRatesSpec:
        if (self.base is None) == (self.base_path is None):
            msg = "give exactly one of base and base_path"
            raise ValueError(msg)
        if (self.date_path is None) == (self.date_field is None):
            msg = "give exactly one of date_path and date_field"
            raise ValueError(msg)
        return self


def parse_json_rates(content: bytes, spec: JsonRatesSpec, provider: str) -> OfficialRates:
    try:
        document = parse_json(content)
    # RecursionError: a document nested deeper than the parser recurses ("[" * 200_000).
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WrongFormat(f"{provider}: not JSON ({exc})") from exc
    base = spec.base or str(_at(document, spec.base_path or "", provider))
    if not is_currency_code(base):
        msg = f"{provider}: bad base currency {shown(base)}"
        raise RatesError(msg)
    rates = _at(document, spec.rates_path, provider)
    if isinstance(rates, dict):
        records = [
            {spec.code_field: code, spec.value_field: value} for code, value in rates.items()
        ]
    elif isinstance(rates, list) and all(isinstance(r, dict) for r in rates):
        records = rates
    else:
        msg = f"{provider}: {spec.rates_path or 'the document'} is not an object or array of rates"
        raise WrongFormat(msg)
    as_of, records, problems = _dated(document, records, spec, provider)
    per_unit, entry_problems = per_unit_values(
        (
            (
                str(r.get(spec.code_field, "")).strip(),
                _number(r.get(spec.value_field)),
                _nominal(r, spec),
            )
            for r in records
        ),
        ".",
    )
    problems += entry_problems
    if spec.quotation == "per_base":
        # Units per base unit -> value of one unit in the base.
        per_unit = {code: 1 / units for code, units in per_unit.items()}
    per_unit.pop(base, None)
    if not per_unit:
        msg = f"{provider}: no usable rate in the document of {as_of}"
        raise RatesError(msg)
    return OfficialRates(provider, base, as_of, per_unit, problems)


def _at(document: Any, path: str, provider: str) -> Any:
    node = document
    for key in filter(None, path.split(".")):
        if not isinstance(node, dict) or key not in node:
            msg = f"{provider}: no {path!r} in the document"
            raise WrongFormat(msg)
        node = node[key]
    return node


def _dated(
    document: Any, records: list[dict[str, Any]], spec: JsonRatesSpec, provider: str
) -> tuple[date, list[dict[str, Any]], list[str]]:
    if spec.date_path is not None:
        return _date(_at(document, spec.date_path, provider), spec, provider), records, []
    field = spec.date_field or ""
    dated = [(_date(r.get(field), spec, provider), r) for r in records]
    if not dated:
        msg = f"{provider}: no rates in the document"
        raise RatesError(msg)
    as_of, current = commonest_date(dated)
    left_out = len(records) - len(current)
    problems = [f"{left_out} records dated other than {as_of} left out"] if left_out else []
    return as_of, current, problems


def _date(value: object, spec: JsonRatesSpec, provider: str) -> date:
    try:
        return datetime.strptime(str(value).strip(), spec.date_format).date()
    except ValueError as exc:
        raise RatesError(f"{provider}: no valid date: {shown(value)}") from exc


def _number(value: object) -> str | None:
    return None if value is None or isinstance(value, bool) else str(value)


def _nominal(record: dict[str, Any], spec: JsonRatesSpec) -> str | None:
    """The record's nominal; None (refused) when the spec's nominal_field is missing."""
    if spec.nominal_field is not None:
        return _number(record.get(spec.nominal_field))
    fixed = spec.nominals.get(str(record.get(spec.code_field, "")).strip())
    return str(fixed) if fixed is not None else "1"  # an API without nominals quotes one unit
