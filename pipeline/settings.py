"""The one Settings object: autofix.toml plus AUTOFIX_* environment variables.

Nothing else in autofix reads os.environ. Environment variables win over the file. Repos are
configured in the file only:

    [[repos]]
    name = "shop"
    path = "/srv/checkouts/shop"          # or remote_url = "git@github.com:acme/shop.git"
    default_branch = "main"
    sentry_projects = ["shop-backend"]
    test_command = "python -m pytest -q"  # else discovered (pytest config, tests/, tox.ini, Makefile)
    setup_command = "pip wheel -w $AUTOFIX_WHEELHOUSE -r requirements/ci.txt"  # optional
    [repos.path_mappings]
    "/app/" = ""                           # stack-trace prefix -> repo-relative prefix

The file is checked strictly (pipeline/config_file.py): an unknown key is an error naming the closest
valid one, and relative paths in it are relative to its folder. A new field on Settings or on a model
it holds is accepted in the file with no other change. The file is `AUTOFIX_CONFIG`, else the nearest
autofix.toml from the current folder up; the state folder is AUTOFIX_HOME, else `.autofix` beside
that file, else ./.autofix. Every error, from the file or the environment, is one ConfigError line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from pipeline import config_file
from pipeline.errors import ConfigError
from pipeline.records import Budgets

HttpUrl = Annotated[str, AfterValidator(config_file.http_url)]
RedisUrl = Annotated[str, AfterValidator(config_file.redis_url)]
StoreUrl = Annotated[str, AfterValidator(config_file.store_url)]
ExistingDir = Annotated[Path, AfterValidator(config_file.existing_dir)]


class RepoConfig(BaseModel):
    name: str
    path: ExistingDir | None = None  # a local checkout
    remote_url: str | None = None  # where branches are pushed / cloned from
    default_branch: str = "main"
    path_mappings: dict[str, str] = Field(default_factory=dict)
    sentry_projects: list[str] = Field(default_factory=list)
    test_command: str | None = None
    # Read-only inside the sandbox besides the system: what the test command needs from outside the
    # checkout, typically the repo's own virtualenv ("/srv/shop/.venv"); its bin/ goes first on PATH.
    sandbox_paths: list[Path] = Field(default_factory=list)
    # How the repo's dependencies install, when requirements*.txt and pyproject do not say it: a shell
    # command run on the host (with network, in a checkout of the commit, never the patch) that fills
    # the folder $AUTOFIX_WHEELHOUSE with wheels; each one it leaves there goes into the repo's env.
    setup_command: str | None = None
    github_repo: str | None = None  # "owner/name" when the code host is GitHub
    # Where approved fixes go: "git" pushes a branch to remote_url (self-hosted remotes); "github"
    # opens a pull request on github_repo through the API, with no local clone.
    host: Literal["git", "github"] = "git"
    tests_folder: str = "tests"  # where the reproduction is committed as a regression test
    reviewers: list[str] = Field(default_factory=list)  # GitHub logins asked to review
    team_reviewers: list[str] = Field(default_factory=list)  # GitHub team slugs asked to review
    # The repo's top-level packages: their log frames are in-app. Empty: the packages its checkout
    # holds (folders with an __init__.py at the root or under src/).
    packages: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _github_needs_a_repo(self) -> RepoConfig:
        if self.host == "github" and (not self.github_repo or self.github_repo.count("/") != 1):
            raise ValueError(f"repo {self.name!r} has host = \"github\" but github_repo is not \"owner/name\"")
        return self


class GateConfig(BaseModel):
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.6
    max_changed_lines: Annotated[int, Field(gt=0)] = 40
    max_files: Annotated[int, Field(gt=0)] = 3
    # Queue only candidates whose repo tests ran. None: on for triage runs, off for `autofix fix`.
    require_tests: bool | None = None
    # Strategy families whose candidates are queued only when the repo's tests ran, whatever the run:
    # a model's edit is unconstrained, and replays alone prove only that the exception is gone (an
    # edit that silences the crash, a `break` out of the loop, passes them). Templates are fixed shapes.
    require_tests_for: list[str] = Field(default_factory=lambda: ["llm"])
    # Hold a candidate whose only passing replay is the crash frame's while the crash has in-app
    # callers that could not be replayed: "no exception there" is all it shows, and a guard that
    # returns early shows that too while its callers get a result they cannot use.
    require_caller_replay: bool = True

    def tests_required(self, triage: bool, strategy: str = "") -> bool:
        if strategy.split(":", 1)[0] in self.require_tests_for and self.require_tests is not False:
            return True
        return triage if self.require_tests is None else self.require_tests


class EnvConfig(BaseModel):
    """Building repos' environments (AUTOFIX_HOME/envs/<key>): where the host finds packages."""

    cache_dir: Path | None = None  # where envs are cached; None: AUTOFIX_HOME/envs (shareable by homes)
    find_links: list[str] = Field(default_factory=list)  # extra wheel folders or URLs for pip
    no_index: bool = False  # never ask a package index: find_links only (air-gapped hosts)
    build_timeout_s: float = 900.0  # for each step: fetching wheels, making the venv, installing


class GitHubAppConfig(BaseModel):
    app_id: int | None = None
    installation_id: int | None = None
    private_key_path: Path | None = None


class GitHubClientConfig(BaseModel):
    """How autofix talks to the GitHub API (github.com or GitHub Enterprise, AUTOFIX_GITHUB_API_URL)."""

    timeout_s: int = 30
    # A rate limit whose reset (or Retry-After) is at most this far off is waited out in-process,
    # at most `rate_limit_retries` times per call; a longer one raises RateLimited (a TransientError).
    max_rate_limit_wait_s: float = 60.0
    rate_limit_retries: int = 3
    # PyGitHub's pacing between requests; GitHub asks for a pause between writes (secondary limits).
    seconds_between_requests: float = 0.25
    seconds_between_writes: float = 1.0


class PullRequestConfig(BaseModel):
    """What a published pull request looks like, and the CI feedback loop on it."""

    draft: bool = False
    labels: list[str] = Field(default_factory=lambda: ["autofix"])
    regression_test: bool = True  # commit the reproduction under the repo's tests_folder
    # Commits pushed to one pull request after its CI failed, before a human must decide.
    ci_fix_cap: int = 2
    needs_human_label: str = "autofix:needs-human"


class LearningConfig(BaseModel):
    """The gate's record of reviewer decisions (pipeline/learning.py): a Beta prior per strategy."""

    enabled: bool = True
    prior_strength: float = 2.0  # pseudo-decisions behind the strategy family's fixed prior
    min_decisions: int = 3  # decisions on a (fix class, strategy) before its record can raise the bar
    target_acceptance: float = 0.5  # below it the bar rises linearly toward a confidence of 1.0
    hold_below: float = 0.2  # below it candidates are held whatever their confidence


class BudgetConfig(BaseModel):
    """What fix attempts may take ([budgets] in the file); every claim checks them (sql_attempts)."""

    max_concurrent_attempts: Annotated[int, Field(gt=0)] = 2  # running at once, over all workers
    max_attempts_per_issue: Annotated[int, Field(gt=0)] = 5
    daily_tokens: Annotated[int, Field(gt=0)] | None = None  # LLM tokens per UTC day; None: no cap
    daily_usd: Annotated[float, Field(gt=0)] | None = None  # LLM cost per UTC day; None: no cap
    # After a failed or deferred attempt the issue waits this long, doubled per consecutive failure.
    retry_backoff_s: Annotated[float, Field(ge=0)] = 300.0
    retry_backoff_max_s: Annotated[float, Field(ge=0)] = 6 * 3600.0
    # A running attempt older than this is taken to be lost (its worker vanished) and reaped;
    # None: the broker's visibility timeout plus a minute (a redelivery gets the first chance).
    attempt_lease_s: Annotated[float, Field(gt=0)] | None = None
    attempt_new_issues: bool = True  # an issue's first event enqueues an attempt, within the budgets


class ScheduleConfig(BaseModel):
    """The beat's periodic tasks ([schedule] in the file; workers/schedule.py)."""

    triage_every_s: Annotated[float, Field(gt=0)] = 600.0
    triage_top_k: Annotated[int, Field(gt=0)] = 10  # issues a triage run starts at most
    sweep_every_s: Annotated[float, Field(gt=0)] = 60.0  # the inbox outbox sweep and the attempt reaper
    sweep_after_s: Annotated[float, Field(ge=0)] = 60.0  # a row pending this long is enqueued again
    pr_sync_every_s: Annotated[float, Field(gt=0)] = 900.0
    pull_every_s: Annotated[float, Field(gt=0)] = 900.0
    pull_projects: list[str] = Field(default_factory=list)  # Sentry projects pulled (with the API set)
    pull_query: str = "is:unresolved"
    pull_limit: Annotated[int, Field(gt=0)] = 100


class ContextConfig(BaseModel):
    """The context engine (pipeline/context/): what code fixers may see, and how it is ranked.

    `include` and `exclude` are gitignore-style globs on repo-relative paths (empty include: every
    file); the repo's own `.autofixignore` (gitignore syntax) adds to exclude. Excluded files never
    enter the symbol index, BM25, retrieval or a fixer's context; a crash inside one gets no fix.
    """

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    ignore_file: str = ".autofixignore"
    # The localisation list: "stack" (crash site, callers outward) or "fused" (stack + BM25). The
    # default is what won on bench/crashes (`autofix bench --localisation-only`).
    ranking: Literal["stack", "fused"] = "fused"
    budget_tokens: Annotated[int, Field(gt=0)] = 3000  # fix_context's budget when a fixer names none
    bm25_hits: Annotated[int, Field(ge=0)] = 5  # BM25 hits added to a fixer's context (after the stack)
    cache: bool = True  # the symbol index cached under AUTOFIX_HOME/context/index


class RevertConfig(BaseModel):
    """The revert fixer (pipeline/fixers/revert.py): undo a recent commit's lines in the crash function."""

    enabled: bool = True
    # A commit older than this, counted back from the crash, is not a suspect.
    max_age_days: Annotated[float, Field(gt=0)] = 14.0
    max_patches: Annotated[int, Field(gt=0)] = 2  # suspect commits proposed per crash, newest first


class ReviewUIConfig(BaseModel):
    """The review UI's sessions and login limits (`autofix serve`)."""

    session_idle_s: Annotated[int, Field(gt=0)] = 1800  # a session unused this long must log in again
    login_max_failures: Annotated[int, Field(gt=0)] = 5  # wrong passwords per name or client ...
    login_window_s: Annotated[int, Field(gt=0)] = 900  # ... within this window, before logins are refused
    login_lockout_s: Annotated[int, Field(gt=0)] = 60  # for this long (429 with Retry-After)
    # Cookies get the Secure flag; unset: when public_base_url is https.
    secure_cookies: bool | None = None


class LLMPrice(BaseModel):
    """What a model costs, in USD per 1,000 tokens."""

    prompt: Annotated[float, Field(ge=0)] = 0.0
    completion: Annotated[float, Field(ge=0)] = 0.0


class LLMConfig(BaseModel):
    """The LLM fixer ([llm] in the file). AUTOFIX_LLM_BASE_URL / _API_KEY / _MODEL win over base_url,
    api_key and model here. A model missing from `prices` costs nothing (a local model)."""

    base_url: HttpUrl | None = None
    api_key: SecretStr | None = None
    model: str | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.0  # the first attempt: the model's best guess
    sample_temperature: Annotated[float, Field(gt=0, le=2)] = 0.8  # retries sample instead of repeating
    max_tokens: Annotated[int, Field(gt=0)] = 768
    attempts: Annotated[int, Field(gt=0)] = 3  # prompts per fix, each seeing the previous verdict
    samples: Annotated[int, Field(gt=0)] = 2  # candidates drawn per retry attempt (the first draws one)
    # Answers drawn after the first verified one, to see whether independent samples agree (a part
    # of the candidate's confidence); 0: stop at the first verified candidate.
    confirm_samples: Annotated[int, Field(ge=0)] = 0
    timeout_s: Annotated[float, Field(gt=0)] = 180.0  # per request
    retries: Annotated[int, Field(ge=0)] = 2  # more tries of a request that timed out or got a 5xx
    # "blocks": SEARCH/REPLACE blocks in plain text; "json": the same edits as JSON under the server's
    # JSON-schema constrained decoding (response_format), for servers that support it (llama.cpp).
    edit_format: Literal["blocks", "json"] = "blocks"
    # How the schema is sent: OpenAI's response_format {"type": "json_schema", ...} (OpenAI, vLLM), or
    # llama-cpp-python's server's {"type": "json_object", "schema": ...} (it refuses the first).
    schema_style: Literal["openai", "llama.cpp"] = "openai"
    context_tokens: Annotated[int, Field(gt=0)] = 1500  # code in the prompt (pipeline/context/engine.py)
    # Show and allow edits to the in-app callers too, not only the crashing function (a small model
    # does better with one function; a large one can use the callers).
    edit_callers: bool = False
    budget_tokens_per_fix: Annotated[int, Field(gt=0)] = 40_000
    budget_usd_per_fix: Annotated[float, Field(ge=0)] = 0.50
    budget_tokens_per_day: Annotated[int, Field(gt=0)] = 2_000_000
    budget_usd_per_day: Annotated[float, Field(ge=0)] = 20.0
    # Patches touching these (gitignore-style globs on repo-relative paths) are dropped unverified.
    protected_paths: list[str] = Field(default_factory=lambda: ["**/auth/**", "**/billing/**", "**/migrations/**"])
    prices: dict[str, LLMPrice] = Field(default_factory=lambda: {
        "gpt-4o": LLMPrice(prompt=0.0025, completion=0.01),
        "gpt-4o-mini": LLMPrice(prompt=0.00015, completion=0.0006),
        "gpt-4.1": LLMPrice(prompt=0.002, completion=0.008),
        "gpt-4.1-mini": LLMPrice(prompt=0.0004, completion=0.0016),
    })

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    def price(self, model: str) -> LLMPrice:
        return self.prices.get(model, LLMPrice())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTOFIX_", extra="ignore")

    home: Path = Field(default_factory=lambda: config_file.default_home(_config_path()))
    store_url: StoreUrl | None = None
    broker_url: RedisUrl | None = None
    # Redis redelivers an unacknowledged task (a worker died mid-task) after this many seconds.
    broker_visibility_timeout_s: int = 3600
    # Who processes accepted inbox rows in `autofix serve`: "celery" sends each row's id to the
    # ingest queue (production), "in_process" a thread of the server; "auto": celery when
    # broker_url is set.
    ingest_processing: Literal["auto", "in_process", "celery"] = "auto"
    budgets: BudgetConfig = Field(default_factory=BudgetConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)

    sentry_client_secret: SecretStr | None = None
    sentry_dsn_keys: str | None = None
    sentry_url: HttpUrl | None = None
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

    llm_base_url: HttpUrl | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    llm: LLMConfig = Field(default_factory=LLMConfig)  # [llm]; the three variables above win over it

    sandbox: Literal["auto", "docker", "bwrap", "local"] = "auto"
    # docker backend: the image to run; unset, the one `autofix sandbox image` built from deploy/sandbox/.
    sandbox_image: str | None = None
    sandbox_timeout_s: float = 300.0
    sandbox_memory_mb: int = 2048

    github_token: SecretStr | None = None
    github_api_url: HttpUrl = "https://api.github.com"
    github_app: GitHubAppConfig = Field(default_factory=GitHubAppConfig)
    github_client: GitHubClientConfig = Field(default_factory=GitHubClientConfig)
    pull_requests: PullRequestConfig = Field(default_factory=PullRequestConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)
    revert: RevertConfig = Field(default_factory=RevertConfig)
    # Where reviewers reach autofix (`autofix serve`): pull requests link to {this}/candidates/{id}.
    public_base_url: str | None = None
    # Signs the review UI's session cookies; unset: a random key kept in AUTOFIX_HOME/session.key.
    session_secret: SecretStr | None = None
    review_ui: ReviewUIConfig = Field(default_factory=ReviewUIConfig)

    repos: list[RepoConfig] = Field(default_factory=list)
    # Top-level packages of the applications served. A log traceback carries no in-app marks (an SDK
    # sets them from its own in_app_include); with this list, a log frame is in-app exactly when a
    # folder on its path is one of these packages, even inside site-packages.
    in_app_packages: list[str] = Field(default_factory=list)
    gate: GateConfig = Field(default_factory=GateConfig)
    repo_env: EnvConfig = Field(default_factory=EnvConfig)  # [repo_env] in the file
    context: ContextConfig = Field(default_factory=ContextConfig)  # [context] in the file

    _config_file: Path | None = PrivateAttr(default=None)

    def __init__(self, **values: Any) -> None:
        """Settings from the arguments, the environment and the file; ConfigError (one line) if invalid."""
        path = _config_path()
        try:
            super().__init__(**values)
        except ValidationError as exc:
            file_keys = set(config_file.load(path, type(self))) if path is not None else set()
            raise ConfigError(config_file.describe(exc, type(self), path, file_keys, os.environ)) from None
        self._config_file = path

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_path()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=config_file.load(path, settings_cls)))
        return tuple(sources)

    @property
    def config_file(self) -> Path | None:
        """The autofix.toml these settings were read from, if any."""
        return self._config_file

    # --- derived -----------------------------------------------------------------------------

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{(self.home / 'autofix.db').resolve()}"

    @property
    def processing_mode(self) -> Literal["in_process", "celery"]:
        if self.ingest_processing == "auto":
            return "celery" if self.broker_url else "in_process"
        if self.ingest_processing == "celery" and not self.broker_url:
            raise ConfigError("ingest_processing = \"celery\" needs broker_url (AUTOFIX_BROKER_URL)")
        return self.ingest_processing

    def claim_budgets(self) -> Budgets:
        """The budgets every claim of an attempt checks."""
        b = self.budgets
        lease = b.attempt_lease_s or float(self.broker_visibility_timeout_s + 60)
        return Budgets(b.max_concurrent_attempts, b.max_attempts_per_issue, b.daily_tokens, b.daily_usd, lease)

    @property
    def envs_dir(self) -> Path:
        """Where repos' environments are built and cached."""
        return self.repo_env.cache_dir or self.home / "envs"

    @property
    def context_cache_dir(self) -> Path | None:
        """Where symbol indexes are cached (None: caching off)."""
        return self.home / "context" / "index" if self.context.cache else None

    @property
    def dsn_keys(self) -> frozenset[str]:
        raw = self.sentry_dsn_keys or ""
        return frozenset(k.strip() for k in raw.split(",") if k.strip())

    @property
    def sentry_api_configured(self) -> bool:
        return bool(self.sentry_url and self.sentry_api_token)

    @property
    def llm_configured(self) -> bool:
        return self.llm_settings.configured

    @property
    def llm_settings(self) -> LLMConfig:
        """The [llm] section with AUTOFIX_LLM_BASE_URL / _API_KEY / _MODEL applied over it."""
        top = {k: v for k, v in (("base_url", self.llm_base_url), ("api_key", self.llm_api_key),
                                 ("model", self.llm_model)) if v is not None}
        return self.llm.model_copy(update=top) if top else self.llm

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


def _config_path() -> Path | None:
    return config_file.find_config(os.environ, Path.cwd())


LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class LogSettings(BaseSettings):
    """AUTOFIX_LOG_LEVEL and AUTOFIX_LOG_FORMAT, from the environment only.

    Separate from Settings because logging is set up before autofix.toml is read: a broken file is
    then reported through the logging the user asked for. Unset values take the process's defaults
    (the CLI: warning, console; worker, beat and serve: info, json).
    """

    model_config = SettingsConfigDict(env_prefix="AUTOFIX_LOG_", extra="ignore")

    level: Annotated[LogLevel | None, BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)] = None
    format: Literal["console", "json"] | None = None

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(config_file.describe(exc, type(self), None, set(), os.environ)) from None
