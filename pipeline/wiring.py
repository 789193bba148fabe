"""Settings -> the real adapters. The only place that chooses implementations of the ports.

Each dependency is built on first use, so `autofix issues` never probes a sandbox and `autofix fix`
never opens a database.
"""

from __future__ import annotations

from functools import cached_property

from pipeline.adapters.git_host import GitCodeHost
from pipeline.fixers.templates import TemplateFixer
from pipeline.ports import CodeHost, Fixer, Sandbox, Store
from pipeline.settings import Settings


class Deps:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def store(self) -> Store:
        from pipeline.adapters.sql_store import SqlStore

        return SqlStore.from_settings(self.settings)

    @cached_property
    def sandbox(self) -> Sandbox:
        from sandbox.config import make_sandbox

        return make_sandbox(self.settings.sandbox)

    @cached_property
    def fixers(self) -> list[Fixer]:
        return [TemplateFixer()]

    @cached_property
    def code_host(self) -> CodeHost:
        return GitCodeHost(self.settings.home)
