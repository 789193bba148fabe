"""The one Settings object: autofix.toml plus AUTOFIX_* environment variables.

Nothing else in autofix reads os.environ. The file is `AUTOFIX_CONFIG` if set, else ./autofix.toml;
environment variables win over the file. Repos are configured in the file only:

    [[repos]]
    name = "shop"
    path = "/srv/checkouts/shop"          # or remote_url = "git@github.com:acme/shop.git"
    default_branch = "main"
    sentry_projects = ["shop-backend"]
    test_command = "python -m pytest -q"
    [repos.path_mappings]
    "/app/" = ""                           # stack-trace prefix -> repo-relative prefix
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pipeline.errors import ConfigError


class RepoConfig(BaseModel):
    name: str
    path: Path | None = None  # a local checkout
    remote_url: str | None = None  # where branches are pushed / cloned from
    default_branch: str = "main"
    path_mappings: dict[str, str] = Field(default_factory=dict)
    sentry_projects: list[str] = Field(default_factory=list)
    test_command: str | None = None
    # Read-only inside the sandbox besides the system: what the test command needs from outside the
    # checkout, typically the repo's own virtualenv ("/srv/shop/.venv"); its bin/ goes first on PATH.
    sandbox_paths: list[Path] = Field(default_factory=list)
    github_repo: str | None = None  # "owner/name" when the code host is GitHub

    @field_validator("path")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return v.expanduser() if v is not None else None


class GateConfig(BaseModel):
    min_confidence: float = 0.6
    max_changed_lines: int = 40
    max_files: int = 3


class GitHubAppConfig(BaseModel):
    app_id: int | None = None
    installation_id: int | None = None
    private_key_path: Path | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTOFIX_", extra="ignore")

    home: Path = Path(".autofix")
    store_url: str | None = None
    broker_url: str | None = None
    # Redis redelivers an unacknowledged task (a worker died mid-task) after this many seconds.
    broker_visibility_timeout_s: int = 3600

    sentry_client_secret: SecretStr | None = None
    sentry_dsn_keys: str | None = None
    sentry_url: str | None = None
    sentry_org: str | None = None
    sentry_api_token: SecretStr | None = None
    sentry_service_hook_secret: SecretStr | None = None  # a project service hook's secret
    sentry_legacy_token: SecretStr | None = None  # the token in the legacy WebHooks plugin's URL path
    # Sentry project (numeric id as in the DSN, or slug) -> name of the repo serving it; consulted
    # before each repo's sentry_projects list. JSON in the environment: '{"1": "shop"}'.
    sentry_project_repos: dict[str, str] = Field(default_factory=dict)

    # Ingestion endpoints (`autofix serve`) and the inbox.
    ingest_max_body_bytes: int = Field(default=2_000_000, gt=0)  # as received, before decompression
    ingest_max_decompressed_bytes: int = Field(default=10_000_000, gt=0)  # after Content-Encoding
    ingest_max_backlog: int = Field(default=20_000, gt=0)  # pending inbox rows before answering 429
    ingest_retry_after_s: int = Field(default=30, gt=0)  # the Retry-After of that 429
    webhook_window_s: int = Field(default=300, gt=0)  # how far Sentry-Hook-Timestamp may be from now
    # What becomes of an inbox row's raw body once processed: kept as received (secrets and all),
    # replaced by its scrubbed form, or dropped (the stored event keeps the payload, scrubbed). A row
    # that failed keeps its body, for a retry.
    inbox_retention: Literal["keep", "scrub", "drop"] = "drop"

    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None

    sandbox: Literal["auto", "docker", "bwrap", "local"] = "auto"
    sandbox_timeout_s: float = 300.0
    sandbox_memory_mb: int = 2048

    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    github_app: GitHubAppConfig = Field(default_factory=GitHubAppConfig)

    repos: list[RepoConfig] = Field(default_factory=list)
    # Top-level packages of the applications served. A log traceback carries no in-app marks (an SDK
    # sets them from its own in_app_include); with this list, a log frame is in-app exactly when a
    # folder on its path is one of these packages, even inside site-packages.
    in_app_packages: list[str] = Field(default_factory=list)
    gate: GateConfig = Field(default_factory=GateConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("AUTOFIX_CONFIG", "autofix.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        elif "AUTOFIX_CONFIG" in os.environ:
            raise ConfigError(f"AUTOFIX_CONFIG names {toml_path}, which is not a file")
        return tuple(sources)

    # --- derived -----------------------------------------------------------------------------

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{(self.home / 'autofix.db').resolve()}"

    @property
    def dsn_keys(self) -> frozenset[str]:
        raw = self.sentry_dsn_keys or ""
        return frozenset(k.strip() for k in raw.split(",") if k.strip())

    @property
    def sentry_api_configured(self) -> bool:
        return bool(self.sentry_url and self.sentry_api_token)

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    def repo_named(self, name: str) -> RepoConfig:
        for repo in self.repos:
            if repo.name == name:
                return repo
        raise ConfigError(f"no repo named {name!r} is configured")

    def repo_for_project(self, project: str | None) -> RepoConfig | None:
        """The repo serving a Sentry project (id or slug); the only repo when just one is configured."""
        if project and project in self.sentry_project_repos:
            return self.repo_named(self.sentry_project_repos[project])
        for repo in self.repos:
            if project and project in repo.sentry_projects:
                return repo
        return self.repos[0] if len(self.repos) == 1 else None
