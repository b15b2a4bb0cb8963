"""Reading scenario text: UTF-8 with an optional byte-order mark, within a size limit.

Every way in (``run FILE``, ``verdicts DIR``, ``kernel-check FILE``,
``run_scenario(bytes)``) reads through here, so a file is refused the same
way everywhere: too large, not UTF-8, a directory, a device that never ends.
The limits are described in ``docs/limits.md``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Largest scenario text read, in bytes (the library's largest file is about 3 KB).
MAX_SOURCE_BYTES = 4 * 1024 * 1024
#: The UTF-8 byte-order mark, as a character (what decoding its three bytes gives).
BOM = "\ufeff"
#: How many characters of any one word an error message quotes.
MAX_QUOTE = 40


def clip(text: str, limit: int = MAX_QUOTE) -> str:
    """``text`` itself, or its first ``limit`` characters and an ellipsis with the full length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


class SourceError(Exception):
    """The text cannot be read as a scenario; ``line``/``column`` locate a bad byte (0: nowhere)."""

    def __init__(self, name: str, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}: " if self.line else ""
        return f"{self.name}: {where}{self.message}"


@dataclass(frozen=True)
class Source:
    """Decoded scenario text; ``bom``: the bytes began with a UTF-8 byte-order mark (removed)."""

    name: str
    text: str
    bom: bool = False

    @property
    def scenario_text(self) -> str:
        """The text for the parser, mark included: the parser drops it and the run notes it."""
        return BOM + self.text if self.bom else self.text


def decode(data: bytes, name: str = "<scenario>") -> Source:
    """UTF-8 ``data`` (an optional leading byte-order mark is dropped) or :class:`SourceError`."""
    if len(data) > MAX_SOURCE_BYTES:
        raise SourceError(name, _too_large())
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        start = e.start
        line_start = data.rfind(b"\n", 0, start) + 1
        line = data.count(b"\n", 0, start) + 1
        column = len(data[line_start:start].decode("utf-8", errors="replace")) + 1
        raise SourceError(
            name,
            f"not UTF-8: byte 0x{data[start]:02x} cannot start or continue a character "
            "(the file must be UTF-8 text)",
            line,
            column,
        ) from None
    bom = text.startswith(BOM)
    return Source(name, text[1:] if bom else text, bom)


def _too_large() -> str:
    return (f"larger than {MAX_SOURCE_BYTES:,} bytes ({MAX_SOURCE_BYTES // (1024 * 1024)} MiB), "
            "the limit for a scenario; split it into several files")


def read_limited(stream: BinaryIO, name: str) -> bytes:
    """At most :data:`MAX_SOURCE_BYTES` from ``stream``; one byte more is an error."""
    data = stream.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise SourceError(name, _too_large())
    return data


def _read_stdin(label: str) -> Source:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        return decode(read_limited(buffer, label), label)
    # a text stream without bytes underneath (a test's StringIO, a notebook)
    text = sys.stdin.read(MAX_SOURCE_BYTES + 1)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise SourceError(label, _too_large())
    bom = text.startswith(BOM)
    return Source(label, text[1:] if bom else text, bom)


def read_source(file: str | Path, name: str | None = None) -> Source:
    """Read and decode a scenario file (``-``: standard input); raises :class:`SourceError`."""
    if str(file) == "-":
        label = name or "<stdin>"
        try:
            return _read_stdin(label)
        except OSError as e:
            raise SourceError(label, f"cannot read: {e.strerror or e}") from None
    if isinstance(file, str) and not file:
        raise SourceError(name or "''", "cannot read: an empty file name names no file")
    label = name or str(file)
    path = Path(file)
    try:
        if path.is_dir():
            raise SourceError(label, "cannot read: it is a directory")
        with path.open("rb") as f:
            data = read_limited(f, label)
    except OSError as e:
        raise SourceError(label, f"cannot read: {e.strerror or e}") from None
    except ValueError as e:  # an embedded NUL in the path, for one
        raise SourceError(label, f"cannot read: {e}") from None
    return decode(data, label)
