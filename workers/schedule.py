"""The beat schedule, from settings.schedule: triage, the outbox sweep, pull-request sync, pulls.

- triage (every triage_every_s): run_triage starts the top triage_top_k issues within the budgets.
- sweep (every sweep_every_s): sweep_inbox enqueues inbox rows pending longer than sweep_after_s
  (a broker outage when they were accepted) and reaps attempts whose lease ran out.
- sync-pull-requests (every pr_sync_every_s).
- pull-sentry (every pull_every_s), only when the Sentry API and schedule.pull_projects are set.

Each periodic message expires after one period, so a beat that ran while no worker was up does not
leave a pile of stale runs behind.
"""

from __future__ import annotations

from typing import Any

from pipeline.settings import Settings


def _every(task: str, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"task": f"workers.tasks.{task}", "schedule": float(seconds), "options": {"expires": seconds}, **extra}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    s = settings.schedule
    schedule = {
        "triage": _every("run_triage", s.triage_every_s, kwargs={"limit": s.triage_top_k}),
        "sweep": _every("sweep_inbox", s.sweep_every_s),
        "sync-pull-requests": _every("sync_pull_requests", s.pr_sync_every_s),
    }
    if settings.sentry_api_configured and s.pull_projects:
        schedule["pull-sentry"] = _every("pull_configured", s.pull_every_s)
    return schedule
