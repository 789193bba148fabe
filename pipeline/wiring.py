"""Settings -> the real adapters. The only place that chooses implementations of the ports.

Each dependency is built on first use, so `autofix issues` never probes a sandbox and `autofix fix`
never opens a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from pipeline.accounts import Accounts
from pipeline.adapters.git_host import GitCodeHost
from pipeline.fixers.revert import RevertFixer
from pipeline.fixers.templates import TemplateFixer
from pipeline.log_templates import Templates
from pipeline.ports import CodeHost, Fixer, InboxStore, PullRequestStatus, Sandbox, SentryAPI, Store
from pipeline.records import Patch, PullRequest
from pipeline.settings import RepoConfig, Settings
from pipeline.source_lines import SourceLines
from pipeline.sources.in_app import InAppRules

if TYPE_CHECKING:
    from pipeline.flow import IterativeFixer
    from sandbox.config import DockerConfig


def docker_config(settings: Settings) -> DockerConfig:
    """The docker backend's config from the settings (the image; the engine comes from DOCKER_HOST)."""
    from sandbox.config import DockerConfig

    return DockerConfig(image=settings.sandbox_image)


class Deps:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._repo_sandboxes: dict[str, Sandbox] = {}

    @cached_property
    def store(self) -> Store:
        return self.inbox_store

    @cached_property
    def inbox_store(self) -> InboxStore:
        """The store with its inbox: the same object as `store`."""
        from pipeline.adapters.sql_store import SqlStore

        return SqlStore.from_settings(self.settings)

    @cached_property
    def accounts(self) -> Accounts:
        """Reviewers, API tokens and the audit log: kept by the store (the same object)."""
        from pipeline.adapters.sql_store import SqlStore

        store = self.inbox_store
        assert isinstance(store, SqlStore)
        return store

    @cached_property
    def processing_store(self) -> InboxStore:
        """The store as the inbox stage uses it in `autofix serve`: on SQLite without an fsync per
        commit, which is safe for work that is redone when lost (see SqlStore)."""
        from pipeline.adapters.sql_store import SqlStore

        return SqlStore.from_settings(self.settings, sqlite_synchronous="NORMAL")

    @cached_property
    def sentry_api(self) -> SentryAPI | None:
        """The Sentry REST API client, or None when AUTOFIX_SENTRY_URL / _API_TOKEN are unset."""
        if not self.settings.sentry_api_configured:
            return None
        from pipeline.adapters.sentry_api import SentryClient

        return SentryClient.from_settings(self.settings)

    @cached_property
    def sandbox(self) -> Sandbox:
        from sandbox.config import make_sandbox

        return make_sandbox(self.settings.sandbox, docker=docker_config(self.settings))

    def sandbox_for(self, repo: RepoConfig) -> Sandbox:
        """The sandbox for a repo: the shared one, unless the repo mounts paths of its own."""
        if not repo.sandbox_paths:
            return self.sandbox
        if repo.name not in self._repo_sandboxes:
            from sandbox.config import make_sandbox

            self._repo_sandboxes[repo.name] = make_sandbox(self.settings.sandbox, repo.sandbox_paths,
                                                           docker=docker_config(self.settings))
        return self._repo_sandboxes[repo.name]

    @cached_property
    def fixers(self) -> list[Fixer]:
        """Templates first (cheap, deterministic), then partial reverts of recent release commits."""
        return [TemplateFixer(), RevertFixer(self.settings.revert)]

    @cached_property
    def iterative(self) -> list[IterativeFixer]:
        """The fixers that learn from each verdict: the LLM fixer, when an LLM is configured."""
        if not self.settings.llm_configured:
            return []
        from pipeline.adapters.llm_client import OpenAIClient
        from pipeline.fixers.llm import LLMFixer
        from pipeline.fixers.llm.budget import DailyUsage

        config = self.settings.llm_settings
        return [LLMFixer(OpenAIClient(config), config, DailyUsage(self.settings.home / "llm-usage.json"))]

    @cached_property
    def code_host(self) -> CodeHost:
        """The code host of whichever repo a call names (RepoConfig.host)."""
        return RepoHosts(self)

    def code_host_for(self, repo: RepoConfig) -> CodeHost:
        if repo.host == "github":
            return self.github_host
        return self.git_host

    @cached_property
    def git_host(self) -> CodeHost:
        return GitCodeHost(self.settings.home)

    @cached_property
    def github_host(self) -> CodeHost:
        from pipeline.adapters.github_client import GitHubCalls, make_github
        from pipeline.adapters.github_host import GitHubCodeHost

        settings = self.settings
        return GitHubCodeHost(make_github(settings), GitHubCalls(settings.github_client), settings.pull_requests)


    @cached_property
    def in_app(self) -> InAppRules:
        """Which log frames are the apps' own: configured packages and prefixes, else the guess."""
        return InAppRules.from_settings(self.settings)

    @cached_property
    def templates(self) -> Templates:
        """The message templates mined so far (Drain3 state in AUTOFIX_HOME)."""
        return Templates(self.settings.home)

    @cached_property
    def source_lines(self) -> SourceLines:
        """Source lines remembered for frames that arrive without one (state in AUTOFIX_HOME)."""
        return SourceLines(self.settings.home)


class RepoHosts:
    """A CodeHost that hands each call to the host its repo is configured with."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def open_pull_request(
        self, repo: RepoConfig, branch: str, patch: Patch, title: str, body: str, candidate_id: str,
        created_at: datetime, *, base_sha: str | None = None, files: Mapping[str, str] | None = None,
    ) -> PullRequest:
        return self._deps.code_host_for(repo).open_pull_request(
            repo, branch, patch, title, body, candidate_id, created_at, base_sha=base_sha, files=files)

    def pull_request_state(self, repo: RepoConfig, pr: PullRequest) -> str:
        return self._deps.code_host_for(repo).pull_request_state(repo, pr)

    def pull_request_status(self, repo: RepoConfig, pr: PullRequest) -> PullRequestStatus:
        return self._deps.code_host_for(repo).pull_request_status(repo, pr)
