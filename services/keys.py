"""Least-privilege Elasticsearch roles and one API key per service (`caravan keys create`).

The role definitions below are the ones docs/operations.md lists (a test keeps
the two equal), and tests/security/test_es_security.py runs every service with
its own key, made by this command, against the local distribution with
security on. Only the indexer,
the query service and `caravan reindex` talk to Elasticsearch; ingest and the
rate feed need no key.

Run it as a bootstrap user (ELASTICSEARCH_USERNAME/PASSWORD of a superuser, or an
ELASTICSEARCH_API_KEY allowed to create keys with these privileges): an API key
can never hold more than its creator, so the creator needs at least all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch

from shared.clients import elasticsearch_refusal, make_elasticsearch, wait_for_elasticsearch
from shared.index import ALIASES
from shared.settings import Settings

SERVICES = ("indexer", "query", "reindex")


def index_names(index_prefix: str, aliases: tuple[str, ...] = ALIASES) -> list[str]:
    """Caravan's aliases and their versioned indices (`articles`, `articles-v1`, …)."""
    return [f"{index_prefix}{alias}{suffix}" for alias in aliases for suffix in ("", "-v*")]


def role_descriptors(index_prefix: str) -> dict[str, dict[str, Any]]:
    """Each service's role: the privileges its requests need, and no more.

    `monitor` is for `_cluster/health` (every service's readiness);
    `manage_index_templates` for the templates the
    indexer (and reindex) put at start. The indexer creates its versioned
    indices with their alias, adds new fields to them and applies the replica
    settings to the existing ones at each start, but cannot delete or
    re-point anything; reindex moves an alias and deletes the index it failed to
    fill, so it has `manage` (which includes both) and `read` to copy documents.
    Saved searches are the query service's to create (`create_doc`: never to
    overwrite) and delete; the indexer only reads them, and the articles it matches
    them against, after a refresh that makes the articles it stored searchable.
    """

    def on_indices(*privileges: str, aliases: tuple[str, ...] = ALIASES) -> dict[str, Any]:
        # A list of its own per role: callers may change one role without the others.
        return {"names": index_names(index_prefix, aliases), "privileges": list(privileges)}

    articles, quotes, saved_searches = ALIASES
    return {
        "indexer": {
            "cluster": ["monitor", "manage_index_templates"],
            "indices": [
                on_indices(
                    "create_index",
                    "view_index_metadata",
                    "indices:admin/mapping/put",
                    "indices:admin/settings/update",
                    "indices:admin/aliases",
                ),
                on_indices("write", aliases=(articles, quotes)),
                on_indices("read", "indices:admin/refresh*", aliases=(articles, saved_searches)),
            ],
        },
        "query": {
            "cluster": ["monitor"],
            "indices": [
                on_indices("read"),
                on_indices("create_doc", "delete", aliases=(saved_searches,)),
            ],
        },
        "reindex": {
            "cluster": ["monitor", "manage_index_templates"],
            "indices": [on_indices("manage", "read", "write")],
        },
    }


def role_name(service: str, index_prefix: str) -> str:
    # The prefix keeps the roles of deployments sharing one cluster apart.
    return f"caravan-{index_prefix}{service}"


@dataclass(frozen=True)
class CreatedKey:
    service: str
    role: str
    name: str
    key_id: str
    path: Path


def write_secret(path: Path, secret: str) -> None:
    """Put a secret at `path`, readable by its owner only (mode 600), in one step.

    Written to a new file beside it, then renamed over it: whatever was at `path`
    is replaced, never written into, so an older file's wider mode does not carry
    over and a symlink planted there is replaced rather than followed. A service
    reading the file (ELASTICSEARCH_API_KEY_FILE is read again when it changes)
    sees the old key or the new one, never half of one.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # O_EXCL|O_NOFOLLOW: a fresh file of ours, not anything already at that name.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)  # exactly 600, whatever the umask
            out.write(secret + "\n")
            out.flush()
            # On disk before the rename, so a crash cannot leave an empty key behind.
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def key_path(out: str, service: str) -> Path:
    """Where a service's key goes: `out/SERVICE.api-key`, `{service}` in `out` replaced
    (`/run/keys/{service}`: a directory per service, each mounted into that service only)."""
    return Path(out.replace("{service}", service)) / f"{service}.api-key"


async def create_keys(
    es: AsyncElasticsearch,
    index_prefix: str,
    out: str,
    expiration: str | None = None,
    services: tuple[str, ...] = SERVICES,
    *,
    if_missing: bool = False,
) -> list[CreatedKey]:
    """Put each service's role and create its key, written to `key_path(out, SERVICE)`;
    with `if_missing`, only for services that have no key file yet (an init job run
    on every start makes each key once).

    The roles are for users who authenticate with a password instead; a key
    carries its role inline (API keys cannot refer to named roles).
    """
    descriptors = role_descriptors(index_prefix)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    created = []
    for service in services:
        path = key_path(out, service)
        if if_missing and path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        role = role_name(service, index_prefix)
        await es.security.put_role(name=role, **descriptors[service])
        answer = await es.security.create_api_key(
            name=f"{role}-{stamp}",
            role_descriptors={role: descriptors[service]},
            expiration=expiration,
            metadata={"caravan_service": service},
        )
        write_secret(path, answer["encoded"])
        created.append(CreatedKey(service, role, answer["name"], answer["id"], path))
    return created


async def _create_configured(
    settings: Settings, args: argparse.Namespace, services: tuple[str, ...]
) -> list[CreatedKey]:
    async with make_elasticsearch(settings.elasticsearch) as es:
        if args.wait:
            # An init job starts with the cluster: give it time to come up (or say why not).
            try:
                async with asyncio.timeout(args.wait):
                    await wait_for_elasticsearch(es)
            except TimeoutError:
                raise SystemExit(
                    f"caravan keys: Elasticsearch not ready within {args.wait:g} s: "
                    f"{await elasticsearch_refusal(es)}"
                ) from None
        return await create_keys(
            es,
            settings.common.index_prefix,
            args.out,
            args.expiration,
            services,
            if_missing=args.if_missing,
        )


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`caravan keys roles | create`."""
    keys = commands.add_parser(
        "keys", help="each service's Elasticsearch role, and one API key per service"
    )
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    roles = actions.add_parser(
        "roles",
        help="print the roles as JSON, keyed by name (the body of PUT "
        "/_security/role/NAME; as YAML, a roles.yml)",
    )
    roles.set_defaults(handler=_print_roles)
    create = actions.add_parser(
        "create",
        help="put the roles and create one API key per service, each written to "
        "DIR/SERVICE.api-key (mode 600) for ELASTICSEARCH_API_KEY_FILE",
    )
    create.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="where the keys go; {service} in it is replaced, for a directory per service",
    )
    create.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait this long for the cluster to be ready first (an init job starting with it)",
    )
    create.add_argument(
        "--if-missing",
        action="store_true",
        help="only for services without a key file yet (an init job run on every start)",
    )
    create.add_argument(
        "--expiration",
        metavar="DURATION",
        help="lifetime of the keys, e.g. 90d (default: they never expire)",
    )
    create.add_argument(
        "--service",
        choices=SERVICES,
        action="append",
        help="only this service's key (repeatable; default: all)",
    )
    create.set_defaults(handler=_create)


def _print_roles(_: argparse.Namespace, settings: Settings) -> None:
    prefix = settings.common.index_prefix
    print(
        json.dumps(
            {
                role_name(service, prefix): descriptor
                for service, descriptor in role_descriptors(prefix).items()
            },
            indent=2,
        )
    )


def _create(args: argparse.Namespace, settings: Settings) -> None:
    services = tuple(args.service or SERVICES)
    created = asyncio.run(_create_configured(settings, args, services))
    for service in sorted(set(services) - {key.service for key in created}):
        print(f"{service}: key file already there, {key_path(args.out, service)}")
    for key in created:
        # Names and ids only: the secret goes to its file and nowhere else.
        print(
            f"{key.service}: API key {key.name} (id {key.key_id}), role {key.role}, "
            f"written to {key.path}"
        )
