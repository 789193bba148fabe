"""`autofix demo`: the whole flow on a copy of examples/, with embedded defaults.

The example service is copied into a fresh git repo with a bare "remote" beside it; the recorded
events and the log file are ingested; every issue is triaged; with --approve-all each queued
candidate is approved, which pushes its branch to the remote.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import structlog

from pipeline.errors import ConfigError
from pipeline.ingest import ingest_paths
from pipeline.records import CandidateStatus, FixCandidate
from pipeline.review import approve
from pipeline.settings import RepoConfig, Settings
from pipeline.triage import triage
from pipeline.wiring import Deps
from sandbox.workspace import git

log = structlog.get_logger(__name__)

TEST_COMMAND = "python -m pytest -q -p no:cacheprovider"


def find_examples(explicit: Path | None = None) -> Path:
    candidates = [explicit] if explicit else [Path.cwd() / "examples", Path(__file__).resolve().parents[1] / "examples"]
    for folder in candidates:
        if folder is not None and (folder / "service").is_dir() and (folder / "events").is_dir():
            return folder
    raise ConfigError("examples/ not found: run from the autofix checkout or pass --examples DIR")


def _git(cwd: Path, *args: str) -> None:
    # HOME in the work folder keeps the user's global git config (signing, hooks) out of the demo.
    git(cwd, *args, env={"GIT_AUTHOR_NAME": "demo", "GIT_AUTHOR_EMAIL": "demo@localhost",
                         "GIT_COMMITTER_NAME": "demo", "GIT_COMMITTER_EMAIL": "demo@localhost",
                         "HOME": str(cwd)})


def prepare_repo(examples: Path, workdir: Path) -> tuple[Path, Path]:
    """Copy the service into a git repo whose origin is a bare repo; returns (repo, remote)."""
    repo, remote = workdir / "repo", workdir / "remote.git"
    shutil.copytree(examples / "service", repo,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc"))
    _git(workdir, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", "The example service, with its bugs")
    _git(repo, "remote", "add", "origin", str(remote))
    _git(repo, "push", "--quiet", "origin", "main")
    return repo, remote


def _event_files(examples: Path) -> list[Path]:
    return sorted((examples / "events").glob("*.json")) + sorted((examples / "logs").glob("*.log"))


def _verification_label(candidate: FixCandidate | None) -> str:
    v = candidate.verification if candidate else None
    if v is None:
        return "none"
    if v.verified:
        return "verified"
    if not any(run.kind == "repro_before" for run in v.runs):
        return "no repro"  # nothing in the event to rebuild the call from
    return "not reproduced" if not v.reproduced else "failed"


def run_demo(examples: Path, base: Settings, approve_all: bool = False, keep: Path | None = None) -> dict[str, Any]:
    workdir = keep or Path(tempfile.mkdtemp(prefix="autofix-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    repo, remote = prepare_repo(examples, workdir)
    settings = base.model_copy(update={
        "home": workdir / ".autofix",
        "store_url": None,  # the demo never touches a configured database
        "repos": [RepoConfig(name="shop", path=repo, remote_url=str(remote), test_command=TEST_COMMAND)],
        "in_app_packages": ["shop"],
    })
    deps = Deps(settings)
    ingest_paths(deps.store, _event_files(examples), settings.in_app_packages)
    triage(deps.store, settings, deps.fixers, deps.sandbox_for, limit=100)
    branches: dict[str, str] = {}
    if approve_all:
        for candidate in deps.store.list_candidates(CandidateStatus.AWAITING_REVIEW):
            branches[candidate.issue_fingerprint] = approve(deps.store, deps.code_host, settings, candidate.id,
                                                            "demo").branch
    rows = []
    for issue in deps.store.list_issues():
        candidates = deps.store.list_candidates(issue_fingerprint=issue.fingerprint)
        best = max(candidates, key=lambda c: (c.verification is not None and c.verification.verified,
                                              c.confidence), default=None)
        rows.append({
            "fingerprint": issue.fingerprint, "title": issue.title, "culprit": issue.culprit,
            "fix_class": issue.fix_class, "cluster": issue.cluster_id,
            "count": issue.count, "status": issue.status.value,
            "candidate_id": best.id if best else None, "strategy": best.strategy if best else None,
            "verification": _verification_label(best), "confidence": best.confidence if best else None,
            "branch": branches.get(issue.fingerprint),
        })
    queued = sum(1 for r in rows if r["status"] == "awaiting_review")
    return {"workdir": str(workdir), "repo": str(repo), "remote": str(remote), "sandbox": deps.sandbox.name,
            "issues": rows, "summary": {"issues": len(rows), "awaiting_review": queued,
                                        "verified": sum(1 for r in rows if r["verification"] == "verified"),
                                        "published": len(branches)}}
