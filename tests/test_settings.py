"""Settings: one object from autofix.toml and AUTOFIX_* variables, environment winning."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.settings import Settings

TOML = """
sandbox = "bwrap"
llm_model = "from-file"

[gate]
min_confidence = 0.8

[[repos]]
name = "shop"
path = "/srv/shop"
remote_url = "git@example.com:acme/shop.git"
default_branch = "trunk"
sentry_projects = ["shop-backend", "shop-worker"]
test_command = "pytest -q"
[repos.path_mappings]
"/app/" = ""

[[repos]]
name = "billing"
path = "/srv/billing"
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("AUTOFIX_LLM_MODEL", "AUTOFIX_SANDBOX", "AUTOFIX_HOME", "AUTOFIX_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "autofix.toml"
    path.write_text(TOML)
    monkeypatch.setenv("AUTOFIX_CONFIG", str(path))
    return path


def test_repos_and_gate_come_from_the_file(config_file: Path) -> None:
    settings = Settings()
    shop = settings.repo_named("shop")
    assert shop.path == Path("/srv/shop")
    assert shop.default_branch == "trunk"
    assert shop.path_mappings == {"/app/": ""}
    assert shop.test_command == "pytest -q"
    assert settings.gate.min_confidence == 0.8
    assert settings.sandbox == "bwrap"


def test_environment_variables_win_over_the_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOFIX_LLM_MODEL", "from-env")
    monkeypatch.setenv("AUTOFIX_SANDBOX", "local")
    settings = Settings()
    assert settings.llm_model == "from-env"
    assert settings.sandbox == "local"


def test_a_sentry_project_finds_the_repo_that_serves_it(config_file: Path) -> None:
    settings = Settings()
    assert settings.repo_for_project("shop-worker") is not None
    assert settings.repo_for_project("shop-worker").name == "shop"  # type: ignore[union-attr]
    assert settings.repo_for_project("unknown") is None  # two repos: no guessing


def test_the_store_defaults_to_sqlite_in_home(config_file: Path, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOFIX_HOME", str(tmp_path / "state"))
    assert Settings().resolved_store_url == f"sqlite:///{tmp_path / 'state' / 'autofix.db'}"


def test_an_unknown_sandbox_name_is_refused(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOFIX_SANDBOX", "chroot")
    with pytest.raises(ValueError, match="sandbox"):
        Settings()


def test_a_missing_config_file_named_explicitly_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOFIX_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="nope.toml"):
        Settings()


def test_secrets_do_not_appear_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch, config_file: Path) -> None:
    monkeypatch.setenv("AUTOFIX_LLM_API_KEY", "sk-very-secret")
    settings = Settings()
    assert "sk-very-secret" not in repr(settings)
    assert settings.llm_api_key is not None and settings.llm_api_key.get_secret_value() == "sk-very-secret"
