"""The beat schedule: the periodic triage run and the pull-request sync.

The periods are constants until Settings grows fields for them. Each periodic message expires after
one period, so a beat that ran while no worker was up does not leave a pile of stale runs behind.
"""

from __future__ import annotations

from typing import Any

TRIAGE_EVERY_S = 10 * 60
TRIAGE_LIMIT = 10  # issues attempted per run
PR_SYNC_EVERY_S = 15 * 60


def beat_schedule() -> dict[str, dict[str, Any]]:
    return {
        "triage": {
            "task": "workers.tasks.run_triage",
            "schedule": float(TRIAGE_EVERY_S),
            "kwargs": {"limit": TRIAGE_LIMIT},
            "options": {"expires": TRIAGE_EVERY_S},
        },
        "sync-pull-requests": {
            "task": "workers.tasks.sync_pull_requests",
            "schedule": float(PR_SYNC_EVERY_S),
            "options": {"expires": PR_SYNC_EVERY_S},
        },
    }
