"""Settings: one object from autofix.toml and AUTOFIX_* variables, environment winning, checked strictly."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field, SecretStr

from pipeline.config_file import MASK, masked
from pipeline.errors import ConfigError
from pipeline.settings import LogSettings, Settings

TOML = """
sandbox = "bwrap"
llm_model = "from-file"

[gate]
min_confidence = 0.8

[[repos]]
name = "shop"
path = "{shop}"
remote_url = "git@example.com:acme/shop.git"
default_branch = "trunk"
sentry_projects = ["shop-backend", "shop-worker"]
test_command = "pytest -q"
[repos.path_mappings]
"/app/" = ""

[[repos]]
name = "billing"
path = "billing"
"""


@pytest.fixture(autouse=True)
def _no_autofix_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("AUTOFIX_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "shop").mkdir()
    (tmp_path / "billing").mkdir()
    path = tmp_path / "autofix.toml"
    path.write_text(TOML.format(shop=tmp_path / "shop"))
    monkeypatch.setenv("AUTOFIX_CONFIG", str(path))
    return path


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "autofix.toml"
    path.write_text(text)
    return path


def test_repos_and_gate_come_from_the_file(config_file: Path, tmp_path: Path) -> None:
    settings = Settings()
    shop = settings.repo_named("shop")
    assert shop.path == tmp_path / "shop"
    assert shop.default_branch == "trunk"
    assert shop.path_mappings == {"/app/": ""}
    assert shop.test_command == "pytest -q"
    assert settings.gate.min_confidence == 0.8
    assert settings.sandbox == "bwrap"
    assert settings.config_file == config_file


def test_relative_paths_in_the_file_are_relative_to_the_file_not_the_current_folder(
        config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert Settings().repo_named("billing").path == tmp_path / "billing"


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


def test_the_nearest_autofix_toml_upwards_is_read_and_the_state_folder_sits_beside_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, 'llm_model = "found"\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    settings = Settings()
    assert settings.llm_model == "found"
    assert settings.config_file == tmp_path / "autofix.toml"
    assert settings.home == tmp_path / ".autofix"
    monkeypatch.setenv("AUTOFIX_HOME", str(tmp_path / "explicit"))
    assert Settings().home == tmp_path / "explicit"


def test_without_a_file_the_state_folder_is_dot_autofix_here() -> None:
    settings = Settings()
    assert settings.config_file is None
    assert settings.home == Path(".autofix")


def test_an_unknown_key_names_the_closest_valid_one_and_its_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[gate]\nmax_files = 2\nmin_confidnce = 0.9\n")
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert str(caught.value) == (f'{path}:3: unknown key "min_confidnce" in [gate]; '
                                 'did you mean "min_confidence"?')


def test_an_unknown_section_names_the_closest_valid_one(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[[repo]]\nname = "shop"\n')
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert str(caught.value) == f"{path}:1: unknown section [[repo]]; did you mean [[repos]]?"


def test_an_unknown_key_inside_a_repo_and_one_with_no_close_match_are_both_reported(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    write_config(tmp_path, '[[repos]]\nname = "shop"\npath = "shop"\ntest_comand = "pytest"\n\n'
                           '[[repos]]\nname = "b"\nzzz = 1\n')
    with pytest.raises(ConfigError) as caught:
        Settings()
    message = str(caught.value)
    assert ':4: unknown key "test_comand" in [repos[0]]; did you mean "test_command"?' in message
    # No close match: the valid keys are listed instead (the list grows with the settings).
    assert ':8: unknown key "zzz" in [repos[1]]; valid keys here: default_branch, github_repo, ' in message
    assert "\n" not in message


def test_a_toml_syntax_error_gives_file_line_and_column(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[gate]\nmin_confidence = 0.5\nmax_files = = 3\n')
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert str(caught.value).startswith(f"{path}:3:13: ")
    assert "\n" not in str(caught.value)


def test_a_bad_value_in_the_file_names_file_line_key_and_what_is_wrong(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[gate]\nmin_confidence = "high"\n')
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert str(caught.value) == (f"{path}:2: gate.min_confidence: Input should be a valid number, unable to parse "
                                 "string as a number (got 'high')")


def test_a_confidence_above_one_is_refused(tmp_path: Path) -> None:
    write_config(tmp_path, "[gate]\nmin_confidence = 1.5\n")
    with pytest.raises(ConfigError, match="gate.min_confidence: Input should be less than or equal to 1"):
        Settings()


def test_a_repo_path_that_does_not_exist_is_refused_in_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[[repos]]\nname = "shop"\npath = "/no/such/checkout"\n')
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert str(caught.value) == f"{path}:3: repos[0].path: no such folder: /no/such/checkout"


def test_an_unknown_sandbox_name_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOFIX_SANDBOX", "chroot")
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert str(caught.value) == "AUTOFIX_SANDBOX: Input should be 'auto', 'docker', 'bwrap' or 'local' (got 'chroot')"


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("AUTOFIX_BROKER_URL", "localhost:6379", "is not a Redis URL"),
    ("AUTOFIX_STORE_URL", "mysql://db/autofix", "the store must be SQLite or PostgreSQL, not 'mysql'"),
    ("AUTOFIX_STORE_URL", "not a url", "is not a SQLAlchemy URL"),
    ("AUTOFIX_LLM_BASE_URL", "ftp://models", "is not an http(s) URL"),
    ("AUTOFIX_GITHUB_API_URL", "api.github.com", "is not an http(s) URL"),
])
def test_a_bad_url_is_refused_naming_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
                                                   expected: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert str(caught.value).startswith(f"{variable}: ")
    assert expected in str(caught.value)


def test_good_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOFIX_BROKER_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("AUTOFIX_STORE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("AUTOFIX_LLM_BASE_URL", "http://127.0.0.1:8080/v1")
    settings = Settings()
    assert settings.broker_url == "redis://127.0.0.1:6379/3"
    assert settings.llm_base_url == "http://127.0.0.1:8080/v1"


def test_a_missing_config_file_named_explicitly_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOFIX_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="nope.toml"):
        Settings()


def test_secrets_do_not_appear_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch, config_file: Path) -> None:
    monkeypatch.setenv("AUTOFIX_LLM_API_KEY", "sk-very-secret")
    settings = Settings()
    assert "sk-very-secret" not in repr(settings)
    assert settings.llm_api_key is not None and settings.llm_api_key.get_secret_value() == "sk-very-secret"


def test_a_bad_secret_value_is_reported_without_the_value(tmp_path: Path) -> None:
    write_config(tmp_path, "github_token = 12345678\n")
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert "github_token" in str(caught.value) and "12345678" not in str(caught.value)


def test_the_effective_configuration_masks_secrets_and_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOFIX_LLM_API_KEY", "sk-very-secret")
    monkeypatch.setenv("AUTOFIX_STORE_URL", "postgresql+psycopg://autofix:hunter2@db:5432/autofix")
    shown = masked(Settings())
    assert shown["llm_api_key"] == MASK
    assert shown["store_url"] == f"postgresql+psycopg://autofix:{MASK}@db:5432/autofix"
    assert shown["github_token"] is None
    assert "hunter2" not in repr(shown) and "sk-very-secret" not in repr(shown)


class _Retention(BaseModel):
    days: int = 30
    keep_raw: bool = True


class _Extended(Settings):
    retention: _Retention = Field(default_factory=_Retention)
    archives: list[_Retention] = Field(default_factory=list)
    token: SecretStr | None = None


def test_a_new_field_or_nested_model_is_accepted_in_the_file_with_no_other_change(tmp_path: Path) -> None:
    write_config(tmp_path, "[retention]\ndays = 7\n\n[[archives]]\nkeep_raw = false\n")
    settings = _Extended()
    assert settings.retention.days == 7
    assert settings.archives[0].keep_raw is False


def test_a_new_nested_model_refuses_unknown_keys_too(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[retention]\ndais = 7\n")
    with pytest.raises(ConfigError) as caught:
        _Extended()
    assert str(caught.value) == f'{path}:2: unknown key "dais" in [retention]; did you mean "days"?'


def test_log_settings_come_from_the_environment_and_refuse_unknown_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOFIX_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("AUTOFIX_LOG_FORMAT", "json")
    assert (LogSettings().level, LogSettings().format) == ("debug", "json")
    monkeypatch.setenv("AUTOFIX_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="^AUTOFIX_LOG_FORMAT: Input should be 'console' or 'json'"):
        LogSettings()


def test_the_revert_fixer_reads_its_age_limit_from_the_file_and_wiring_passes_it(tmp_path: Path) -> None:
    from pipeline.fixers.revert import RevertFixer
    from pipeline.wiring import Deps

    write_config(tmp_path, "[revert]\nmax_age_days = 3.5\nmax_patches = 1\n")
    settings = Settings()
    assert (settings.revert.max_age_days, settings.revert.max_patches, settings.revert.enabled) == (3.5, 1, True)
    fixers = Deps(settings).fixers
    assert [f.name for f in fixers] == ["template", "revert"]
    assert isinstance(fixers[1], RevertFixer) and fixers[1].config.max_age_days == 3.5
    write_config(tmp_path, "[revert]\nmax_age_dayz = 3\n")
    with pytest.raises(ConfigError, match="max_age_days"):
        Settings()
