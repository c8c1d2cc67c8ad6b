"""Which of the ledger's notes of errors belong to entries the group has settled."""

from __future__ import annotations

from services.indexer.ledger import settled_notes
from shared.groups import GroupState


def _group(last_delivered: str, oldest_pending: str | None) -> GroupState:
    pending = 0 if oldest_pending is None else 1
    return GroupState("indexer", last_delivered, pending, oldest_pending, lag=0)


def test_notes_below_the_oldest_pending_entry_are_settled_the_rest_kept() -> None:
    ours = {"c:articles": _group("50-0", "20-0"), "c:quotes": _group("9-3", None)}
    keys = [
        "c:articles/10-0",  # acknowledged: below the oldest pending
        "c:articles/20-0",  # the oldest pending
        "c:articles/30-0",  # delivered, maybe pending
        "c:articles/60-0",  # delivered after the group was read
        "c:quotes/9-3",  # nothing pending: acknowledged
        "c:quotes/9-4",  # delivered after the group was read
        "c:matches/1-0",  # a stream the group does not read
        "c:articles/not-an-id",  # not Caravan's
        "no-slash",
    ]
    assert settled_notes(keys, ours) == ["c:articles/10-0", "c:quotes/9-3"]


def test_a_stream_name_with_a_slash_is_read_up_to_the_last_one() -> None:
    ours = {"team/a:articles": _group("5-0", None)}
    assert settled_notes(["team/a:articles/4-0"], ours) == ["team/a:articles/4-0"]
