"""Generated contract documents: JSON Schemas of the events, AsyncAPI of each service, OpenAPI.

`caravan docs` writes them under docs/; a test runs `caravan docs --check` so the
committed files never drift from the code. They are generated from default
settings, not the environment, so they are the same on every machine.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from faststream.redis import RedisBroker
from faststream.redis.message import DATA_KEY
from faststream.specification import AsyncAPI

from services.indexer.app import deadletters_publisher, matches_publisher
from services.ingest.app import articles_publisher
from services.query.app import create_app as create_query_app
from services.ratefeed.app import quarantine_publisher, quotes_publisher
from shared.events import EVENT_MODELS
from shared.service import ServiceContext
from shared.settings import Settings

VERSION = "0.1.0"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# An identifier in the project's own namespace, versioned by schema_version; validators
# resolve it from docs/schemas, never over the network.
SCHEMA_ID_BASE = "https://caravan-news.github.io/caravan/schemas"


def schema_id(name: str) -> str:
    version = EVENT_MODELS[name].model_fields["schema_version"].default
    return f"{SCHEMA_ID_BASE}/v{version}/{name}.json"


def event_schemas() -> dict[str, Any]:
    # Serialization mode: what a consumer reads off the stream, computed fields included.
    return {
        name: {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_id(name)}
        | model.model_json_schema(mode="serialization")
        for name, model in EVENT_MODELS.items()
    }


def _wire_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message as it is on the wire: the published schema, in the entry's one field.

    FastStream copies each payload schema (in validation mode, so decimals could be
    numbers) and declares a correlation_id header the JSON format never writes.
    """
    name = message["payload"]["$ref"].rsplit("/", 1)[-1]
    return {
        "title": message["title"],
        "name": name,
        "contentType": "application/json",
        "description": f"The stream entry's one field, `{DATA_KEY}`, holds the {name} "
        "as UTF-8 JSON; entries have no other fields.",
        "payload": {"$ref": f"../schemas/{name}.json"},
    }


def _asyncapi(service: str, description: str, broker: RedisBroker) -> Any:
    spec = AsyncAPI(
        broker,
        title=f"caravan {service}",
        version=VERSION,
        description=description,
        schema_version="3.0.0",
    )
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    components = document["components"]
    del components["schemas"]
    components["messages"] = {
        key: _wire_message(message) for key, message in components["messages"].items()
    }
    for channel in document["channels"].values():
        channel["bindings"]["redis"]["field"] = DATA_KEY
    return document


def asyncapi_documents(settings: Settings) -> dict[str, Any]:
    ingest = ServiceContext("ingest", settings)
    articles_publisher(ingest)
    ratefeed = ServiceContext("ratefeed", settings)
    quotes_publisher(ratefeed)
    quarantine_publisher(ratefeed)
    indexer = ServiceContext("indexer", settings)
    deadletters_publisher(indexer)
    matches_publisher(indexer)
    return {
        "ingest": _asyncapi("ingest", "Publishes ArticleEvents read from feeds.", ingest.broker),
        "ratefeed": _asyncapi(
            "ratefeed",
            "Publishes QuoteEvents computed from official rates, "
            "and quarantines unconfirmed jumps as DeadLetters.",
            ratefeed.broker,
        ),
        "indexer": _asyncapi(
            "indexer",
            "Consumes the articles and quotes streams (consumer group `indexer`; see "
            "docs/events.md), publishes the entries it cannot index as DeadLetters, and "
            "the saved searches the articles it stores match as SavedSearchMatches.",
            indexer.broker,
        ),
    }


def all_documents(settings: Settings) -> dict[str, Any]:
    """The documents, with the stream names and broker address fixed whatever `settings` say."""
    # The documented deployment's names and address, not this machine's: built here,
    # at call time, since settings classes read the environment when constructed.
    settings = replace(
        settings,
        common=settings.common.model_copy(update={"stream_prefix": "caravan:"}),
        redis=settings.redis.model_copy(update={"url": "redis://redis:6379/0"}),
    )
    documents: dict[str, Any] = {
        f"schemas/{name}.json": schema for name, schema in event_schemas().items()
    }
    documents |= {
        f"asyncapi/{name}.json": doc for name, doc in asyncapi_documents(settings).items()
    }
    documents["openapi/query.json"] = create_query_app(settings).openapi()
    return documents


def render(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_documents(settings: Settings, docs_dir: Path, *, check: bool) -> list[str]:
    """Write every document; with `check`, write nothing and return the stale ones."""
    stale = []
    for relative, document in all_documents(settings).items():
        path = docs_dir / relative
        text = render(document)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(relative)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return stale
