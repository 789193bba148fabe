"""Rows of a supplier's CSV price list turned into catalog lines."""

from __future__ import annotations

from typing import Any


def parse_quantity(text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError("invalid value")
    return int(text)


def parse_discount(text: str) -> float:
    if not text.strip().endswith("%"):
        raise ValueError("invalid value")
    return float(text.strip()[:-1]) / 100


def import_row(row: dict[str, str]) -> dict[str, Any]:
    return {
        "sku": row["sku"],
        "bundle_size": parse_quantity(row["bundle_size"]),
        "discount": parse_discount(row["discount"]),
    }
