"""Stock reservations at the warehouse: a slow answer is logged as an error, not raised."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

LIMIT_MS = 1000


def reserve(request: dict[str, Any]) -> bool:
    if request["waited_ms"] > LIMIT_MS:
        log.error("stock reservation for %s timed out after %dms", request["sku"], request["waited_ms"])
        return False
    return True
