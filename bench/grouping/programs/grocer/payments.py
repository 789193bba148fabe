"""Card payments with retries: when the retry budget runs out the order is logged and left open."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

BUDGET = 3


def settle(payment: dict[str, Any]) -> bool:
    if payment["attempts"] >= BUDGET:
        log.error(
            "payment retry budget exhausted for order %s after %d attempts (customer %s, request %s)",
            payment["order"], payment["attempts"], payment["customer"], payment["request"],
        )
        return False
    return True
