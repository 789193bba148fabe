"""Turn an approved candidate into a pull request: title, body (error, root cause, evidence, log)."""

from __future__ import annotations

import re

from jinja2 import Environment, PackageLoader, StrictUndefined

from pipeline.records import FixCandidate, Issue

_env = Environment(loader=PackageLoader("pipeline", "templates"), undefined=StrictUndefined,
                   keep_trailing_newline=True, autoescape=False)  # Markdown, not HTML


def branch_name(issue: Issue, candidate: FixCandidate) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", issue.fix_class.lower()).strip("-")[:30] or "fix"
    return f"autofix/{slug}-{candidate.id[:10]}"


def pr_title(issue: Issue, candidate: FixCandidate) -> str:
    return f"autofix: {candidate.patch.description}"[:120]


def pr_body(issue: Issue, candidate: FixCandidate, event_id: str, exception_type: str, reviewer: str) -> str:
    return _env.get_template("pr_body.md.j2").render(
        issue=issue, candidate=candidate, patch=candidate.patch, verification=candidate.verification,
        event_id=event_id, exception_type=exception_type, reviewer=reviewer,
    )
