"""The indexer's failure policy, in one place: whose fault is a failed write. Pure.

Every outcome of a bulk write is one of:

- done: stored, or stale (a version conflict: the index already holds this
  version or a newer one) -> acknowledge;
- the entry's fault: Elasticsearch refuses this document on its own (mapping
  or parse error, a document too large for the cluster ever to take) ->
  dead-letter it with the reason, at once; retrying cannot help;
- the cluster's (or the credentials') fault: 429 of any kind (overload,
  `es_rejected_execution`, the flood-stage disk block), 5xx, timeouts,
  connection errors, 401/403 (expired key, missing privilege, index blocks),
  a missing index -> hold: keep the entries pending and owned, stop reading,
  back off, report, resume by itself. Nothing held is ever dead-lettered,
  however long it lasts: the fix is the operator's, not the data's.

A whole-request refusal that is not the cluster's (a 400 for a malformed
body, a 413 for a request over `http.max_content_length`) is narrowed by
splitting the request until the entry at fault stands alone. A 400 that is the
cluster's state (a closed index, an alias with no write index, the shard limit)
or that Elasticsearch did not write (a proxy's) is held.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, SerializationError
from elasticsearch import ApiError


class Fault(enum.Enum):
    NONE = "none"
    """Done: stored or stale."""
    ENTRY = "entry"
    """The document is refused on its own: dead-letter it."""
    CLUSTER = "cluster"
    """Elasticsearch or the credentials: hold and retry, never dead-letter."""


# Statuses that say nothing about the document: the cluster is busy, failing,
# blocked (flood stage is a 429 block, a read-only index a 403 block) or the
# caller lacks a valid key or privilege.
CLUSTER_STATUSES = frozenset({401, 403, 404, 408, 429})

# Indexing pressure: "rejected execution of primary operation [..., all_bytes=A,
# primary_operation_bytes=N, max_primary_bytes=M]" (likewise coordinating operations;
# a replica operation's names no all_bytes): refused as A + N > M.
_PRESSURE = re.compile(
    r"(?:all_bytes=(?P<in_flight>\d+),\s*)?(?P<stage>coordinating|primary|replica)"
    r"_operation_bytes=(?P<operation>\d+),\s*max_[a-z_]*bytes=(?P<limit>\d+)"
)
# Elasticsearch weighs a request's coordination as about its body's bytes (a little
# less: not the action lines); held at least this share of them, the node that refused
# a primary operation was coordinating its request too.
OWN_SHARE = 0.9


# What the cluster answers with a 400 about its own state, not the document: an index
# closed (to change its static settings), an alias with no write index (a rollover half
# done), the cluster's shard limit reached (an index not made). Read from the error's
# type and the start of its reason, never found anywhere in it: a refusal's reason can
# quote the document ("id [...] is too long"), and words in the document would then
# hold it, and the indexer with it, for ever.
_NO_WRITE_INDEX = re.compile(r"no write index is defined for alias \[")
_SHARD_LIMIT = re.compile(
    r"Validation Failed: 1: this action would add \[\d+\] (?:[a-z]+ )?shards, "
    r"but this cluster currently has \[\d+\]/\[\d+\] maximum (?:[a-z]+ )?shards open;"
)


def cluster_state(error: object) -> bool:
    """Whether Elasticsearch's error object is about the cluster's state."""
    if not isinstance(error, dict):
        return False
    kind, reason = error.get("type"), error.get("reason")
    if kind == "index_closed_exception":
        return True
    if not isinstance(reason, str):
        return False
    if kind == "illegal_argument_exception":
        return _NO_WRITE_INDEX.match(reason) is not None
    return kind == "validation_exception" and _SHARD_LIMIT.match(reason) is not None


def status_fault(status: int) -> Fault:
    if status < 300 or status == 409:
        return Fault.NONE
    if status in CLUSTER_STATUSES or status >= 500:
        return Fault.CLUSTER
    return Fault.ENTRY


def larger_than_the_cluster_takes(status: int, reason: str) -> bool:
    """Whether a 429 says this operation alone exceeds the indexing-pressure limit.

    Such an operation is refused however idle the cluster is: not overload but
    size. A single document that does not fit is the entry's fault.
    """
    match = _PRESSURE.search(reason) if status == 429 else None
    return match is not None and int(match["operation"]) > int(match["limit"])


def too_heavy_with_its_request(status: int, reason: str, request_bytes: int) -> bool:
    """Whether a 429 says this primary operation exceeds the limit with its own request's
    bytes alone, whatever else the node held.

    The node coordinating a request counts its bytes, and a document's primary operation
    at about four times its size: one document of a fifth of the limit (10 MiB of a
    512 MiB heap's 51 MiB) was refused on an idle node every time, and held for ever.
    Other requests' bytes (what the node held past the request's own) are load, which
    passes. A request of several such is split; one alone, refused so again and again,
    is the entry's fault (the writer decides).
    """
    match = _PRESSURE.search(reason) if status == 429 else None
    if match is None or match["stage"] != "primary" or match["in_flight"] is None:
        return False
    in_flight, operation, limit = (int(match[name]) for name in ("in_flight", "operation", "limit"))
    return (
        in_flight >= request_bytes * OWN_SHARE and min(in_flight, request_bytes) + operation > limit
    )


def pressure_limit(status: int, reason: str) -> int | None:
    """The indexing-pressure limit a 429 names, when it is one."""
    match = _PRESSURE.search(reason) if status == 429 else None
    return int(match["limit"]) if match else None


class Verdict(enum.Enum):
    HOLD = "hold"
    """The cluster's fault: back off and send the same request again."""
    SPLIT = "split"
    """The request as a whole is refused for its content: narrow it down."""
    REJECT = "reject"
    """A request of one entry refused for its content: that entry is the poison."""


@dataclass(frozen=True)
class RequestFailure:
    verdict: Verdict
    status: int | None
    reason: str


def classify_request_error(exc: Exception, *, entries: int, size: int) -> RequestFailure:
    """What to do when a whole bulk request of `entries` (`size` bytes) failed with `exc`.

    An indexing-pressure 429 for a request that is itself more than half the
    node's limit is split, not held: Elasticsearch reads a bulk body in chunks
    and counts the request's own earlier chunks against the limit, so such a
    request may be refused on an idle node forever, while its halves fit.
    """
    if isinstance(exc, (TransportConnectionError, ConnectionTimeout)):
        return RequestFailure(Verdict.HOLD, None, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, SerializationError):
        # The answer could not be read (a proxy's HTML error page, a cut-off body).
        return RequestFailure(Verdict.HOLD, None, f"unreadable answer: {exc}")
    if not isinstance(exc, ApiError):
        return RequestFailure(Verdict.HOLD, None, f"{type(exc).__name__}: {exc}")
    status = exc.status_code
    reason = describe_api_error(exc)
    if larger_than_the_cluster_takes(status, reason):
        return RequestFailure(Verdict.SPLIT if entries > 1 else Verdict.REJECT, status, reason)
    limit = pressure_limit(status, reason)
    if limit is not None and entries > 1 and size > limit // 2:
        return RequestFailure(Verdict.SPLIT, status, reason)
    if status_fault(status) is Fault.CLUSTER or cluster_state(_error_of(exc)):
        return RequestFailure(Verdict.HOLD, status, reason)
    if status < 300:
        # An answer the client refused although it says success: no Elasticsearch behind
        # the address (a failed product check), nothing the documents did.
        return RequestFailure(Verdict.HOLD, status, reason)
    if status != 413 and not _from_elasticsearch(exc):
        # A 400 with no Elasticsearch error in it: a proxy's (plain HTTP sent to an HTTPS
        # port), not a refusal of the documents. A 413 is about size, whoever sends it.
        return RequestFailure(Verdict.HOLD, status, f"not Elasticsearch's answer: {reason}")
    return RequestFailure(Verdict.SPLIT if entries > 1 else Verdict.REJECT, status, reason)


def _from_elasticsearch(exc: ApiError) -> bool:
    return isinstance(_error_of(exc), (dict, str))


def _error_of(exc: ApiError) -> object:
    return exc.body.get("error") if isinstance(exc.body, dict) else None


def describe_api_error(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return describe_error(body["error"])
    return f"HTTP {exc.status_code}: {exc.message}"


def describe_error(error: Any) -> str:
    """Elasticsearch's error object as one line: type, reason, and what caused it."""
    if not isinstance(error, dict):
        return str(error)
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    # A refused API key's 401 says why only here ("api key [id] has been invalidated").
    if refused := error.get("additional_unsuccessful_credentials"):
        text += f" ({refused})"
    cause = error.get("caused_by")
    return f"{text} (caused by {describe_error(cause)})" if cause else text
