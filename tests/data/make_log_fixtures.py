"""Writes log fixtures by crashing fixture_app.py under the standard logging module.

Run from the repo root:  .venv/bin/python tests/data/make_log_fixtures.py
- app.log: logging's own layout; logger.exception puts the traceback bare under the message line;
  one record formats the traceback into its message, so the header line carries the prefix; an
  exception group, which the parser skips.
- app_cri.log: the same lines as a container runtime writes them: every line behind its own
  timestamp and stream tag (the CRI log format Kubernetes nodes keep).
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fixture_app


def main() -> None:
    log_path = HERE / "app.log"
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    logger = logging.getLogger("shop")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    logger.info("started worker pid=%d", 4242)
    try:
        fixture_app.handle_request("o-4040")
    except fixture_app.OrderNotFound:
        logger.exception("request failed")  # explicit chain: raise ... from
    try:
        fixture_app.parse_quantity("two")
    except ValueError:
        logger.error("parse failed: %s", traceback.format_exc())  # implicit chain, prefixed header
    try:
        fixture_app.customer_name("o-1001")
    except AttributeError:
        logger.exception("lookup failed")
    try:
        raise ExceptionGroup("batch failed", [ValueError("bad row 3"), KeyError("sku")])
    except ExceptionGroup:
        logger.exception("batch failed")
    logger.info("shutting down")
    handler.close()

    cri_lines = [
        f"2026-05-01T12:00:{i // 10:02d}.{i % 10:09d}Z stderr F {line}"
        for i, line in enumerate(log_path.read_text().splitlines())
    ]
    (HERE / "app_cri.log").write_text("\n".join(cri_lines) + "\n")


if __name__ == "__main__":
    main()
