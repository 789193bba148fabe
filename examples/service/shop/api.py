"""The request handlers: each takes a parsed request and returns a response, both plain dicts.

A request is {"params": {...}, "body": {...}} as the web layer parses it; a response is
{"status": int, "body": ...}. Errors are left to the web layer, which reports and logs them.
"""

from __future__ import annotations

import logging
from typing import Any

from shop import billing, orders, store, users

logger = logging.getLogger("shop.api")

Request = dict[str, Any]
Response = dict[str, Any]


def not_found(what: str) -> Response:
    return {"status": 404, "body": {"error": f"{what} not found"}}


def checkout(request: Request) -> Response:
    """POST /checkout: price the cart for the customer, applying their coupon."""
    body = request["body"]
    customer = body["customer"]
    code = billing.coupon_code(customer)
    amounts = billing.invoice(body["items"], billing.discount_rate(code))
    logger.info("checkout priced for customer %s: total %.2f", customer["id"], amounts["total"])
    return {"status": 200, "body": {"coupon": code, **amounts}}


def get_order_summary(request: Request) -> Response:
    """GET /orders/<order_id>/summary: what the order page shows at the top."""
    order_id = request["params"]["order_id"]
    order = store.ORDERS.get(order_id)
    if order is None:
        return not_found(f"order {order_id}")
    summary = {
        "id": order["id"],
        "status": order["status"],
        "units": orders.unit_count(order),
        "total": orders.order_total(order),
        "average_item_price": orders.average_item_price(order["items"]),
        "ships_to": orders.shipping_country(order),
    }
    logger.info("order summary served for %s", order_id)
    return {"status": 200, "body": summary}


def get_profile(request: Request) -> Response:
    """GET /users/<user_id>: the profile card in the page header."""
    user_id = request["params"]["user_id"]
    profile = store.PROFILES.get(user_id)
    if profile is None:
        return not_found(f"user {user_id}")
    card = {
        "id": profile["id"],
        "display_name": users.display_name(profile),
        "initials": users.initials(profile),
        "email_domain": users.email_domain(profile["email"]),
        "member_since": profile["joined"],
    }
    return {"status": 200, "body": card}
