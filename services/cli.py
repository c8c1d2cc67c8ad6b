"""The `caravan` command: run the services, search the index, look after dead letters.

This is the composition root: it is the one module that may import every service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TextIO

from elastic_transport import TransportError as ESTransportError
from elasticsearch import ApiError
from redis.exceptions import RedisError

from services import supervisor
from services.indexer import app as indexer_app
from services.indexer.deadletters import list_dead_letters, replay_dead_letters
from services.indexer.reindex import ReindexIncomplete, reindex_configured
from services.ingest import app as ingest_app
from services.ingest import extract_command
from services.ingest.feeds import FeedError
from services.ingest.results import PollResult
from services.ingest.sitemaps import SitemapError
from services.keys import add_command as add_keys_command
from services.query import app as query_app
from services.query.client import search_once
from services.query.search import PageOutOfRange
from services.ratefeed import app as ratefeed_app
from services.ratefeed.providers import RatesError
from services.redis_users import add_command as add_redis_users_command
from services.specs import write_documents
from shared.clients import make_redis
from shared.configfiles import ConfigFileError
from shared.events import QuoteEvent
from shared.fetch import FetchError
from shared.groups import GroupState, drop_group, is_live, read_groups
from shared.settings import Settings
from shared.streams import Streams

# What a terminal acts on rather than shows: C0 controls but the command's own line
# breaks and tabs, DEL, C1, and the bidirectional overrides. What the command prints
# comes from the web and the streams (titles, dead letters' reasons, group names): one
# must not retitle the window, clear the screen or hide what follows.
_UNSHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Within one value, line breaks and tabs too: a reason must not print as another line
# of the listing (a letter with another id, which an operator would then replay).
_UNSHOWN_IN_A_VALUE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(text: str, unshown: re.Pattern[str]) -> str:
    return unshown.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def shown(text: str) -> str:
    """`text` with what a terminal would act on written out as escapes."""
    return _escaped(text, _UNSHOWN)


def value(text: object) -> str:
    """One value from the data within a line: `shown`, its line breaks and tabs too."""
    return _escaped(str(text), _UNSHOWN_IN_A_VALUE)


def say(text: str, *, file: TextIO | None = None, flush: bool = False) -> None:
    """print(), every character shown (`shown`)."""
    print(shown(text), file=file, flush=flush)


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    # Read once, here, and passed to the command: nothing below reads the environment.
    settings = Settings.for_program(f"caravan {args.command}")
    try:
        args.handler(args, settings)
    except (
        FetchError,
        FeedError,
        SitemapError,
        RatesError,
        PageOutOfRange,
        ConfigFileError,
    ) as exc:
        say(f"caravan {args.command}: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    except RedisError as exc:
        say(f"caravan {args.command}: Redis: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(3) from exc
    except (ESTransportError, ApiError) as exc:
        say(f"caravan {args.command}: Elasticsearch: {exc}", file=sys.stderr)
        raise SystemExit(3) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="caravan", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="start Redis, Elasticsearch and the four services on the bundled samples"
    )
    run.set_defaults(handler=_run)

    _add_ingest(commands)

    extract = commands.add_parser(
        "extract", help="print what ingest extracts from article pages, one JSON line each"
    )
    extract.add_argument(
        "sources",
        nargs="+",
        metavar="PATH_OR_URL",
        help="HTML files, - for standard input, or URLs (guarded fetcher)",
    )
    extract.set_defaults(
        handler=lambda args, settings: extract_command.main(settings, args.sources)
    )

    _add_ratefeed(commands)

    indexer = commands.add_parser("indexer", help="run the indexer")
    indexer.set_defaults(handler=lambda _, settings: indexer_app.main(settings))

    query = commands.add_parser("query", help="run the query API (127.0.0.1:8080 by default)")
    query.set_defaults(handler=lambda _, settings: query_app.main(settings))

    search = commands.add_parser("search", help="search the article index")
    search.add_argument("query", help="words; quotes for phrases, -word to exclude, OR")
    search.add_argument("--page", type=int, default=1)
    search.add_argument("--size", type=int, default=6)
    search.set_defaults(handler=_search)

    dead = commands.add_parser("deadletters", help="list or replay dead letters")
    dead_commands = dead.add_subparsers(dest="action", metavar="ACTION")
    dead.set_defaults(handler=_deadletters_list, limit=50)
    dead_list = dead_commands.add_parser("list", help="newest first, with their reasons")
    dead_list.add_argument("--limit", type=int, default=50)
    dead_list.set_defaults(handler=_deadletters_list)
    replay = dead_commands.add_parser(
        "replay", help="put dead letters back into their stream (after a fix) and drop them"
    )
    replay.add_argument("ids", nargs="+", metavar="ID", help="dead-letter entry ids")
    replay.set_defaults(handler=_deadletters_replay)

    groups = commands.add_parser(
        "groups", help="consumer groups of the streams: live or abandoned; drop one"
    )
    groups_commands = groups.add_subparsers(dest="action", metavar="ACTION")
    groups.set_defaults(handler=_groups_list)
    groups_commands.add_parser(
        "list", help="every group with its lag, pending and state"
    ).set_defaults(handler=_groups_list)
    drop = groups_commands.add_parser(
        "drop", help="destroy a group on the article and quote streams (its pending go too)"
    )
    drop.add_argument("name")
    drop.add_argument(
        "--force", action="store_true", help="drop it even if it is configured or still active"
    )
    drop.set_defaults(handler=_groups_drop)

    rebuild = commands.add_parser(
        "reindex", help="rebuild an index into its next version and swap the alias, no downtime"
    )
    rebuild.add_argument("index", choices=("articles", "quotes"))
    rebuild.add_argument(
        "--from-streams",
        action="store_true",
        help="replay what the streams retain instead of copying the live index",
    )
    rebuild.set_defaults(handler=_reindex)

    add_keys_command(commands)
    add_redis_users_command(commands)
    docs = commands.add_parser("docs", help="write JSON Schemas, AsyncAPI and OpenAPI to docs/")
    docs.add_argument("--dir", type=Path, default=Path("docs"))
    docs.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail if a committed document is out of date",
    )
    docs.set_defaults(handler=_docs)
    return parser


def _add_ratefeed(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ratefeed = commands.add_parser("ratefeed", help="run the rate feed, or read one rates file")
    ratefeed.add_argument(
        "--source",
        metavar="PATH_OR_URL",
        help="read this one rates document, publish its quotes and exit",
    )
    ratefeed.add_argument(
        "--once", action="store_true", help="poll the configured providers once and exit"
    )
    ratefeed.add_argument(
        "--provider",
        metavar="NAME",
        help="the provider of --source (detected from the document if not "
        "given), or the one provider --once polls",
    )
    ratefeed.set_defaults(handler=_ratefeed)
    ratefeed_commands = ratefeed.add_subparsers(dest="action", metavar="ACTION")
    backfill = ratefeed_commands.add_parser(
        "backfill", help="load past rates, one day at a time, from providers that offer them"
    )
    backfill.add_argument(
        "--since",
        type=date.fromisoformat,
        required=True,
        metavar="DATE",
        help="first day, YYYY-MM-DD",
    )
    backfill.add_argument(
        "--until",
        type=date.fromisoformat,
        metavar="DATE",
        help="last day, YYYY-MM-DD (default: today, UTC)",
    )
    backfill.add_argument("--provider", metavar="NAME", help="only this configured provider")
    backfill.set_defaults(handler=_ratefeed_backfill)
    release = ratefeed_commands.add_parser(
        "release",
        help="publish quotes held as jumps (with those held before them) and make "
        "them the rate later moves are judged against",
    )
    release.add_argument(
        "keys",
        nargs="+",
        metavar="KEY",
        help="a held quote's dead-letter entry_id, e.g. KZT-USD-2015-08-20-nbk",
    )
    release.set_defaults(handler=_ratefeed_release)


def _add_ingest(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = commands.add_parser("ingest", help="run the ingest service, or ingest one source")
    ingest.add_argument(
        "--source",
        metavar="PATH_OR_URL",
        help="ingest this one feed, sitemap, listing page or article page, "
        "publish its new and changed articles and exit",
    )
    ingest.add_argument(
        "--kind",
        choices=["feed", "sitemap", "listing", "article"],
        help="what --source is (default: recognised from its content)",
    )
    ingest.add_argument(
        "--once", action="store_true", help="poll every configured source once and exit"
    )
    ingest.add_argument(
        "--limit",
        type=_positive_int,
        metavar="N",
        dest="max_items",
        help="with --source: read at most N of its articles (default: all)",
    )
    ingest.set_defaults(handler=_ingest)
    backfill = ingest.add_subparsers(dest="action", metavar="ACTION").add_parser(
        "backfill", help="ingest the articles of a sitemap (or sitemap index) since a date"
    )
    backfill.add_argument("--sitemap", metavar="PATH_OR_URL", required=True)
    backfill.add_argument(
        "--since",
        metavar="DATE",
        required=True,
        type=_utc_date,
        help="YYYY-MM-DD (UTC): entries dated earlier are left out",
    )
    backfill.add_argument(
        "--limit",
        type=int,
        default=1000,
        metavar="N",
        help="read at most N articles, newest first (default 1000)",
    )
    backfill.set_defaults(handler=_backfill)


def _ingest(args: argparse.Namespace, settings: Settings) -> None:
    if args.source:
        _print_poll(
            asyncio.run(
                ingest_app.ingest_once(
                    settings, args.source, kind=args.kind, max_items=args.max_items
                )
            )
        )
    elif args.once:
        results = asyncio.run(ingest_app.ingest_configured_once(settings))
        for result in results:
            say(result.summary())
        # A one-off load (compose's samples, a cron job) must not pass for done when a
        # source could not be read.
        if any(result.error for result in results):
            raise SystemExit(1)
    else:
        ingest_app.main(settings)


def _backfill(args: argparse.Namespace, settings: Settings) -> None:
    _print_poll(
        asyncio.run(
            ingest_app.ingest_once(
                settings,
                args.sitemap,
                kind="sitemap",
                since=args.since,
                max_items=args.limit,
            )
        )
    )


def _print_poll(result: PollResult) -> None:
    say(result.summary())
    for feed in result.feeds:
        say(f"advertised feed: {value(feed)}")


def _positive_int(text: str) -> int:
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def _utc_date(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), time.min, tzinfo=UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def _ratefeed(args: argparse.Namespace, settings: Settings) -> None:
    if args.source or args.once:
        _print_quotes(asyncio.run(ratefeed_app.ratefeed_once(settings, args.source, args.provider)))
    else:
        ratefeed_app.main(settings)


def _ratefeed_backfill(args: argparse.Namespace, settings: Settings) -> None:
    _print_quotes(
        asyncio.run(ratefeed_app.ratefeed_backfill(settings, args.since, args.until, args.provider))
    )


def _ratefeed_release(args: argparse.Namespace, settings: Settings) -> None:
    _print_quotes(asyncio.run(ratefeed_app.ratefeed_release(settings, args.keys)))


def _print_quotes(quotes: list[QuoteEvent]) -> None:
    for quote in quotes:
        # Read back from Redis (released quotes): escaped as every stored value is.
        flags = f" [{', '.join(map(value, quote.flags))}]" if quote.flags else ""
        say(
            f"{value(quote.base)}/{quote.quote} {quote.rate} as of {quote.as_of}"
            f" ({value(quote.provider)}){flags}"
        )
    say(f"{len(quotes)} quotes published")


def _search(args: argparse.Namespace, settings: Settings) -> None:
    page = asyncio.run(search_once(settings, args.query, args.page, args.size))
    say(page.viewing())
    for hit in page.results:
        when = value(hit.published_at or "undated")
        say(f"- {value(hit.title)} ({value(hit.source)}, {when})\n  {value(hit.url)}")


def _deadletters_list(args: argparse.Namespace, settings: Settings) -> None:
    letters = asyncio.run(list_dead_letters(settings, args.limit))
    if not letters:
        say("no dead letters")
    for entry_id, letter in letters:
        if isinstance(letter, str):
            say(f"{entry_id}  {value(letter)}")
            continue
        say(
            f"{entry_id}  {value(letter.stream)} {value(letter.entry_id)}  "
            f"{value(letter.error_class)} "
            f"(attempts {letter.attempts}, {letter.failed_at:%Y-%m-%d %H:%M:%S}Z)\n"
            f"    {value(letter.error_message)}"
        )


def _deadletters_replay(args: argparse.Namespace, settings: Settings) -> None:
    async def replay() -> None:
        async for entry_id, outcome in replay_dead_letters(settings, args.ids):
            say(f"{value(entry_id)}: {value(outcome)}", flush=True)

    asyncio.run(replay())


def _groups_list(_: argparse.Namespace, settings: Settings) -> None:
    for stream, group, live in asyncio.run(_read_all_groups(settings)):
        state = "live" if live else "ABANDONED (not waited for, not kept from trimming)"
        say(
            f"{stream}  {value(group.name)}: behind {group.behind}, pending {group.pending}, "
            f"consumers {group.consumers}, idle {_idle(group.idle_ms)}  {state}"
        )


def _groups_drop(args: argparse.Namespace, settings: Settings) -> None:
    found = [
        (stream, live)
        for stream, group, live in asyncio.run(_read_all_groups(settings))
        if group.name == args.name
    ]
    if not found:
        say(f"no group {args.name!r} on the streams", file=sys.stderr)
        raise SystemExit(1)
    if any(live for _, live in found) and not args.force:
        say(f"{args.name!r} is configured or active: refusing without --force", file=sys.stderr)
        raise SystemExit(1)

    async def drop() -> bool:
        dropped = True
        async with make_redis(settings.redis) as redis:
            for stream, _ in found:
                if await drop_group(redis, stream, args.name):
                    say(f"{stream}: dropped {value(args.name)}")
                    continue
                dropped = False
                # Listed with its bytes that are not UTF-8 escaped (`\xc3`), or gone.
                say(
                    f"{stream}: no group named exactly {value(args.name)}; a name "
                    "listed with \\x escapes must be destroyed by its bytes "
                    "(redis-cli XGROUP DESTROY)",
                    file=sys.stderr,
                )
        return dropped

    if not asyncio.run(drop()):
        raise SystemExit(1)


async def _read_all_groups(settings: Settings) -> list[tuple[str, GroupState, bool]]:
    common = settings.common
    streams = Streams(common)
    rows = []
    async with make_redis(settings.redis) as redis:
        # The matches stream has downstream groups only; listed (and dropped) alike.
        for stream in (*streams.consumed, streams.matches):
            for group in await read_groups(redis, stream):
                rows.append(
                    (stream, group, is_live(group, common.stream_groups, common.abandon_after_ms))
                )
    return rows


def _idle(idle_ms: int | None) -> str:
    return "no consumers" if idle_ms is None else f"{idle_ms / 1000:.0f}s"


def _reindex(args: argparse.Namespace, settings: Settings) -> None:
    try:
        result = asyncio.run(
            reindex_configured(settings, args.index, from_streams=args.from_streams)
        )
    except ReindexIncomplete as exc:
        say(f"caravan reindex: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    say(
        f"{result.alias}: {result.old_index} -> {result.new_index}, {result.copied} documents "
        f"copied, {result.skipped} left alone; the old index is kept"
    )
    if result.late_failures:
        say(
            f"caravan reindex: {len(result.late_failures)} documents written during the "
            f"rebuild are only in {result.old_index}: "
            + "; ".join(f"{f.doc_id}: {f.reason}" for f in result.late_failures),
            file=sys.stderr,
        )
        raise SystemExit(1)


def _docs(args: argparse.Namespace, settings: Settings) -> None:
    stale = write_documents(settings, args.dir, check=args.check)
    if args.check and stale:
        say("out of date (run `caravan docs`): " + ", ".join(stale), file=sys.stderr)
        raise SystemExit(1)
    say(json.dumps({"written" if not args.check else "checked": stale or "all up to date"}))


def _run(_: argparse.Namespace, settings: Settings) -> None:
    raise SystemExit(supervisor.run_local(settings.query))
