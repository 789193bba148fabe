"""A store seeded with candidates for the review UI and API tests, through the Store API.

Two issues with candidates awaiting review (one with a held sibling) in repo "shop", whose code
host is the GitHub fake: the patches apply to the file the fake was seeded with, so approving one
really commits it and opens a pull request there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.accounts import Reviewer, hash_password, new_token
from pipeline.adapters.sql_store import SqlStore
from pipeline.records import (
    CandidateStatus,
    Cost,
    ErrorEvent,
    ExceptionInfo,
    FixCandidate,
    Frame,
    Issue,
    IssueStatus,
    Patch,
    SandboxRun,
    Verification,
)

WHEN = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
APP_PY = "def display_name(user):\n    return user['name'].title()\n\n\ndef total(items):\n    return sum(items) / len(items)\n"
FILES = {"shop/__init__.py": "", "shop/app.py": APP_PY}

NAME_DIFF = ("""--- a/shop/app.py
+++ b/shop/app.py
@@ -1,3 +1,3 @@
 def display_name(user):
-    return user['name'].title()
+    return (user.get('name') or '').title()
""" + " \n")
TOTAL_DIFF = """--- a/shop/app.py
+++ b/shop/app.py
@@ -4,3 +4,3 @@
\x20
 def total(items):
-    return sum(items) / len(items)
+    return sum(items) / len(items) if items else 0
"""
HELD_DIFF = TOTAL_DIFF.replace("if items else 0", "if len(items) else None")


def config(fake_base_url: str) -> str:
    del fake_base_url  # the URL goes in the environment (AUTOFIX_GITHUB_API_URL)
    return ('[[repos]]\nname = "shop"\nhost = "github"\ngithub_repo = "acme/shop"\n\n'
            "[github_client]\nseconds_between_requests = 0\nseconds_between_writes = 0\n")


def _event(event_id: str, fingerprint: str, exc_type: str, value: str, function: str, line: int, code: str, password: str) -> ErrorEvent:
    frames = (Frame("handle", "shop/views.py", lineno=12, context_line=f"return app.{function}(payload)"),
              Frame(function, "shop/app.py", abs_path="/srv/shop/shop/app.py", lineno=line, context_line=code,
                    vars={"password": password, "user": "{'id': 7}"}))
    return ErrorEvent(event_id, "sentry-event", "python", (ExceptionInfo(exc_type, value, frames=frames),), WHEN,
                      release="shop@1.4.2", environment="production", project="1", fingerprint=fingerprint)


def _runs(kind_ok: bool = True) -> Verification:
    runs = (SandboxRun("replays_before", "python -m pytest -q .autofix/test_repro.py", 1, 0.84,
                       "E   KeyError: 'name'\nAPI_TOKEN=sk-live-abcdef0123456789 leaked\n1 failed"),
            SandboxRun("replays_after", "python -m pytest -q .autofix/test_repro.py", 0, 0.71, "1 passed"),
            SandboxRun("tests_after", "python -m pytest -q tests", 0, 2.05, "12 passed"))
    return Verification(runs, reproduced=True, repro_passes_after=kind_ok, tests_pass_after=True)


@dataclass
class Seeded:
    name_id: str
    total_id: str
    held_id: str
    token: str
    base_sha: str


def seed(store: SqlStore, base_sha: str, reviewer: str = "alice") -> Seeded:
    e1 = _event("evt-name", "fp-name", "KeyError", "'name'", "display_name", 2, "return user['name'].title()", "hunter2")
    e2 = _event("evt-total", "fp-total", "ZeroDivisionError", "division by zero", "total", 6, "return sum(items) / len(items)",
                "s3cret")
    i1 = Issue("fp-name", "KeyError: 'name'", "shop.app in display_name", "missing_key", WHEN - timedelta(days=2),
               WHEN, count=42, priority=5.0, status=IssueStatus.AWAITING_REVIEW, repo="shop", project="1",
               latest_event_id="evt-name", sentry_issue_id="4711")
    i2 = Issue("fp-total", "ZeroDivisionError: division by zero", "shop.app in total", "zero_division",
               WHEN - timedelta(days=1), WHEN, count=3, priority=1.5, status=IssueStatus.AWAITING_REVIEW, repo="shop",
               project="1", latest_event_id="evt-total")
    store.record_event(e1, i1)
    store.record_event(e2, i2)
    parts = {"verification": 0.9, "strategy_prior": 0.7, "diff_size": 0.95}
    name = FixCandidate("fp-name", Patch("template:missing_key", NAME_DIFF, ("shop/app.py",),
                                         "display_name: a user without a name no longer raises KeyError"),
                        _runs(), 0.86, parts, Cost(seconds=3.6), CandidateStatus.AWAITING_REVIEW, WHEN,
                        base_commit=base_sha)
    total = FixCandidate("fp-total", Patch("template:zero_division", TOTAL_DIFF, ("shop/app.py",),
                                           "total: an empty list totals 0 instead of dividing by zero"),
                         _runs(), 0.74, parts, Cost(seconds=3.1), CandidateStatus.AWAITING_REVIEW, WHEN,
                         base_commit=base_sha)
    held = FixCandidate("fp-total", Patch("template:zero_division_none", HELD_DIFF, ("shop/app.py",),
                                          "total: None for an empty list"),
                        _runs(kind_ok=False), 0.31, parts, Cost(), CandidateStatus.HELD, WHEN, base_commit=base_sha)
    for c in (name, total, held):
        store.save_candidate(c)
    store.save_reviewer(Reviewer(reviewer, hash_password(PASSWORD)))
    token, record = new_token("chatops")
    store.save_token(record)
    return Seeded(name.id, total.id, held.id, token, base_sha)
