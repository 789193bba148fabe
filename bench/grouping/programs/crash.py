"""Run one grocer scenario so that bench/grouping/make_set.py can capture what it reports.

Run under `python -m pipeline.benchmark.capture` (which owns sys.argv), so the scenario comes from
the environment: GROUPING_SCENARIO names it, GROUPING_INPUT holds its JSON input. Crash scenarios
let the exception escape. Message scenarios report a condition that is not an exception, the two
ways an app does: sentry_sdk.capture_message with the text already formatted, or a logging call
passed to the SDK's logging EventHandler, which sends the %-template and its arguments apart.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

import sentry_sdk
from grocer import accounts, cart, imports, reports, shipping
from sentry_sdk.integrations.logging import EventHandler


def _message(payload: dict[str, Any]) -> None:
    sentry_sdk.capture_message(payload["text"], level="warning")


def _logged(payload: dict[str, Any]) -> None:
    logger = logging.getLogger(payload["logger"])
    logger.addHandler(EventHandler(level=logging.ERROR))
    logger.error(payload["template"], *payload["args"])


SCENARIOS: dict[str, Callable[[Any], Any]] = {
    "checkout": cart.checkout,
    "shelf-labels": reports.shelf_labels,
    "greeting": lambda p: accounts.greeting({}, p["account_id"], p["email"]),
    "import-row": imports.import_row,
    "shipping-label": shipping.shipping_label,
    "message": _message,
    "logged": _logged,
}

if __name__ == "__main__":
    SCENARIOS[os.environ["GROUPING_SCENARIO"]](json.loads(os.environ["GROUPING_INPUT"]))
