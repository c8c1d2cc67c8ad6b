"""A typed client of toxiproxy's HTTP API: real TCP faults between a client and a server.

A `Proxy` listens on a loopback port and forwards to its upstream; toxics added
to it act on the bytes in flight (`downstream` is server to client), on
connections already open as well as new ones, from the moment the API answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

Stream = Literal["upstream", "downstream"]
ToxicType = Literal["latency", "reset_peer", "timeout", "bandwidth"]


@dataclass(frozen=True)
class Toxic:
    name: str
    type: ToxicType
    stream: Stream
    attributes: dict[str, int]


class Proxy:
    def __init__(self, api: httpx.Client, state: dict[str, Any]) -> None:
        self._api = api
        self.name: str = state["name"]
        self.upstream: str = state["upstream"]
        # As toxiproxy reports it: the port it picked when asked for port 0.
        self.listen: str = state["listen"]
        self.enabled: bool = state["enabled"]

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def latency(self, ms: int, *, jitter_ms: int = 0, stream: Stream = "downstream") -> Toxic:
        """Delays every chunk of data by `ms` (± `jitter_ms`)."""
        return self._add("latency", stream, latency=ms, jitter=jitter_ms)

    def reset_peer(self, *, after_ms: int = 0, stream: Stream = "downstream") -> Toxic:
        """Resets (TCP RST) each connection `after_ms` after data next flows through it."""
        return self._add("reset_peer", stream, timeout=after_ms)

    def timeout(self, *, close_after_ms: int = 0, stream: Stream = "downstream") -> Toxic:
        """Swallows all data; closes the connection after `close_after_ms`, or,
        with 0, never: a black hole, as a dead host behind a firewall looks."""
        return self._add("timeout", stream, timeout=close_after_ms)

    def bandwidth(self, kb_per_second: int, *, stream: Stream = "downstream") -> Toxic:
        """Limits the link to `kb_per_second` thousand bytes a second."""
        return self._add("bandwidth", stream, rate=kb_per_second)

    def remove(self, toxic: Toxic) -> None:
        self._api.delete(f"/proxies/{self.name}/toxics/{toxic.name}").raise_for_status()

    def disable(self) -> None:
        """Closes every connection through the proxy and refuses new ones."""
        self._set_enabled(enabled=False)

    def enable(self) -> None:
        self._set_enabled(enabled=True)

    def _set_enabled(self, *, enabled: bool) -> None:
        answer = self._api.patch(f"/proxies/{self.name}", json={"enabled": enabled})
        answer.raise_for_status()
        self.enabled = answer.json()["enabled"]

    def _add(self, kind: ToxicType, stream: Stream, **attributes: int) -> Toxic:
        # One toxic of a kind per direction: the name says which, so adding it twice fails.
        toxic = Toxic(f"{kind}_{stream}", kind, stream, attributes)
        answer = self._api.post(
            f"/proxies/{self.name}/toxics",
            json={
                "name": toxic.name,
                "type": kind,
                "stream": stream,
                "toxicity": 1.0,
                "attributes": attributes,
            },
        )
        answer.raise_for_status()
        return toxic


class Toxiproxy:
    """The server's API; proxies made here are deleted with `delete`."""

    def __init__(self, url: str) -> None:
        self._api = httpx.Client(base_url=url, timeout=10)

    def create(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> Proxy:
        answer = self._api.post(
            "/proxies", json={"name": name, "upstream": upstream, "listen": listen, "enabled": True}
        )
        answer.raise_for_status()
        return Proxy(self._api, answer.json())

    def delete(self, proxy: Proxy) -> None:
        self._api.delete(f"/proxies/{proxy.name}").raise_for_status()

    def close(self) -> None:
        self._api.close()
