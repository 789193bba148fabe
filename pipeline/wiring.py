"""Settings -> the real adapters. The only place that chooses implementations of the ports.

Each dependency is built on first use, so `autofix issues` never probes a sandbox and `autofix fix`
never opens a database.
"""

from __future__ import annotations

from functools import cached_property

from pipeline.adapters.git_host import GitCodeHost
from pipeline.fixers.templates import TemplateFixer
from pipeline.ports import CodeHost, Fixer, InboxStore, Sandbox, SentryAPI, Store
from pipeline.settings import RepoConfig, Settings


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

        return make_sandbox(self.settings.sandbox)

    def sandbox_for(self, repo: RepoConfig) -> Sandbox:
        """The sandbox for a repo: the shared one, unless the repo mounts paths of its own."""
        if not repo.sandbox_paths:
            return self.sandbox
        if repo.name not in self._repo_sandboxes:
            from sandbox.config import make_sandbox

            self._repo_sandboxes[repo.name] = make_sandbox(self.settings.sandbox, repo.sandbox_paths)
        return self._repo_sandboxes[repo.name]

    @cached_property
    def fixers(self) -> list[Fixer]:
        return [TemplateFixer()]

    @cached_property
    def code_host(self) -> CodeHost:
        return GitCodeHost(self.settings.home)
