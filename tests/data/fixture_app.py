"""A tiny order service with real bugs; make_sentry_fixtures.py crashes it under the real sentry-sdk.

Kept as a separate module so the recorded frames carry a real module name and in-app file path.
"""

from __future__ import annotations

import json


class OrderNotFound(Exception):
    pass


ORDERS = {"o-1001": {"customer": None, "items": [{"sku": "A1", "qty": 2}]}}


def customer_name(order_id: str) -> str:
    order = ORDERS[order_id]
    customer = order["customer"]
    contact_email = "jane.doe@example.com"  # a local the scrubber must mask
    return customer.name + " <" + contact_email + ">"  # AttributeError: customer is None


def fetch_order(order_id: str) -> dict[str, object]:
    try:
        return ORDERS[order_id]
    except KeyError as exc:
        raise OrderNotFound(f"order {order_id} not found for jane.doe@example.com") from exc


def parse_quantity(raw: str) -> int:
    try:
        return json.loads(raw)["qty"]
    except json.JSONDecodeError:
        return int(raw)  # implicit chain: ValueError while handling JSONDecodeError


def handle_request(order_id: str) -> int:
    order = fetch_order(order_id)
    return len(order)
