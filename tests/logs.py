"""What a module logged, kept for a test to read.

structlog's `capture_logs` misses a module's logger once it is cached, and the suite
configures logging (caching every logger on first use) before most unit tests run; a
test replaces the module's `log` with this instead.
"""

from __future__ import annotations

from typing import Any


class Said:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def _keep(self, event: str, **fields: Any) -> None:
        self.lines.append({"event": event, **fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._keep(event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._keep(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._keep(event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._keep(event, **fields)

    def events(self, start: str = "") -> list[str]:
        """The events said, those starting with `start`."""
        return [line["event"] for line in self.lines if line["event"].startswith(start)]
