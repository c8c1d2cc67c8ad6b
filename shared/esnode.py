"""An Elasticsearch node over plain HTTP: asyncio's own transport and httptools' parser.

The client's default node sends each request through aiohttp, which cost 0.25 ms of CPU
per search request on the development machine; this node costs 0.07 (bench/README.md,
"Session 12"). It keeps what the transport relies on: a pool of kept-alive connections
capped at the node's `connections_per_node`, the request timeout, gzip when
`http_compress` is set, the library's error types (so its retries, failover and error
mapping work as before) and its request log. TLS nodes keep the library's aiohttp node
(`shared/clients.py`), with its certificate checks.
"""

from __future__ import annotations

import asyncio
import gzip

import httptools
from elastic_transport import (
    ApiResponseMeta,
    BaseAsyncNode,
    ConnectionError,
    ConnectionTimeout,
    HttpHeaders,
    NodeConfig,
)
from elastic_transport._node._base import (  # the library's own split of what it wraps
    BUILTIN_EXCEPTIONS,
    RERAISE_EXCEPTIONS,
    NodeApiResponse,
)
from elastic_transport.client_utils import DEFAULT, DefaultType


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
        self.reusable = False
        self._answer: asyncio.Future[_Answer] | None = None
        self._headers: list[tuple[str, str]] = []
        self._chunks: list[bytes] = []
        self._head_only = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionResetError("the node closed the connection"))

    def send(self, head: bytes, body: bytes | None, head_only: bool) -> asyncio.Future[_Answer]:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._head_only = head_only
        self.transport.writelines((head, body) if body else (head,))
        return self._answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)
            self.close()

    # httptools' callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self._head_only:
            # A HEAD answer has a length but no body, which httptools cannot be told:
            # the answer is complete here, and the connection is not used again.
            self._finish(reusable=False)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if not self._head_only:
            self._finish(reusable=self.parser.should_keep_alive())

    def _finish(self, reusable: bool) -> None:
        answer, self._answer = self._answer, None
        body = b"".join(self._chunks)
        headers, self._headers, self._chunks = self._headers, [], []
        self.reusable = reusable
        if answer is None or answer.done():
            # Bytes nobody asked for: the connection is out of step.
            self.close()
            return
        answer.set_result(_Answer(self.parser.get_status_code(), headers, body))

    def _fail(self, exc: BaseException) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)


class PlainHttpNode(BaseAsyncNode):
    """A node reached over http://, for `AsyncElasticsearch(node_class=...)`."""

    def __init__(self, config: NodeConfig) -> None:
        super().__init__(config)
        if config.scheme != "http":
            raise ValueError(f"PlainHttpNode speaks plain HTTP, not {config.scheme}")
        host = f"[{config.host}]" if ":" in config.host else config.host
        self._host_header = f"{host}:{config.port}"
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
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
            # The wait for a free connection counts, as it does in aiohttp's total timeout.
            async with asyncio.timeout(timeout), self._slots:
                answer = await self._exchange(head, sent, head_only=method == "HEAD")
        except RERAISE_EXCEPTIONS:
            raise
        except Exception as exc:
            err: Exception
            if isinstance(exc, TimeoutError):
                err = ConnectionTimeout("Connection timed out during request", errors=(exc,))
            elif isinstance(exc, BUILTIN_EXCEPTIONS):
                raise
            else:
                err = ConnectionError(str(exc) or type(exc).__name__, errors=(exc,))
            self._log_request(
                method=method, target=target, headers=request_headers, body=body, exception=err
            )
            raise err from None
        response_headers = HttpHeaders(_joined(answer.headers))
        raw = answer.body
        if raw and response_headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
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

    async def _exchange(self, head: bytes, body: bytes | None, head_only: bool) -> _Answer:
        connection = self._take_idle() or await self._connect()
        try:
            answer = await connection.send(head, body, head_only)
        except BaseException:
            # A timeout, a cancellation or a broken answer: whatever was half-read stays
            # on this connection, so it is never used again.
            self._discard(connection)
            raise
        if connection.reusable and not connection.closed:
            self._idle.append(connection)
        else:
            self._discard(connection)
        return answer

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
            self._open.discard(connection)
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self.host, self.port)
        self._open.add(connection)
        return connection

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    async def close(self) -> None:  # type: ignore[override]
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()


def _request_head(
    method: str, target: str, host: str, headers: HttpHeaders, body: bytes | None
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if body is not None or method in ("POST", "PUT"):
        lines.append(f"content-length: {len(body or b'')}")
    # Nothing in a header or the target may start a line of its own.
    if any("\r" in line or "\n" in line for line in lines) or " " in target:
        raise ValueError("a request line or header holds a line break or a space")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def _joined(headers: list[tuple[str, str]]) -> dict[str, str]:
    """A header sent twice (Warning, say) as one value, as HTTP allows."""
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined
