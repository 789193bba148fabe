"""Tokens and dollars spent on the model today, shared by every process of one AUTOFIX_HOME.

One small JSON file (AUTOFIX_HOME/llm-usage.json) holds the day (UTC) and its totals; updates take
an exclusive lock on it, so concurrent fix workers add up instead of overwriting each other.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


class DailyUsage:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self, handle: object) -> tuple[int, float]:
        data = json.loads(self.path.read_text() or "{}") if self.path.stat().st_size else {}
        if data.get("day") != _today():
            return 0, 0.0
        return int(data.get("tokens", 0)), float(data.get("usd", 0.0))

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def today(self) -> tuple[int, float]:
        """Tokens and USD spent today (UTC)."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            return self._read(fd)
        finally:
            os.close(fd)

    def add(self, tokens: int, usd: float) -> None:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            spent, cost = self._read(fd)
            text = json.dumps({"day": _today(), "tokens": spent + tokens, "usd": round(cost + usd, 6)})
            os.ftruncate(fd, 0)
            os.pwrite(fd, text.encode(), 0)
        finally:
            os.close(fd)
