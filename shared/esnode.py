"""An Elasticsearch node over HTTP or HTTPS: asyncio's own transport and httptools' parser.

The client's default node sends each request through aiohttp: 0.20-0.25 ms of CPU per
search request on the development machine, against 0.11-0.13 through this node in the
same runs (`make bench-layers`; bench/README.md, "Session 12"). It keeps what the
transport relies on and what aiohttp did for it:

- a pool of kept-alive connections, at most the node's `connections_per_node`, each
  dropped after `KEEPALIVE_SECONDS` idle (before a proxy or NAT drops it silently);
- a request on a reused connection that the far side closed before answering is sent
  once more on a new one, for the methods that may be repeated;
- the request timeout (0 or None: none), gzip when `http_compress` is set, interim (1xx)
  answers skipped, answers delimited by the connection's close;
- the library's error types (so its retries, failover and error mapping hold) and its
  request log.

Over HTTPS it checks certificates as the library's aiohttp node does (its own TLS context:
TLS 1.2 at least, the peer's certificate against `ca_certs` or certifi's, the host name
unless it is an address); a certificate fingerprint, a client certificate or unchecked
certificates are refused, for that node to serve. A TLS failure is the library's TlsError.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import ssl
import zlib

import httptools
from elastic_transport import (
    ApiResponseMeta,
    BaseAsyncNode,
    ConnectionTimeout,
    HttpHeaders,
    NodeConfig,
    TlsError,
)
from elastic_transport import ConnectionError as NodeUnreachable
from elastic_transport._node._base import (  # the library's own split of what it wraps
    BUILTIN_EXCEPTIONS,
    DEFAULT_CA_CERTS,
    RERAISE_EXCEPTIONS,
    NodeApiResponse,
    ssl_context_from_node_config,
)
from elastic_transport.client_utils import DEFAULT, DefaultType

# aiohttp's keep-alive: under the idle limits of common proxies and load balancers.
KEEPALIVE_SECONDS = 15.0
# Methods a server may see twice with no other effect (RFC 9110 9.2.2), as aiohttp has them.
_REPEATABLE = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
# What may not be in a header or the target: control characters (tab allowed in values).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Bodies up to this size go out joined to their head, in one write; a bulk body does not
# get copied for it.
_JOIN_BELOW = 64 * 1024


class _Answer:
    """One response as it is read: status, headers, body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class _Connection(asyncio.Protocol):
    """One kept-alive connection, one request at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.closed_here = False  # by this side: an answer then is cut short, not ended
        self.reusable = False
        self.heard = False  # a byte of the current request's answer came
        self.idle_since = 0.0
        self._answer: asyncio.Future[_Answer] | None = None
        self._head_only = False
        self._headers: list[tuple[str, str]] = []
        self._chunks: list[bytes] = []
        self._until_close = False  # the answer's body ends with the connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is None and self._until_close and not self.closed_here:
            self._finish(reusable=False)
            return
        self._fail(exc or ConnectionResetError("the node closed the connection"))

    def send(self, head: bytes, body: bytes | None, head_only: bool) -> asyncio.Future[_Answer]:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._head_only, self.heard = head_only, False
        if body and len(body) >= _JOIN_BELOW:
            self.transport.write(head)
            self.transport.write(body)
        else:
            self.transport.write(head + body if body else head)
        return self._answer

    def close(self) -> None:
        self.closed = self.closed_here = True
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.heard = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(exc)
            self.close()
            return
        if self._head_only and self._answer is None and not self.closed:
            # A HEAD answer declares a length but has no body, which httptools cannot
            # be told: its parser waits for that body, so a new one reads the next answer.
            self.parser = httptools.HttpResponseParser(self)

    # httptools' callbacks
    def on_message_begin(self) -> None:
        if self._answer is None:
            # Bytes nobody asked for: the connection is out of step. (After a HEAD
            # answer in the same read too, which data_received's parser swap would hide.)
            self.close()
        self._until_close = False
        self._headers, self._chunks = [], []

    def on_header(self, name: bytes, value: bytes) -> None:
        # As aiohttp reads them: UTF-8, anything else kept as it came.
        self._headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            return  # an interim answer: the final one follows
        if self._head_only:
            self._finish(reusable=self.parser.should_keep_alive())
            return
        self._until_close = status not in (204, 304) and not any(
            _frames(name.lower(), value) for name, value in self._headers
        )

    def on_body(self, body: bytes) -> None:
        if self._head_only:
            self.close()  # a body after a HEAD answer: out of step
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200 or self._head_only:
            return
        self._finish(reusable=self.parser.should_keep_alive())

    def _finish(self, reusable: bool) -> None:
        answer, self._answer = self._answer, None
        body = b"".join(self._chunks)
        headers, self._headers, self._chunks = self._headers, [], []
        self._until_close = False
        self.reusable = reusable
        if answer is None or answer.done():
            self.close()  # a whole answer nobody asked for: the connection is out of step
            return
        answer.set_result(_Answer(self.parser.get_status_code(), headers, body))

    def _fail(self, exc: BaseException) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)

    @property
    def idle(self) -> bool:
        """Ready for the next request: open and kept alive. (Bytes of a message nobody
        asked for close it as they begin.)"""
        return self.reusable and not self.closed


class HttpNode(BaseAsyncNode):
    """A node reached over http:// or https://, for `AsyncElasticsearch(node_class=...)`."""

    def __init__(self, config: NodeConfig) -> None:
        super().__init__(config)
        if config.scheme not in ("http", "https"):
            raise ValueError(f"HttpNode speaks HTTP and HTTPS, not {config.scheme}")
        self._tls = tls_context(config) if config.scheme == "https" else None
        host = f"[{config.host}]" if ":" in config.host else config.host
        self._host_header = f"{host}:{config.port}"
        self._idle: list[_Connection] = []  # oldest first
        self._open: set[_Connection] = set()
        self._retiring: asyncio.TimerHandle | None = None
        self._closings = 0
        self._slots = asyncio.Semaphore(config.connections_per_node)

    async def perform_request(  # type: ignore[override]
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: DefaultType | float | None = DEFAULT,
    ) -> NodeApiResponse:
        timeout = self.config.request_timeout if request_timeout is DEFAULT else request_timeout
        request_headers = self._headers.copy()
        if headers:
            request_headers.update(headers)
        sent = body
        if body and self._http_compress:
            sent = gzip.compress(body)
            request_headers["content-encoding"] = "gzip"
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            head = _request_head(
                method, self.path_prefix + target, self._host_header, request_headers, sent
            )
            # The wait for a free connection counts, as it does in aiohttp's total
            # timeout; 0 is no timeout, as there.
            async with asyncio.timeout(timeout or None), self._slots:
                answer = await self._exchange(method, head, sent)
            response_headers = HttpHeaders(_joined(answer.headers))
            raw = answer.body
            if raw and response_headers.get("content-encoding") == "gzip":
                raw = gzip.decompress(raw)
        except RERAISE_EXCEPTIONS:
            raise
        except Exception as exc:
            err: Exception
            if isinstance(exc, TimeoutError):
                err = ConnectionTimeout("Connection timed out during request", errors=(exc,))
            elif isinstance(exc, ssl.SSLError):  # before BUILTIN_EXCEPTIONS: a ValueError too
                err = TlsError(str(exc), errors=(exc,))
            elif isinstance(exc, (gzip.BadGzipFile, zlib.error, EOFError)):
                err = NodeUnreachable(f"an answer not gzip as it said: {exc}", errors=(exc,))
            elif isinstance(exc, BUILTIN_EXCEPTIONS):
                raise
            else:
                err = NodeUnreachable(str(exc) or type(exc).__name__, errors=(exc,))
            self._log_request(
                method=method, target=target, headers=request_headers, body=body, exception=err
            )
            raise err from None
        meta = ApiResponseMeta(
            node=self.config,
            duration=loop.time() - start,
            http_version="1.1",
            status=answer.status,
            headers=response_headers,
        )
        self._log_request(
            method=method,
            target=target,
            headers=request_headers,
            body=body,
            meta=meta,
            response=raw,
        )
        return NodeApiResponse(meta, raw)

    async def _exchange(self, method: str, head: bytes, body: bytes | None) -> _Answer:
        connection = self._take_idle()
        if connection is not None and method in _REPEATABLE:
            closings = self._closings
            try:
                return await self._on(connection, head, body, method)
            except ConnectionError:
                # Closed by the far side as the request went out (RFC 9112 9.3.1):
                # once more on a new connection. Anything heard of an answer is a fault,
                # and so is the node's own close() meanwhile.
                if connection.heard or self._closings != closings:
                    raise
            connection = None
        return await self._on(connection or await self._connect(), head, body, method)

    async def _on(
        self, connection: _Connection, head: bytes, body: bytes | None, method: str
    ) -> _Answer:
        try:
            answer = await connection.send(head, body, head_only=method == "HEAD")
        except BaseException:
            # A timeout, a cancellation or a broken answer: whatever was half-read stays
            # on this connection, so it is never used again.
            self._discard(connection)
            raise
        if connection.idle:
            loop = asyncio.get_running_loop()
            connection.idle_since = loop.time()
            self._idle.append(connection)
            if self._retiring is None:
                self._retiring = loop.call_later(KEEPALIVE_SECONDS, self._retire)
        else:
            self._discard(connection)
        return answer

    def _retire(self) -> None:
        """Closes the connections idle for KEEPALIVE_SECONDS; runs while any is idle."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._idle and now - self._idle[0].idle_since >= KEEPALIVE_SECONDS:
            self._discard(self._idle.pop(0))
        self._retiring = None
        if self._idle:
            due = self._idle[0].idle_since + KEEPALIVE_SECONDS - now
            self._retiring = loop.call_later(due, self._retire)

    def _take_idle(self) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle.pop()
            if connection.idle and now - connection.idle_since < KEEPALIVE_SECONDS:
                return connection
            self._discard(connection)
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            _Connection, self.host, self.port, ssl=self._tls
        )
        self._open.add(connection)
        return connection

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    async def close(self) -> None:  # type: ignore[override]
        self._closings += 1
        if self._retiring is not None:
            self._retiring.cancel()
            self._retiring = None
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()


def tls_context(config: NodeConfig) -> ssl.SSLContext:
    """The TLS context of an https:// node: the library's own (`ssl_context` when given),
    with the CA certificates loaded as its aiohttp node loads them."""
    if config.ssl_assert_fingerprint or config.client_cert or not config.verify_certs:
        msg = "a fingerprint, a client certificate or unchecked certificates need AiohttpHttpNode"
        raise ValueError(msg)
    context = ssl_context_from_node_config(config)
    if config.ssl_context is not None:
        return context
    ca_certs = config.ca_certs or DEFAULT_CA_CERTS
    if ca_certs is None:
        raise ValueError("no CA certificates to check the node's with: set ca_certs")
    if os.path.isdir(ca_certs):
        context.load_verify_locations(capath=ca_certs)
    else:
        context.load_verify_locations(cafile=ca_certs)
    return context


def _request_head(
    method: str, target: str, host: str, headers: HttpHeaders, body: bytes | None
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if body is not None or method in ("POST", "PUT"):
        lines.append(f"content-length: {len(body or b'')}")
    # Nothing in a header or the target may end its line or hide in it.
    if _CONTROL.search("".join(lines)) or " " in target:
        raise ValueError("a request line or header holds a control character or a space")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


def _frames(name: str, value: str) -> bool:
    """Whether a header says where the body ends; without one, the connection's close does.
    A transfer coding frames the body only when chunked is its last (RFC 9112 6.3)."""
    if name == "content-length":
        return True
    return name == "transfer-encoding" and value.rsplit(",", 1)[-1].strip().lower() == "chunked"


def _joined(headers: list[tuple[str, str]]) -> dict[str, str]:
    """A header sent twice (Warning, say) as one value, as HTTP allows."""
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined
