"""`autofix demo`: the whole flow on a copy of examples/, with embedded defaults.

The example service is copied into a fresh git repo with a bare "remote" beside it, in a work
folder (temporary unless given); the recorded events and the log file are ingested; every issue is
triaged; with approve_all each queued candidate is approved, which pushes its branch to the remote.

The store is SQLite, never a configured database: in the state folder when one is configured
(AUTOFIX_HOME, or `home` in autofix.toml), so that `autofix queue` afterwards lists the demo's
candidates, else inside the work folder. The examples are found in the checkout autofix runs from,
else in the copy shipped inside the installed package.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline import bundled
from pipeline.errors import InvalidInput
from pipeline.ingest import ingest_paths
from pipeline.records import CandidateStatus, FixCandidate, Issue
from pipeline.review import approve
from pipeline.settings import RepoConfig, Settings
from pipeline.triage import triage
from pipeline.wiring import Deps
from sandbox.workspace import git

TEST_COMMAND = "python -m pytest -q -p no:cacheprovider"

# Told what the demo is doing now: (step, done, total); total is None for a step without parts.
OnStep = Callable[[str, int, int | None], None]


def find_examples(explicit: Path | None = None) -> Path:
    """The examples folder: the one given, else the checkout's, else the installed package's copy."""
    if explicit is not None:
        if not (explicit / "service").is_dir() or not (explicit / "events").is_dir():
            raise InvalidInput(f"--examples {explicit}", "not an examples folder (it needs service/ and events/)")
        return explicit
    return bundled.folder("examples")


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
    if not any(run.kind == "replays_before" for run in v.runs):
        return "no repro"  # nothing in the event to rebuild the call from
    return "not reproduced" if not v.reproduced else "failed"


@dataclass(frozen=True)
class DemoRow:
    fingerprint: str
    title: str
    culprit: str
    fix_class: str
    cluster: str | None
    count: int
    status: str
    candidate_id: str | None
    strategy: str | None
    verification: str
    confidence: float | None
    branch: str | None


@dataclass(frozen=True)
class DemoReport:
    workdir: str
    kept: bool  # False: the work folder (repo, remote) was removed at the end
    home: str  # the state folder holding the demo's store
    repo: str
    remote: str
    sandbox: str
    issues: tuple[DemoRow, ...]

    @property
    def summary(self) -> dict[str, int]:
        return {"issues": len(self.issues),
                "awaiting_review": sum(1 for r in self.issues if r.status == "awaiting_review"),
                "verified": sum(1 for r in self.issues if r.verification == "verified"),
                "published": sum(1 for r in self.issues if r.branch)}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "issues": [asdict(r) for r in self.issues], "summary": self.summary}


def _row(deps: Deps, issue: Issue, branches: dict[str, str]) -> DemoRow:
    candidates = deps.store.list_candidates(issue_fingerprint=issue.fingerprint)
    best = max(candidates, key=lambda c: (c.verification is not None and c.verification.verified, c.confidence),
               default=None)
    return DemoRow(issue.fingerprint, issue.title, issue.culprit, issue.fix_class, issue.cluster_id, issue.count,
                   issue.status.value,
                   best.id if best else None, best.strategy if best else None, _verification_label(best),
                   best.confidence if best else None, branches.get(issue.fingerprint))


def _quiet(step: str, done: int, total: int | None) -> None:
    return None


def run_demo(examples: Path, base: Settings, approve_all: bool = False, workdir: Path | None = None,
             keep: bool = False, on_step: OnStep = _quiet) -> DemoReport:
    """Run the demo; a temporary work folder is removed at the end unless `keep` (a given one never is)."""
    temporary = workdir is None
    work = Path(tempfile.mkdtemp(prefix="autofix-demo-")) if workdir is None else workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _run(examples, base, approve_all, work, not temporary or keep, on_step)
    finally:
        if temporary and not keep:
            shutil.rmtree(work, ignore_errors=True)


def _run(examples: Path, base: Settings, approve_all: bool, work: Path, kept: bool, on_step: OnStep) -> DemoReport:
    on_step("copying the example service into a git repo", 0, None)
    repo, remote = prepare_repo(examples, work)
    home = base.home.resolve() if "home" in base.model_fields_set else work / ".autofix"
    settings = base.model_copy(update={
        "home": home,
        "store_url": None,  # the demo never touches a configured database
        "repos": [RepoConfig(name="shop", path=repo, remote_url=str(remote), test_command=TEST_COMMAND)],
        "in_app_packages": ["shop"],
        # Environments outlive the demo's own folder: a second demo reuses the first one's.
        "repo_env": base.repo_env.model_copy(update={"cache_dir": base.envs_dir.resolve()}),
    })
    deps = Deps(settings)
    files = _event_files(examples)
    on_step(f"ingesting {len(files)} files", 0, None)
    ingested = ingest_paths(deps.store, files, settings.in_app_packages)
    triage(deps.store, settings, deps.fixers, deps.sandbox_for, limit=100, iterative=deps.iterative,
           on_attempt=lambda done, total, issue: on_step(f"fixing {issue.culprit}", done, total))
    branches: dict[str, str] = {}
    if approve_all:
        queued = [c for c in deps.store.list_candidates(CandidateStatus.AWAITING_REVIEW)
                  if c.issue_fingerprint in ingested.fingerprints]
        for done, candidate in enumerate(queued):
            on_step("approving", done, len(queued))
            branches[candidate.issue_fingerprint] = approve(deps.store, deps.code_host, settings, candidate.id,
                                                            "demo").branch
    issues = [i for i in deps.store.list_issues() if i.fingerprint in ingested.fingerprints]
    rows = tuple(_row(deps, issue, branches) for issue in issues)
    return DemoReport(str(work), kept, str(home), str(repo), str(remote), deps.sandbox.name, rows)
