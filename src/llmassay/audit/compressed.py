"""Corpus files opened as text whatever their compression: plain, `.gz`, `.zst`
(Dolma and RedPajama ship `.jsonl.zst`, concatenated zstd frames).

A file that ends inside a compressed frame is an error (`EOFError`), for both codecs:
`zstandard`'s own `stream_reader` stops silently there, so the frames are read through
`decompressobj`, one per frame, and the last one must be complete."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from llmassay.types import LlmassayError

COMPRESSED_SUFFIXES = (".gz", ".zst")
_READ_SIZE = 1 << 20


def strip_compression(name: str) -> str:
    """`a.jsonl.zst` → `a.jsonl`: the name that says the format inside."""
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def open_text(path: Path) -> TextIO:
    """UTF-8 text with surrogateescape, so one bad line does not end the stream."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="surrogateescape")
    if name.endswith(".zst"):
        return io.TextIOWrapper(io.BufferedReader(_ZstdReader(path)), encoding="utf-8", errors="surrogateescape")
    return path.open("r", encoding="utf-8", errors="surrogateescape")


def corrupt_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean a damaged compressed file (zstandard's only when loaded)."""
    import sys

    zstd = sys.modules.get("zstandard")
    return (EOFError, zlib.error) + ((zstd.ZstdError,) if zstd is not None else ())


class _ZstdReader(io.RawIOBase):
    """The decompressed bytes of a `.zst` file, frame after frame."""

    def __init__(self, path: Path) -> None:
        try:
            import zstandard
        except ImportError:
            raise LlmassayError(f"{path}: reading .zst needs zstandard: pip install 'llmassay[audit]'") from None
        self._decompressor = zstandard.ZstdDecompressor()
        self._file = path.open("rb")
        self._chunks = self._decompressed()
        self._pending = b""

    def _decompressed(self) -> Iterator[bytes]:
        frame = None
        while data := self._file.read(_READ_SIZE):
            while data:
                frame = frame or self._decompressor.decompressobj()
                if out := frame.decompress(data):
                    yield out
                data, frame = (frame.unused_data, None) if frame.eof else (b"", frame)
        if frame is not None:
            raise EOFError("the file ends inside a zstd frame (truncated)")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]  # io's buffer protocol
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n], self._pending = self._pending[:n], self._pending[n:]
        return n

    def close(self) -> None:
        self._file.close()
        super().close()
