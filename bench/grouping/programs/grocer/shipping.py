"""Shipping labels for orders."""

from __future__ import annotations

from typing import Any

COUNTRY_NAMES = {"DE": "Germany", "FR": "France", "GB": "United Kingdom", "NL": "Netherlands"}


def shipping_label(order: dict[str, Any]) -> str:
    # Two unrelated bugs: pickup orders carry no address at all, and the country table is short.
    address = order["address"]
    country = COUNTRY_NAMES[address["country"]]
    return f"{order['name']}\n{address['street']}\n{address['city']}\n{country.upper()}"
