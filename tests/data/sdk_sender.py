"""Runs under the real sentry-sdk, sending to a DSN over HTTP: the ingestion tests' client process.

    python tests/data/sdk_sender.py DSN SCENARIO COMPRESSION [TAG]

SCENARIO: chained (ValueError raised from a KeyError in app code), logged (logging.error and
logger.exception through the logging integration), handled (capture_exception in an except block),
message (capture_message). COMPRESSION: br (the SDK's default with brotli installed), gzip, none.
Frames of this file are in-app; local variables include a password and a token (from the
environment: SENDER_DB_PASSWORD, SENDER_API_TOKEN), which must arrive scrubbed in the store.
"""

from __future__ import annotations

import logging
import os
import sys

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

COMPRESSION = {
    "br": {"transport_compression_algo": "br"},
    "gzip": {"transport_compression_algo": "gzip"},
    "none": {"transport_compression_level": 0},
}


class PaymentDeclined(Exception):
    pass


def charge(card: dict[str, str], amount: int) -> str:
    # The secrets come from the environment, so the only place they can leak from is the locals.
    password = os.environ.get("SENDER_DB_PASSWORD", "")
    api_token = os.environ.get("SENDER_API_TOKEN", "")
    return card["number"] + str(amount) + password + api_token  # KeyError: 'number'


def checkout(order_id: str) -> str:
    try:
        return charge({"holder": "Ada"}, 42)
    except KeyError as exc:
        raise PaymentDeclined(f"order {order_id}: card has no number") from exc


def main() -> None:
    dsn, scenario, compression = sys.argv[1:4]
    tag = sys.argv[4] if len(sys.argv) > 4 else scenario
    sentry_sdk.init(
        dsn=dsn, include_local_variables=True, release="sender@1.0", environment="test",
        in_app_include=["__main__"], _experiments=COMPRESSION[compression],
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
    )
    sentry_sdk.set_tag("scenario", tag)
    log = logging.getLogger("sender")
    if scenario == "chained":
        checkout("o-1")  # escapes: the SDK's excepthook reports it
    elif scenario == "logged":
        log.error("stock for %s timed out after %d s", "SKU-9", 30)
        try:
            checkout("o-2")
        except PaymentDeclined:
            log.exception("checkout failed for %s", "o-2")
    elif scenario == "handled":
        try:
            charge({}, 7)
        except KeyError as exc:
            sentry_sdk.capture_exception(exc)
    elif scenario == "message":
        sentry_sdk.capture_message("nightly report is late", level="error")
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    sentry_sdk.flush(timeout=10)


if __name__ == "__main__":
    main()
