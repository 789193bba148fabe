"""Settings -> the real adapters. The only place that chooses implementations of the ports.

Each dependency is built on first use, so `autofix issues` never probes a sandbox and `autofix fix`
never opens a database.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from pipeline.adapters.git_host import GitCodeHost
from pipeline.fixers.templates import TemplateFixer
from pipeline.ports import CodeHost, Fixer, Sandbox, Store
from pipeline.settings import RepoConfig, Settings

if TYPE_CHECKING:
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
        from pipeline.adapters.sql_store import SqlStore

        return SqlStore.from_settings(self.settings)

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
        return [TemplateFixer()]

    @cached_property
    def code_host(self) -> CodeHost:
        return GitCodeHost(self.settings.home)
