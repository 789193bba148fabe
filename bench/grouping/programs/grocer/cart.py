"""Cart totals at checkout."""

from __future__ import annotations

from typing import Any

from grocer.pricing import unit_price


def cart_total(cart: dict[str, Any]) -> float:
    total = 0.0
    for line in cart["lines"]:
        total += unit_price(line) * line["units"]
    return round(total, 2)


def checkout(cart: dict[str, Any]) -> dict[str, Any]:
    return {"cart": cart["id"], "customer": cart["customer"], "total": cart_total(cart)}
