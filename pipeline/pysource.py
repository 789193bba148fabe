"""Python source files as text, in the encoding they declare (PEP 263), newlines kept as they are.

Every stage that reads a repo's Python source goes through here, so a file with a
`# -*- coding: latin-1 -*-` cookie reads the same everywhere, and a file that cannot be decoded is
one clear `Undecodable` error (the caller skips the file and says why) instead of a crash.
"""

from __future__ import annotations

import io
import tokenize
from pathlib import Path


class Undecodable(ValueError):
    """The file's bytes do not decode in the encoding it declares (or the declaration is bad)."""


def source_encoding(data: bytes) -> str:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:  # an unknown codec in the cookie, or a BOM that contradicts it
        raise Undecodable(str(exc)) from exc
    return encoding


def decode_source(data: bytes, name: str = "<source>") -> str:
    """The text of a source file's bytes; universal newlines are NOT applied (CRLF stays)."""
    encoding = source_encoding(data)
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise Undecodable(f"{name} does not decode as {encoding}: {exc}") from exc


def read_source(path: Path) -> str:
    """The text of a source file in its declared encoding."""
    return decode_source(path.read_bytes(), str(path))
