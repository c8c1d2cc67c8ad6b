"""The chunk table (shared/language/chunks/src/lib.rs), built by setuptools-rust."""

from collections.abc import Callable

class ChunkTable:
    def __init__(
        self,
        max_chars: int,
        kept_chunk_bytes: int,
        kept_tokens_chars: int,
        per_generation: int,
    ) -> None: ...
    def analyse(
        self,
        texts: list[str],
        make: Callable[[list[bytes]], tuple[list[str], list[str]]],
    ) -> list[tuple[str, str]]: ...
    def kept(self) -> tuple[list[bytes], list[bytes]]: ...
    def clear(self) -> None: ...
