"""The least a service between its clients and Elasticsearch costs per request here.

    python -m bench.two_hops [--requests 6000] [--concurrency 8,1] [--cores separate|shared]

A forwarder that does nothing but the query service's two hops: it reads a client's
HTTP/1.1 request, sends a fixed request on a kept-alive connection to an upstream
that stands in for Elasticsearch (a 13.6 KB answer, the size of an average search
answer), reads that answer and answers the client with a 4 KB body. asyncio on uvloop,
as the service runs; the upstream is pinned where Elasticsearch would be (`--cores
separate`), the forwarder and the client beside each other, as the query bench places
the service and its client. Its CPU per request (user + system, from /proc) is the
floor under any Python service in that position on this machine, whatever its own code
costs: bench/README.md, "The search path's CPU", compares the service with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import uvloop

from bench import cores
from bench.ports import free_port
from bench.proc import process_cpu_seconds

REPO = Path(__file__).resolve().parents[1]
UPSTREAM_ANSWER = b"x" * 13_600
CLIENT_ANSWER = b"y" * 4_000
UPSTREAM_REQUEST = (
    b"POST /articles/_search HTTP/1.1\r\nhost: es\r\ncontent-type: application/json\r\n"
    b"content-length: 2\r\n\r\n{}"
)
CLIENT_REQUEST = b"GET /api/search?q=x HTTP/1.1\r\nhost: service\r\n\r\n"
POOL = 8


def head(length: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % (
        length
    )


async def next_request(reader: asyncio.StreamReader) -> bool:
    try:
        await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return False
    return True


async def read_answer(reader: asyncio.StreamReader) -> None:
    header = await reader.readuntil(b"\r\n\r\n")
    length = int(header.split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)


async def upstream(port: int) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await next_request(reader):
            writer.write(head(len(UPSTREAM_ANSWER)) + UPSTREAM_ANSWER)

    server = await asyncio.start_server(answer, "127.0.0.1", port)
    await server.serve_forever()


async def forwarder(port: int, upstream_port: int) -> None:
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(POOL):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", upstream_port))

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await next_request(reader):
            up_reader, up_writer = await pool.get()
            up_writer.write(UPSTREAM_REQUEST)
            await read_answer(up_reader)
            pool.put_nowait((up_reader, up_writer))
            writer.write(head(len(CLIENT_ANSWER)))
            writer.write(CLIENT_ANSWER)

    server = await asyncio.start_server(forward, "127.0.0.1", port)
    await server.serve_forever()


async def clients(port: int, requests: int, concurrency: int) -> float:
    """Seconds for `requests` requests from `concurrency` kept-alive connections."""

    async def one(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(CLIENT_REQUEST)
            await read_answer(reader)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(requests // concurrency) for _ in range(concurrency)))
    return time.perf_counter() - started


async def listening(port: int) -> None:
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)  # another process's start: no event to wait on
            continue
        writer.close()
        return


def start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bench.two_hops", *args], cwd=REPO)


def measure(args: argparse.Namespace) -> None:
    upstream_port, forwarder_port = free_port(), free_port()
    up = start("--upstream", str(upstream_port))
    uvloop.run(listening(upstream_port))
    forward = start("--forwarder", str(forwarder_port), str(upstream_port))
    try:
        uvloop.run(listening(forwarder_port))
        split = cores.split(set(os.sched_getaffinity(0))) if args.cores == "separate" else None
        if split is not None:
            cores.pin(up.pid, split.cluster)
            cores.pin(forward.pid, split.measured)
            cores.pin(os.getpid(), split.measured)
        print(f"{args.requests} requests per concurrency, cores {args.cores}")
        for concurrency in args.concurrency:
            uvloop.run(clients(forwarder_port, 400, concurrency))  # warm-up
            before = process_cpu_seconds(forward.pid)
            took = uvloop.run(clients(forwarder_port, args.requests, concurrency))
            used = process_cpu_seconds(forward.pid) - before
            print(
                f"concurrency {concurrency}: {args.requests / took:,.0f} requests/s, "
                f"forwarder CPU {used / args.requests * 1000:.3f} ms per request"
            )
    finally:
        for process in (forward, up):
            process.terminate()
            process.wait()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=6_000)
    parser.add_argument(
        "--concurrency",
        default=[8, 1],
        type=lambda text: [int(part) for part in text.split(",")],
        help="comma-separated, each measured in turn (default 8,1)",
    )
    cores.add_argument(parser)  # the upstream stands where Elasticsearch would
    # The two servers, as this module starts them.
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--forwarder", type=int, nargs=2, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.upstream is not None:
        uvloop.run(upstream(arguments.upstream))
    elif arguments.forwarder is not None:
        uvloop.run(forwarder(*arguments.forwarder))
    else:
        measure(arguments)
