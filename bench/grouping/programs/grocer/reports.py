"""The nightly price-per-unit report for the shelf labels."""

from __future__ import annotations

from typing import Any

from grocer.pricing import unit_price


def shelf_labels(catalog: list[dict[str, Any]]) -> list[str]:
    labels = []
    for line in catalog:
        labels.append(f"{line['sku']}: {unit_price(line):.2f} per unit")
    return labels
