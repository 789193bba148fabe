"""An attempt in-process (triage.attempt, as `autofix triage` and the workers run it): a fixer that is
rate limited defers the attempt without discarding the other fixers' candidates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.adapters.sql_store import SqlStore
from pipeline.errors import LLMUnavailable
from pipeline.fixers.templates import TemplateFixer
from pipeline.ingest import ingest_paths
from pipeline.ports import Fixer
from pipeline.records import (
    AttemptStatus,
    CandidateStatus,
    CodeContext,
    ErrorEvent,
    Issue,
    IssueStatus,
    Patch,
    Review,
)
from pipeline.settings import RepoConfig, Settings
from pipeline.triage import attempt
from sandbox.config import make_sandbox

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EVENT = EXAMPLES / "events" / "3-profile-without-nickname.json"


class RateLimited:
    """What the LLM fixer does while its endpoint answers 429: raise LLMUnavailable (a TransientError)."""

    name = "llm"

    def propose(self, issue: Issue, event: ErrorEvent, context: CodeContext, history: Sequence[Review]) -> list[Patch]:
        raise LLMUnavailable("429 Too Many Requests")


def _setup(tmp_path: Path, repo_env_cache: Path) -> tuple[SqlStore, Settings, Issue]:
    from pipeline.demo import prepare_repo

    repo = prepare_repo(EXAMPLES, tmp_path / "demo")[0]
    settings = Settings(home=tmp_path / "home", sandbox="bwrap",
                        repos=[RepoConfig(name="shop", path=repo, test_command="python -m pytest -q -p no:cacheprovider")],
                        repo_env={"cache_dir": repo_env_cache})
    store = SqlStore.from_settings(settings)
    (fingerprint,) = ingest_paths(store, [EVENT]).issues
    issue = store.get_issue(fingerprint)
    assert issue is not None
    return store, settings, issue


def test_a_rate_limited_fixer_keeps_the_others_candidates_and_alone_defers_the_attempt(
    tmp_path: Path, repo_env_cache: Path
) -> None:
    store, settings, issue = _setup(tmp_path, repo_env_cache)
    sandbox = make_sandbox("bwrap")
    fixers: list[Fixer] = [RateLimited(), TemplateFixer()]

    outcome = attempt(store, settings, fixers, lambda _: sandbox, issue, tmp_path / "work")

    assert not isinstance(outcome, str) and outcome.deferred == {"llm": "429 Too Many Requests"}
    assert [c.status for c in store.list_candidates(issue_fingerprint=issue.fingerprint)] == [
        CandidateStatus.AWAITING_REVIEW]
    stored = store.get_issue(issue.fingerprint)
    assert stored is not None and stored.status is IssueStatus.AWAITING_REVIEW and stored.repo == "shop"

    store.set_issue_status(issue.fingerprint, IssueStatus.TRIAGED)  # as if the candidate were rejected
    alone = attempt(store, settings, [RateLimited()], lambda _: sandbox, stored, tmp_path / "work")
    assert not isinstance(alone, str) and alone.status == "no_fix"
    last = store.list_attempts(issue.fingerprint)[-1]
    assert last.status is AttemptStatus.DEFERRED and last.retry_after is not None and "429" in (last.error or "")
    after = store.get_issue(issue.fingerprint)
    assert after is not None and after.status is IssueStatus.TRIAGED  # retryable, after the backoff
    store.close()
