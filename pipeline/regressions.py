"""Regressions: the crash a merged fix was for came back in a release that contains the fix.

An event's release names what was running. It is resolved to a commit in the repo's local checkout
(the release itself as a tag or sha, then the part after "name@", then that with a "v" before it)
and the fix counts as shipped when that commit contains the pull request's merge commit. An event
of the same fingerprint from such a release marks the fix regressed: the pull request records when,
the candidate becomes "regressed" (learning.py counts it against its kind of fix, and triage never
proposes that patch again) and the issue goes back to "triaged", where triage attempts it anew.

A release that does not resolve, or a merge commit the checkout lacks (fetch it), decides nothing:
the event may come from a build without the fix. Release names come from events, so they are data:
only plain ref-name characters are looked up, after `--end-of-options`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import structlog

from pipeline.errors import ConfigError
from pipeline.ports import Store
from pipeline.records import CandidateStatus, IssueStatus, PullRequest, utcnow
from pipeline.settings import Settings
from sandbox.workspace import GitError, git

log = structlog.get_logger(__name__)

_REF_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@/+-]{0,199}")


def release_names(release: str) -> list[str]:
    """Names a release may go by in the repo: "shop@1.2.3" -> shop@1.2.3, 1.2.3, v1.2.3."""
    names = [release]
    if "@" in release:
        version = release.rsplit("@", 1)[1]
        names += [version, f"v{version}"]
    elif not release.startswith("v"):
        names.append(f"v{release}")
    return [n for n in dict.fromkeys(names) if _REF_NAME.fullmatch(n) and "@{" not in n and ".." not in n]


def resolve_release(checkout: Path, release: str) -> str | None:
    """The commit a release names in the checkout, or None when no name of it resolves."""
    for name in release_names(release):
        try:
            return git(checkout, "rev-parse", "--verify", "--quiet", "--end-of-options",
                       f"{name}^{{commit}}").strip()
        except GitError:
            continue
    return None


def contains(checkout: Path, release_commit: str, commit: str) -> bool | None:
    """Whether `release_commit` contains `commit`; None when the checkout does not have `commit`."""
    try:
        git(checkout, "cat-file", "-e", f"{commit}^{{commit}}")
    except GitError:
        return None
    try:
        git(checkout, "merge-base", "--is-ancestor", commit, release_commit)
        return True
    except GitError:
        return False


def check_recurrences(store: Store, settings: Settings, fingerprints: Iterable[str]) -> list[str]:
    """Mark regressed the merged fixes of these issues whose crash recurred after shipping; reopen
    their issues. Returns the fingerprints reopened. Safe to repeat."""
    reopened = []
    for fingerprint in dict.fromkeys(fingerprints):
        issue = store.get_issue(fingerprint)
        if issue is None or issue.status is not IssueStatus.MERGED or issue.repo is None:
            continue
        try:
            checkout = settings.repo_named(issue.repo).path
        except ConfigError:
            continue
        merged = [pr for pr in store.pull_requests_for(fingerprint) if pr.state == "merged"]
        regressed = [pr for pr in merged if pr.regressed_at is not None]
        if checkout is not None:
            regressed += [pr for pr in merged
                          if pr.regressed_at is None and _recurred(store, checkout, pr, fingerprint)]
        if regressed:
            for pr in regressed:
                store.set_candidate_status(pr.current_candidate_id, CandidateStatus.REGRESSED)
            store.set_issue_status(fingerprint, IssueStatus.TRIAGED)  # last: a rerun still sees "merged"
            reopened.append(fingerprint)
    return reopened


def _recurred(store: Store, checkout: Path, pr: PullRequest, fingerprint: str) -> bool:
    sha = pr.merge_commit_sha or pr.commit_sha
    for event in store.events_for_issue(fingerprint):
        if not event.release:
            continue
        release_commit = resolve_release(checkout, event.release)
        if release_commit is None:
            log.info("release.unresolved", release=event.release, fingerprint=fingerprint)
            continue
        shipped = contains(checkout, release_commit, sha)
        if shipped is None:
            log.warning("regression.merge_commit_unknown", sha=sha, checkout=str(checkout))
            return False
        if shipped:
            store.save_pull_request(replace(pr, regressed_at=utcnow()))
            log.warning("fix.regressed", fingerprint=fingerprint, candidate_id=pr.current_candidate_id,
                        release=event.release, event_id=event.id, merge_commit_sha=sha)
            return True
    return False
