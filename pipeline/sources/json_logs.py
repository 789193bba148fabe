"""One JSON log line (structlog's JSONRenderer, python-json-logger, most JSON formatters) -> its
record head and, when it carries one, its exception chain.

Where each piece is found, in the order tried:

- message: ``event`` (structlog), ``message`` (python-json-logger), ``msg``
- level: ``level``, ``levelname``, ``severity``, ``log.level``; logger: ``logger``, ``name``,
  ``logger_name``; timestamp: ``timestamp``, ``@timestamp``, ``asctime``, ``time``, ``ts``
- exception: ``exception`` or ``exc_info`` (also ``exc_text``, ``stack_trace``, ``traceback``), as
  the printed traceback (structlog's format_exc_info, python-json-logger) or as structlog's
  dict_tracebacks list, whose stacks come escaping-first and are turned around here. Those dicts
  carry no source lines and no exception module, so such events group with each other but not
  with the same crash reported with its source lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.records import ExceptionInfo, Frame
from pipeline.sources.in_app import guess_in_app
from pipeline.sources.log_records import Record, find_timestamp, level_name, record
from pipeline.sources.tracebacks import parse_traceback_text

_MESSAGE_KEYS = ("event", "message", "msg")
_LEVEL_KEYS = ("level", "levelname", "severity", "log.level", "lvl")
_LOGGER_KEYS = ("logger", "name", "logger_name", "log.logger")
_TIME_KEYS = ("timestamp", "@timestamp", "asctime", "time", "ts")
_EXCEPTION_KEYS = ("exception", "exc_info", "exc_text", "stack_trace", "traceback")


@dataclass(frozen=True)
class JsonRecord:
    record: Record
    exceptions: tuple[ExceptionInfo, ...]  # empty: the record carries no exception


def load_record(text: str) -> Mapping[str, Any] | None:
    """The JSON object a log line holds, or None when the line is not one."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, Mapping) else None


def read_record(obj: Mapping[str, Any]) -> JsonRecord:
    level = next((lv for key in _LEVEL_KEYS if (lv := level_name(obj.get(key))) is not None), None)
    made = record(_timestamp(obj), level, _first_str(obj, _LOGGER_KEYS), _first_str(obj, _MESSAGE_KEYS) or "")
    return JsonRecord(made, _exceptions(obj))


def _first_str(obj: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _timestamp(obj: Mapping[str, Any]) -> datetime | None:
    for key in _TIME_KEYS:
        value = obj.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            try:
                return datetime.fromtimestamp(value, UTC)
            except (OverflowError, OSError, ValueError):
                return None
        if isinstance(value, str) and (found := find_timestamp(value)) is not None:
            return found
    return None


def _exceptions(obj: Mapping[str, Any]) -> tuple[ExceptionInfo, ...]:
    for key in _EXCEPTION_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value:
            return parse_traceback_text(value) or ()
        if isinstance(value, list) and value and all(isinstance(s, Mapping) for s in value):
            return _from_dict_stacks(value)
    return ()


def _from_dict_stacks(stacks: list[Mapping[str, Any]]) -> tuple[ExceptionInfo, ...]:
    chain: list[ExceptionInfo] = []
    for stack in reversed(stacks):  # structlog lists the escaping exception first
        if stack.get("is_group") or not isinstance(stack.get("exc_type"), str):
            return ()
        frames = tuple(_frame(f) for f in stack.get("frames") or () if isinstance(f, Mapping))
        qualified = str(stack["exc_type"])
        module, _, name = qualified.rpartition(".")
        chain.append(ExceptionInfo(type=name, value=str(stack.get("exc_value") or ""),
                                   module=module or None, frames=tuple(f for f in frames if f is not None)))
    return tuple(chain)


def _frame(node: Mapping[str, Any]) -> Frame | None:
    filename, lineno = node.get("filename"), node.get("lineno")
    if not isinstance(filename, str) or not filename or not isinstance(lineno, int) or lineno < 0:
        return None  # structlog's "Skipped frames: N" marker has an empty filename
    local_vars = node.get("locals")
    return Frame(
        function=str(node.get("name") or "?"),
        filename=filename,
        abs_path=filename,
        lineno=lineno,
        context_line=node["line"] if isinstance(node.get("line"), str) else None,
        in_app=guess_in_app(filename),
        vars={str(k): v for k, v in local_vars.items()} if isinstance(local_vars, Mapping) else {},
    )
