"""Sentry payloads -> ErrorEvent: SDK events, REST API events, integration webhooks, envelopes.

Shapes (checked against Sentry's event-payload, envelope and integration-platform docs, and the
payloads sentry-python 2.x sends; fixtures under tests/data/ were recorded from the real SDK):

- event (what an SDK sends): snake_case keys, `exception.values[]` oldest cause first, frames oldest
  call first, tags as an object or as [key, value] pairs.
- API event (GET .../events/{id}/): `entries` of {type, data}; frames camelCase (`absPath`, `lineNo`,
  `inApp`) with `context` as [lineno, line] pairs; tags as [{key, value}].
- webhook: {"action", "data": {"event": ...}} (event_alert) or {"data": {"error": ...}} (error.created);
  the inner object is an event as above, with Sentry's processed fields added.
- envelope: header line, then item header + payload pairs; a `length` in the item header counts the
  payload bytes, else the payload runs to the end of the line. Only `event` items matter here.

Every function raises InvalidInput(source, reason) for malformed input, naming the field at fault;
`source` is where the payload came from (a file path, a request), used only in errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog

from pipeline.errors import InvalidInput, UnsupportedEvent
from pipeline.records import ErrorEvent, ExceptionInfo, Frame, short_id, utcnow
from pipeline.sources._fields import Node, type_name
from pipeline.sources.envelope import normalize_event_id, split_envelope, strict_json

log = structlog.get_logger(__name__)

# Paths of code the app did not write: used only when the SDK marked no frame at all.
_LIBRARY_MARKERS = ("site-packages/", "dist-packages/", "/lib/python", "<frozen ", "/usr/lib/")


def load_json(data: bytes | str, source: str, what: str = "payload") -> Any:
    """Decode JSON, turning a decode error into InvalidInput with its position."""
    try:
        return strict_json(data)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN and Infinity
        raise InvalidInput(source, f"{what} is not JSON: {exc}") from exc


def parse_event(
    payload: Mapping[str, Any],
    source: str = "sentry-event",
    *,
    received_at: datetime | None = None,
    project: str | None = None,
    sentry_issue_id: str | None = None,
    kind: str = "sentry-event",
) -> ErrorEvent:
    """An event as an SDK sends it (store endpoint, envelope item, webhook inner event); `kind`
    becomes ErrorEvent.source."""
    root = Node.root(payload, source, "event")
    return _from_event_node(root, kind, payload, received_at, project, sentry_issue_id=sentry_issue_id)


def parse_api_event(
    payload: Mapping[str, Any],
    source: str = "sentry-api",
    *,
    received_at: datetime | None = None,
    project: str | None = None,
    sentry_issue_id: str | None = None,
) -> ErrorEvent:
    """An event as GET /api/0/projects/{org}/{project}/events/{id}/ returns it."""
    root = Node.root(payload, source, "API event")
    exceptions: tuple[ExceptionInfo, ...] = ()
    message = _non_empty(root.opt_str("message"))
    url = None
    for entry in root.nodes("entries"):
        kind = entry.opt_str("type")
        data = entry.opt_node("data")
        if data is None:
            continue
        if kind == "exception":
            exceptions = tuple(_exception(n, api=True) for n in data.nodes("values"))
        elif kind == "message":
            message = _non_empty(data.opt_str("formatted")) or _non_empty(data.opt_str("message")) or message
        elif kind == "request":
            url = data.opt_str("url")
    event_id = _event_id(root.opt_str("eventID") or root.opt_str("id"))
    if not exceptions and message is None:
        _nothing_to_fix(root, event_id, "has no exception entry and no message")
    tags = _tags(root, "tags")
    release = root.opt_node("release")
    return ErrorEvent(
        id=event_id or _content_id(payload),
        source="sentry-api",
        platform=root.opt_str("platform") or "other",
        exceptions=exceptions,
        received_at=received_at or utcnow(),
        release=release.opt_str("version") if release else tags.get("release"),
        environment=tags.get("environment"),
        tags=tags,
        message=message,
        url=url,
        project=project or _id_text(root, "projectID"),
        timestamp=root.opt_timestamp("dateCreated"),
        raw=payload,
        sentry_issue_id=sentry_issue_id or _id_text(root, "groupID"),
    )


def parse_webhook(
    payload: Mapping[str, Any],
    source: str = "sentry-webhook",
    *,
    received_at: datetime | None = None,
    project: str | None = None,
) -> ErrorEvent:
    """An integration-platform webhook: event_alert (data.event) or error.created (data.error)."""
    root = Node.root(payload, source, "webhook")
    if root.opt_str("action") is None:
        raise InvalidInput(source, "webhook has no 'action'")
    data = root.opt_node("data")
    if data is None:
        raise InvalidInput(source, "webhook has no 'data' object")
    inner = data.opt_node("event") or data.opt_node("error")
    if inner is None:
        if data.has("issue"):
            raise UnsupportedEvent(f"{source}: issue webhooks carry no event; fetch it through the API")
        raise InvalidInput(source, "webhook data has neither 'event' nor 'error'")
    return _from_event_node(inner, "sentry-webhook", payload, received_at, project or _id_text(inner, "project"))


def parse_envelope(
    data: bytes,
    source: str = "sentry-envelope",
    *,
    received_at: datetime | None = None,
    project: str | None = None,
) -> list[ErrorEvent]:
    """The `event` items of an envelope; other items (sessions, transactions...) are skipped."""
    envelope = split_envelope(data, source)
    header = Node.root(envelope.headers, source, "envelope header")
    events = []
    for item in envelope.events():
        event = load_json(item.payload, source, f"envelope item {item.index} payload")
        node = Node.root(event, source, f"envelope item {item.index} payload")
        fallback = _event_id(header.opt_str("event_id")) or short_id(item.payload.decode("utf-8", "replace"))
        events.append(_from_event_node(node, "sentry-envelope", event, received_at, project, fallback))
    log.debug("envelope.parsed", source=source, events=len(events))
    return events


def _from_event_node(
    node: Node,
    kind: str,
    raw: Mapping[str, Any],
    received_at: datetime | None,
    project: str | None,
    fallback_id: str | None = None,
    sentry_issue_id: str | None = None,
) -> ErrorEvent:
    event_id = _event_id(node.opt_str("event_id"))
    exceptions = _exceptions(node)
    message = _event_message(node)
    if not exceptions and message is None:
        _nothing_to_fix(node, event_id, "has no 'exception' and no 'message'")
    request = node.opt_node("request")
    # Processed events (webhooks) carry `datetime` as a string beside a float `timestamp`.
    timestamp = node.opt_timestamp("timestamp") or node.opt_timestamp("datetime")
    return ErrorEvent(
        id=event_id or fallback_id or _content_id(node.value),
        source=kind,
        platform=node.opt_str("platform") or "other",
        exceptions=exceptions,
        received_at=received_at or utcnow(),
        release=node.opt_str("release"),
        environment=node.opt_str("environment"),
        tags=_tags(node, "tags"),
        message=message,
        message_template=_message_template(node),
        url=request.opt_str("url") if request else None,
        project=project,
        timestamp=timestamp,
        raw=raw,
        level=node.opt_str("level"),
        logger=node.opt_str("logger"),
        client_fingerprint=_client_fingerprint(node),
        sentry_issue_id=sentry_issue_id or _id_text(node, "issue_id"),
    )


def _client_fingerprint(node: Node) -> tuple[str, ...]:
    """The event's own `fingerprint` array; SDKs send strings, but a number in it is not an error."""
    items = node.opt_list("fingerprint") or []
    return tuple(item if isinstance(item, str) else json.dumps(item) for item in items)


def _event_id(value: str | None) -> str | None:
    """A UUID in any spelling becomes Sentry's 32 hex digits, so one event is one id whatever route
    it came by (the SDK, a webhook, the API); an id that is not a UUID is kept as given."""
    return (normalize_event_id(value) or value) if value is not None else None


def _id_text(node: Node, key: str) -> str | None:
    """An id Sentry writes as a number or as a string (project, issue_id, groupID)."""
    value = node.value.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return node.opt_str(key)


def _nothing_to_fix(node: Node, event_id: str | None, why: str) -> None:
    if event_id is None:
        subject = node.where or "event"
        raise InvalidInput(node.source, f"{subject} {why} and no event id: not a Sentry event")
    raise UnsupportedEvent(f"{node.source}: event {event_id} {why}")


def _content_id(value: Mapping[str, Any]) -> str:
    return short_id(json.dumps(value, sort_keys=True, default=str))


def _non_empty(text: str | None) -> str | None:
    return text if text else None


def _event_message(node: Node) -> str | None:
    for key in ("logentry", "message"):
        value = node.value.get(key)
        if isinstance(value, Mapping):
            sub = node.opt_node(key)
            assert sub is not None
            text = _non_empty(sub.opt_str("formatted")) or _non_empty(sub.opt_str("message"))
            if text:
                return text
        elif value is not None:
            text = _non_empty(node.opt_str(key))
            if text:
                return text
    return None


def _message_template(node: Node) -> str | None:
    """logentry.message when it came with params, i.e. it is a template and not the final text."""
    entry = node.value.get("logentry")
    if isinstance(entry, Mapping) and entry.get("params") and isinstance(entry.get("message"), str):
        return _non_empty(entry["message"])
    return None


def _exceptions(node: Node) -> tuple[ExceptionInfo, ...]:
    value = node.value.get("exception")
    if value is None:
        return ()
    # The protocol allows `exception` to be the list itself instead of {"values": [...]}.
    values = (
        node.nodes("exception")
        if isinstance(value, list)
        else _require(node.opt_node("exception")).nodes("values")
    )
    return tuple(_exception(n, api=False) for n in values)


def _require(node: Node | None) -> Node:
    assert node is not None  # opt_node only returns None for a missing key, checked by the caller
    return node


def _exception(node: Node, *, api: bool) -> ExceptionInfo:
    exc_type, value = node.opt_str("type"), node.opt_str("value")
    if exc_type is None and value is None:
        node.fail("has neither 'type' nor 'value'")
    mechanism = node.opt_node("mechanism")
    stacktrace = node.opt_node("stacktrace")
    frame_nodes = stacktrace.nodes("frames") if stacktrace else []
    frames = [_frame(f, api=api) for f in frame_nodes]
    return ExceptionInfo(
        type=exc_type or "Error",
        value=value or "",
        module=node.opt_str("module"),
        frames=_settle_in_app(frames),
        mechanism=mechanism.opt_str("type") if mechanism else None,
    )


def _frame(node: Node, *, api: bool) -> tuple[Frame, bool | None]:
    """A frame and its in_app flag as sent (None: not said); the flag is settled per stack."""
    function, filename, module = node.opt_str("function"), node.opt_str("filename"), node.opt_str("module")
    abs_path = node.opt_str("absPath" if api else "abs_path")
    if not (function or filename or module or abs_path):
        node.fail("has no 'function', 'filename', 'module' or 'abs_path'")
    lineno = node.opt_int("lineNo" if api else "lineno")
    if api:
        pre, line, post = _api_context(node, lineno)
    else:
        pre, line, post = (
            node.str_list("pre_context"),
            node.opt_str("context_line"),
            node.str_list("post_context"),
        )
    frame = Frame(
        function=function or "?",
        filename=filename or abs_path or module or "?",
        abs_path=abs_path,
        module=module,
        lineno=lineno,
        context_line=line,
        pre_context=pre,
        post_context=post,
        vars=node.opt_mapping("vars") or {},
    )
    return frame, node.opt_bool("inApp" if api else "in_app")


def _api_context(node: Node, lineno: int | None) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
    pre: list[str] = []
    post: list[str] = []
    line = None
    for i, pair in enumerate(node.opt_list("context") or []):
        where = f"{node.path('context')}[{i}]"
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], int)):
            raise InvalidInput(node.source, f"{where} is {type_name(pair)}, expected a [lineno, line] pair")
        text = pair[1] if isinstance(pair[1], str) else ""
        if lineno is None or pair[0] == lineno:
            line = text
        elif pair[0] < lineno:
            pre.append(text)
        else:
            post.append(text)
    return tuple(pre), line, tuple(post)


def _settle_in_app(frames: list[tuple[Frame, bool | None]]) -> tuple[Frame, ...]:
    """Sentry's rule: once any frame says in_app, unmarked frames are not in-app (sentry-python
    leaves the flag out on library frames); with no frame marked, guess from the path."""
    any_marked = any(flag is not None for _, flag in frames)
    out = []
    for frame, flag in frames:
        if flag is None:
            path = (frame.abs_path or frame.filename).replace("\\", "/")
            flag = False if any_marked else not any(m in path for m in _LIBRARY_MARKERS)
        out.append(frame if frame.in_app == flag else _with_in_app(frame, flag))
    return tuple(out)


def _with_in_app(frame: Frame, in_app: bool) -> Frame:
    return replace(frame, in_app=in_app)


def _tags(node: Node, key: str) -> dict[str, str]:
    """Tags as an object, as [key, value] pairs (webhooks), or as [{key, value}] (the API)."""
    value = node.value.get(key)
    if value is None:
        return {}
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [_tag_pair(node, f"{node.path(key)}[{i}]", item) for i, item in enumerate(value)]
    else:
        raise InvalidInput(
            node.source, f"{node.path(key)} is {type_name(value)}, expected an object or a list"
        )
    tags = {}
    for name, tag_value in pairs:
        if tag_value is None:
            continue
        if not isinstance(name, str) or isinstance(tag_value, (dict, list)):
            raise InvalidInput(node.source, f"{node.path(key)} has a tag {name!r} that is not a string pair")
        tags[name] = tag_value if isinstance(tag_value, str) else json.dumps(tag_value)
    return tags


def _tag_pair(node: Node, where: str, item: object) -> tuple[Any, Any]:
    if isinstance(item, list) and len(item) == 2:
        return item[0], item[1]
    if isinstance(item, Mapping) and "key" in item:
        return item["key"], item.get("value")
    raise InvalidInput(node.source, f"{where} is {type_name(item)}, expected [key, value] or {{key, value}}")
