"""Turn an approved candidate into a pull request: title, body (error, root cause, evidence, log),
the commit it starts from, the regression test that goes with the patch, the link back to autofix."""

from __future__ import annotations

import re

from jinja2 import Environment, PackageLoader, StrictUndefined

from pipeline.records import FixCandidate, Issue
from pipeline.settings import RepoConfig, Settings

_env = Environment(loader=PackageLoader("pipeline", "templates"), undefined=StrictUndefined,
                   keep_trailing_newline=True, autoescape=False)  # Markdown, not HTML


def branch_name(issue: Issue, candidate: FixCandidate) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", issue.fix_class.lower()).strip("-")[:30] or "fix"
    return f"autofix/{slug}-{candidate.id[:10]}"


def pr_title(issue: Issue, candidate: FixCandidate) -> str:
    return f"autofix: {candidate.patch.description}"[:120]


def pr_body(issue: Issue, candidate: FixCandidate, event_id: str, exception_type: str, reviewer: str,
            candidate_url: str | None = None, regression_test: str | None = None) -> str:
    return _env.get_template("pr_body.md.j2").render(
        issue=issue, candidate=candidate, patch=candidate.patch, verification=candidate.verification,
        event_id=event_id, exception_type=exception_type, reviewer=reviewer, candidate_url=candidate_url,
        regression_test=regression_test,
    )


def publish_base(candidate: FixCandidate) -> str | None:
    """The commit the branch starts from: the one the candidate was verified on (None when a
    candidate stored before verification recorded it: the code host then uses the default head)."""
    return candidate.base_commit or None


def candidate_url(settings: Settings, candidate_id: str) -> str | None:
    """The candidate's page in `autofix serve`, when the public base URL is configured."""
    base = settings.public_base_url
    return f"{base.rstrip('/')}/candidates/{candidate_id}" if base else None


def regression_test(settings: Settings, repo: RepoConfig, issue: Issue,
                    candidate: FixCandidate) -> dict[str, str]:
    """{path: source} of the reproduction, committed as a regression test under the repo's tests folder.

    Named after the issue, so a later commit on the same pull request replaces it rather than adding
    a second one. Empty when turned off or when the candidate has no reproduction.
    """
    if not settings.pull_requests.regression_test or not candidate.reproduction:
        return {}
    folder = repo.tests_folder.strip("/") or "tests"
    return {f"{folder}/test_autofix_{issue.fingerprint[:12]}.py": candidate.reproduction}
