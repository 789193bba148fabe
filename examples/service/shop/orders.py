"""Order arithmetic and the facts the order pages show: totals, unit prices, destination."""

from __future__ import annotations

from typing import Any


def line_total(item: dict[str, Any]) -> float:
    return round(item["unit_price"] * item["quantity"], 2)


def order_total(order: dict[str, Any]) -> float:
    return round(sum(line_total(item) for item in order["items"]), 2)


def unit_count(order: dict[str, Any]) -> int:
    return sum(item["quantity"] for item in order["items"])


def average_item_price(items: list[dict[str, Any]]) -> float:
    """The mean price per unit across an order's lines, shown on the order summary."""
    units = sum(item["quantity"] for item in items)
    total = sum(item["unit_price"] * item["quantity"] for item in items)
    return round(total / units, 2)


def shipping_country(order: dict[str, Any]) -> str | None:
    """The ISO country code the order ships to, upper-cased for the carrier."""
    return order.get("shipping")["country"].upper()
