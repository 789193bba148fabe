"""Records Sentry events from the real sentry-sdk into JSON fixtures for the parser tests.

Run from the repo root:  .venv/bin/python tests/data/make_sentry_fixtures.py
It crashes fixture_app.py under sentry_sdk.init with a Transport that writes, instead of sending,
each envelope: its event item as <name>.json and the whole serialised envelope as <name>.envelope.
The REST API shape and the webhook shape cannot be recorded without a Sentry server, so they are
derived from the recorded event the way Sentry's serializers lay them out (camelCase frames,
`entries`, tags as [{key, value}]; webhook `data.event` / `data.error`), and written beside it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fixture_app


class FileTransport(Transport):
    """Writes each captured envelope to disk under the name set in `current_name`."""

    current_name = "unnamed"

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is None:
            return
        (HERE / f"{self.current_name}.json").write_text(json.dumps(event, indent=1, sort_keys=True) + "\n")
        (HERE / f"{self.current_name}.envelope").write_bytes(envelope.serialize())


def record(transport: FileTransport, name: str, exc: BaseException | None = None, message: str = "") -> None:
    transport.current_name = name
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("order_id", "o-1001")
        scope.set_tag("customer_email", "jane.doe@example.com")
        if exc is not None:
            sentry_sdk.capture_exception(exc)
        else:
            sentry_sdk.capture_message(message, level="error")
    sentry_sdk.flush()


def crash(fn: Any, *args: Any) -> BaseException:
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - any crash is what we record; a clean return fails below
        return exc
    raise AssertionError(f"{fn.__name__} did not raise")


def to_api_frame(frame: dict[str, Any]) -> dict[str, Any]:
    lineno = frame.get("lineno")
    pre, post = frame.get("pre_context") or [], frame.get("post_context") or []
    context: list[list[Any]] = []
    if lineno is not None and frame.get("context_line") is not None:
        start = lineno - len(pre)
        lines = [*pre, frame["context_line"], *post]
        context = [[start + i, line] for i, line in enumerate(lines)]
    return {
        "filename": frame.get("filename"),
        "absPath": frame.get("abs_path"),
        "module": frame.get("module"),
        "package": None,
        "platform": None,
        "instructionAddr": None,
        "symbolAddr": None,
        "function": frame.get("function"),
        "rawFunction": None,
        "symbol": None,
        "context": context,
        "lineNo": lineno,
        "colNo": None,
        "inApp": frame.get("in_app"),
        "trust": None,
        "errors": None,
        "vars": frame.get("vars"),
    }


def to_api_event(event: dict[str, Any]) -> dict[str, Any]:
    values = [
        {
            "type": exc.get("type"),
            "value": exc.get("value"),
            "mechanism": exc.get("mechanism"),
            "threadId": None,
            "module": exc.get("module"),
            "stacktrace": {
                "frames": [to_api_frame(f) for f in exc["stacktrace"]["frames"]],
                "framesOmitted": None,
                "registers": None,
                "hasSystemFrames": True,
            },
            "rawStacktrace": None,
        }
        for exc in event.get("exception", {}).get("values", [])
    ]
    entries: list[dict[str, Any]] = []
    if values:
        entries.append(
            {"type": "exception", "data": {"values": values, "hasSystemFrames": True, "excOmitted": None}}
        )
    if "logentry" in event or "message" in event:
        text = (event.get("logentry") or {}).get("message") or event.get("message")
        entries.append({"type": "message", "data": {"formatted": text, "message": None, "params": None}})
    entries.append(
        {
            "type": "request",
            "data": {
                "url": "https://shop.example.com/orders/o-1001?token=abc123",
                "method": "GET",
                "query": [["token", "abc123"]],
            },
        }
    )
    tags = [{"key": k, "value": v, "_meta": None} for k, v in sorted(event.get("tags", {}).items())]
    tags += [
        {"key": "environment", "value": event.get("environment")},
        {"key": "level", "value": event.get("level")},
        {"key": "release", "value": event.get("release")},
    ]
    return {
        "eventID": event["event_id"],
        "id": event["event_id"],
        "groupID": "4504082601",
        "projectID": "1",
        "title": values[-1]["type"] + ": " + values[-1]["value"] if values else "",
        "message": "",
        "platform": event.get("platform"),
        "type": "error" if values else "default",
        "dateCreated": event["timestamp"],
        "dateReceived": event["timestamp"],
        "tags": tags,
        "entries": entries,
        "contexts": event.get("contexts", {}),
        "sdk": event.get("sdk"),
        "release": {"version": event.get("release")} if event.get("release") else None,
        "user": None,
        "errors": [],
    }


def to_webhook(event: dict[str, Any], resource: str) -> dict[str, Any]:
    inner = dict(event)
    inner.update(
        {
            "url": f"https://sentry.io/api/0/projects/acme/shop/events/{event['event_id']}/",
            "web_url": f"https://sentry.io/organizations/acme/issues/4504082601/events/{event['event_id']}/",
            "issue_url": "https://sentry.io/api/0/issues/4504082601/",
            "issue_id": "4504082601",
            # Sentry serialises tags in webhooks as [key, value] pairs.
            "tags": [[k, v] for k, v in sorted(event.get("tags", {}).items())],
        }
    )
    if resource == "error":
        return {
            "action": "created",
            "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
            "data": {"error": inner},
            "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
        }
    inner["title"] = f"{event['exception']['values'][-1]['type']}"
    return {
        "action": "triggered",
        "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
        "data": {
            "event": inner,
            "triggered_rule": "autofix: every new error",
            "issue_alert": {"title": "autofix: every new error", "settings": []},
        },
        "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
    }


def main() -> None:
    transport = FileTransport()
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        include_local_variables=True,
        transport=transport,
        release="shop@1.4.2",
        environment="production",
        default_integrations=False,  # no atexit/threading hooks: the recording stays deterministic
        project_root=str(HERE),
    )
    record(transport, "event_attribute_error", crash(fixture_app.customer_name, "o-1001"))
    record(transport, "event_chained_from", crash(fixture_app.handle_request, "o-4040"))
    record(transport, "event_chained_implicit", crash(fixture_app.parse_quantity, "two"))
    record(transport, "event_message", message="payment 8812 failed for order o-1001")

    recorded = json.loads((HERE / "event_chained_from.json").read_text())
    derived = {
        "api_event_chained_from.json": to_api_event(recorded),
        "webhook_event_alert.json": to_webhook(recorded, "event_alert"),
        "webhook_error_created.json": to_webhook(recorded, "error"),
    }
    for name, payload in derived.items():
        (HERE / name).write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
