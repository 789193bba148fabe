"""Records the example service's crashes as the real sentry-sdk reports them, and its log file.

Run from the repo root:  .venv/bin/python examples/record_events.py [--out DIR] [--log FILE]

Each scenario sends one realistic request through a shop.api handler inside `serve`, which stands in
for a web framework integration: it reports the escaping exception with sentry_sdk.capture_exception.
sentry_sdk.init gets a Transport that writes each event, instead of sending it, to
<out>/<n>-<name>.json; the DSN is never contacted. The service folder goes first on sys.path, so
frames name their files as the service repo does (`shop/orders.py`) and the handler frames are in-app.
Then the same service runs with stdlib logging into the log file: access lines, INFO lines and
`logger.exception` tracebacks, one of them chained (`raise DigestError(...) from exc`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

HERE = Path(__file__).resolve().parent
SERVICE = HERE / "service"
sys.path.insert(0, str(SERVICE))

from shop import __version__, api, jobs

Handler = Callable[[dict[str, Any]], dict[str, Any]]

# (file name, route, handler, request, expected exception type). Scenarios 1 and 2 are one bug met
# with two different customers, so grouping sees two events of one issue.
SCENARIOS: list[tuple[str, str, Handler, dict[str, Any], str]] = [
    ("1-checkout-coupon-null", "POST /checkout", api.checkout,
     {"body": {"customer": {"id": "c-102", "email": "grace@example.com", "coupon": None},
               "items": [{"sku": "CAP-01", "unit_price": 15.0, "quantity": 3}]}},
     "AttributeError"),
    # A till checkout: the customer is known by name only, so nothing in this request is scrubbed and
    # every frame of it can be replayed (event 1's frames carry a scrubbed email and cannot).
    ("2-checkout-coupon-absent", "POST /checkout", api.checkout,
     {"body": {"customer": {"id": "c-103", "name": "Alan Turing"},
               "items": [{"sku": "MUG-01", "unit_price": 12.5, "quantity": 1},
                         {"sku": "TEE-M", "unit_price": 21.0, "quantity": 2}]}},
     "AttributeError"),
    ("3-profile-without-nickname", "GET /users/u-3", api.get_profile,
     {"params": {"user_id": "u-3"}}, "KeyError"),
    ("4-summary-of-empty-draft", "GET /orders/o-1003/summary", api.get_order_summary,
     {"params": {"order_id": "o-1003"}}, "ZeroDivisionError"),
    ("5-summary-of-gift-card-order", "GET /orders/o-1004/summary", api.get_order_summary,
     {"params": {"order_id": "o-1004"}}, "TypeError"),
]

access_log = logging.getLogger("shop.web")


class FileTransport(Transport):
    """Writes each envelope's event item as JSON under `out`, named by the scenario being served."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out
        self.current_name = "unnamed"
        self.written: list[Path] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is None:  # sessions, client reports: not events
            return
        path = self.out / f"{self.current_name}.json"
        path.write_text(json.dumps(event, indent=1, sort_keys=True) + "\n")
        self.written.append(path)


def request_info(route: str, request: dict[str, Any]) -> dict[str, Any]:
    """The event's `request` block, as a framework integration fills it in."""
    method, _, path = route.partition(" ")
    info: dict[str, Any] = {"method": method, "url": f"https://shop.example.com{path}"}
    if "body" in request:
        info["data"] = request["body"]
    return info


def serve(route: str, handler: Handler, request: dict[str, Any]) -> dict[str, Any]:
    """What a framework integration does around a handler: scope per request, report what escapes."""
    with sentry_sdk.new_scope() as scope:
        scope.set_transaction_name(route)
        scope.set_tag("route", route)
        scope.add_event_processor(lambda event, _hint: {**event, "request": request_info(route, request)})
        try:
            return handler(request)
        except Exception as exc:  # noqa: BLE001 -- a server reports whatever escapes, then answers 500
            sentry_sdk.capture_exception(exc)
    return {"status": 500, "body": {"error": "internal server error"}}


def serve_logged(route: str, handler: Handler, request: dict[str, Any]) -> dict[str, Any]:
    """The same request handling with no Sentry: the server logs the traceback instead."""
    try:
        response = handler(request)
    except Exception:  # noqa: BLE001 -- a server logs whatever escapes, then answers 500
        access_log.exception("unhandled error serving %s", route)
        response = {"status": 500}
    access_log.info("%s %s", route, response["status"])
    return response


def record_events(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    transport = FileTransport(out)
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",  # never contacted: the transport writes files
        transport=transport,
        include_local_variables=True,
        release=f"shop@{__version__}",
        environment="production",
        server_name="shop-web-1",
        in_app_include=["shop"],
        in_app_exclude=["__main__"],  # the recorder plays the framework: not the app's code
        project_root=str(SERVICE),
        default_integrations=False,  # no logging hook: the log scenario must not send events
    )
    for name, route, handler, request, _expected in SCENARIOS:
        transport.current_name = name
        if serve(route, handler, request)["status"] != 500:
            raise SystemExit(f"scenario {name} did not crash")
    sentry_sdk.flush()
    sentry_sdk.get_client().close()
    return transport.written


def record_log(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        logging.getLogger("shop").info("shop %s starting, 2 workers", __version__)
        serve_logged("GET /orders/o-1001/summary", api.get_order_summary, {"params": {"order_id": "o-1001"}})
        serve_logged("GET /users/u-1", api.get_profile, {"params": {"user_id": "u-1"}})
        serve_logged("GET /orders/o-1003/summary", api.get_order_summary, {"params": {"order_id": "o-1003"}})
        serve_logged("GET /orders/o-9999/summary", api.get_order_summary, {"params": {"order_id": "o-9999"}})
        logging.getLogger("shop.jobs").info("weekly digest starting for 3 users")
        queued = jobs.run_weekly_digest(["u-1", "u-2", "u-3"])
        logging.getLogger("shop.jobs").warning("weekly digest finished: %d of 3 queued", len(queued))
    finally:
        root.removeHandler(handler)
        handler.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "events", help="folder for the event JSON files")
    parser.add_argument("--log", type=Path, default=HERE / "logs" / "app.log", help="log file to (re)write")
    args = parser.parse_args(argv)
    for path in record_events(args.out):
        print(path)
    record_log(args.log)
    print(args.log)


if __name__ == "__main__":
    main()
