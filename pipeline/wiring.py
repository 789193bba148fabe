"""Settings -> the real adapters. The only place that chooses implementations of the ports.

Each dependency is built on first use, so `autofix issues` never probes a sandbox and `autofix fix`
never opens a database.
"""

from __future__ import annotations

from functools import cached_property

from pipeline.adapters.git_host import GitCodeHost
from pipeline.fixers.templates import TemplateFixer
from pipeline.log_templates import Templates
from pipeline.ports import CodeHost, Fixer, Sandbox, Store
from pipeline.settings import RepoConfig, Settings
from pipeline.source_lines import SourceLines
from pipeline.sources.in_app import InAppRules


class Deps:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._repo_sandboxes: dict[str, Sandbox] = {}

    @cached_property
    def store(self) -> Store:
        from pipeline.adapters.sql_store import SqlStore

        return SqlStore.from_settings(self.settings)

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
