"""One interface over every provider: a document in, its OfficialRates out.

Each document format has a parser (a pure function of the bytes). `detect`
finds the format of an unlabelled document by letting each parser check its own
format: a parser refuses another format with WrongFormat, and any other error
means the document is of its format but broken, which is reported as such.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from services.ratefeed.config import Provider
from services.ratefeed.parsers.cbr import parse_cbr
from services.ratefeed.parsers.cbu import parse_cbu
from services.ratefeed.parsers.json_rates import parse_json_rates
from services.ratefeed.parsers.nbk import parse_nbk
from services.ratefeed.parsers.nbkr import parse_nbkr
from services.ratefeed.parsers.nbt import parse_nbt
from services.ratefeed.providers import OfficialRates, RatesError, WrongFormat

Parser = Callable[[bytes], OfficialRates]

# NBT before CBR: both write <ValCurs>, and only the NBT parser refuses the other.
DOCUMENT_PARSERS: dict[str, Parser] = {
    "nbt": parse_nbt,
    "cbr": parse_cbr,
    "nbkr": parse_nbkr,
    "nbk": parse_nbk,
    "cbu": parse_cbu,
}


def detect(content: bytes) -> str:
    """The kind of a rates document, or RatesError if it is of none or broken."""
    for kind, parser in DOCUMENT_PARSERS.items():
        try:
            parser(content)
        except WrongFormat:
            continue
        except RatesError:
            pass  # its format, but broken: parsing it again reports why
        return kind
    msg = f"not a rates document of a known provider ({', '.join(DOCUMENT_PARSERS)})"
    raise WrongFormat(msg)


def parse_document(provider: Provider, content: bytes) -> OfficialRates:
    """The provider's document, named after the configured provider."""
    if provider.json_rates is not None:
        return parse_json_rates(content, provider.json_rates, provider.name)
    parser = DOCUMENT_PARSERS.get(provider.kind)
    if parser is None:
        msg = f"{provider.name}: a {provider.kind} provider reads no documents"
        raise RatesError(msg)
    return dataclasses.replace(parser(content), provider=provider.name)
