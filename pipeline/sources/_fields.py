"""Typed, path-aware reads from untrusted JSON, so every parse error names what is wrong and where.

A `Node` wraps one JSON object with its dotted location ("exception.values[0].stacktrace") and the
source it came from; its readers return typed values or raise InvalidInput with a reason such as
"exception.values[0].stacktrace.frames[3].lineno is a str, expected an integer". JSON null counts
as absent, as Sentry itself treats it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from pipeline.errors import InvalidInput


def type_name(value: object) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }
    return names.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Node:
    value: Mapping[str, Any]
    where: str
    source: str

    @classmethod
    def root(cls, value: object, source: str, what: str = "payload") -> Node:
        if not isinstance(value, Mapping):
            raise InvalidInput(source, f"{what} is {type_name(value)}, expected an object")
        return cls(value, "", source)

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, reason: str) -> NoReturn:
        raise InvalidInput(self.source, f"{self.where} {reason}" if self.where else reason)

    def _wrong(self, key: str, value: object, expected: str) -> NoReturn:
        raise InvalidInput(self.source, f"{self.path(key)} is {type_name(value)}, expected {expected}")

    def has(self, key: str) -> bool:
        return self.value.get(key) is not None

    def opt_str(self, key: str) -> str | None:
        value = self.value.get(key)
        if value is None or isinstance(value, str):
            return value
        self._wrong(key, value, "a string")

    def opt_int(self, key: str) -> int | None:
        value = self.value.get(key)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        self._wrong(key, value, "an integer")

    def opt_bool(self, key: str) -> bool | None:
        value = self.value.get(key)
        if value is None or isinstance(value, bool):
            return value
        self._wrong(key, value, "a boolean")

    def opt_node(self, key: str) -> Node | None:
        value = self.value.get(key)
        if value is None:
            return None
        if isinstance(value, Mapping):
            return Node(value, self.path(key), self.source)
        self._wrong(key, value, "an object")

    def opt_list(self, key: str) -> list[Any] | None:
        value = self.value.get(key)
        if value is None or isinstance(value, list):
            return value
        self._wrong(key, value, "a list")

    def str_list(self, key: str) -> tuple[str, ...]:
        items = self.opt_list(key) or []
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise InvalidInput(
                    self.source, f"{self.path(key)}[{i}] is {type_name(item)}, expected a string"
                )
        return tuple(items)

    def nodes(self, key: str) -> list[Node]:
        """The objects of a list field; a member that is not an object is an error."""
        out = []
        for i, item in enumerate(self.opt_list(key) or []):
            where = f"{self.path(key)}[{i}]"
            if not isinstance(item, Mapping):
                raise InvalidInput(self.source, f"{where} is {type_name(item)}, expected an object")
            out.append(Node(item, where, self.source))
        return out

    def opt_mapping(self, key: str) -> Mapping[str, Any] | None:
        node = self.opt_node(key)
        return node.value if node else None

    def opt_timestamp(self, key: str) -> datetime | None:
        """Sentry accepts RFC 3339 strings and Unix epoch numbers (also as strings)."""
        value = self.value.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self._wrong(key, value, "a timestamp string or number")
        try:
            return parse_timestamp(value)
        except ValueError as exc:
            raise InvalidInput(self.source, f"{self.path(key)} {str(value)[:40]!r} {exc}") from None


def parse_timestamp(value: int | float | str) -> datetime:
    """An aware UTC datetime from an epoch number, an epoch string or an ISO 8601 string.

    ValueError says why not ("is not a timestamp", "is out of range"), never OverflowError or
    OSError: an event's timestamp is untrusted input.
    """
    if isinstance(value, str):
        try:
            epoch = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("is not a timestamp") from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    else:
        epoch = value
    try:
        return datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError("is out of range") from None
