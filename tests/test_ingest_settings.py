"""Settings of ingestion: project -> repo mapping, limits and secrets from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.settings import RepoConfig, Settings


@pytest.fixture(autouse=True)
def no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTOFIX_CONFIG", raising=False)


def test_a_sentry_project_maps_to_its_repo_by_id_or_slug() -> None:
    settings = Settings(repos=[RepoConfig(name="shop", sentry_projects=["shop-backend"]),
                               RepoConfig(name="billing", sentry_projects=["7"])],
                        sentry_project_repos={"1": "shop"})
    shop = settings.repo_for_project("1")
    billing = settings.repo_for_project("7")
    assert shop is not None and shop.name == "shop"
    assert billing is not None and billing.name == "billing"
    by_slug = settings.repo_for_project("shop-backend")
    assert by_slug is not None and by_slug.name == "shop"
    assert settings.repo_for_project("99") is None


def test_a_mapping_to_a_repo_that_is_not_configured_is_an_error() -> None:
    settings = Settings(repos=[RepoConfig(name="shop")], sentry_project_repos={"1": "nope"})
    with pytest.raises(ConfigError, match="no repo named 'nope'"):
        settings.repo_for_project("1")


def test_ingestion_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOFIX_SENTRY_DSN_KEYS", " a , b ,")
    monkeypatch.setenv("AUTOFIX_SENTRY_PROJECT_REPOS", '{"1": "shop"}')
    monkeypatch.setenv("AUTOFIX_INGEST_MAX_BODY_BYTES", "1234")
    monkeypatch.setenv("AUTOFIX_INBOX_RETENTION", "keep")
    monkeypatch.setenv("AUTOFIX_SENTRY_SERVICE_HOOK_SECRET", "s")
    settings = Settings()
    assert settings.dsn_keys == frozenset({"a", "b"}) and settings.sentry_project_repos == {"1": "shop"}
    assert settings.ingest_max_body_bytes == 1234 and settings.inbox_retention == "keep"
    assert settings.sentry_service_hook_secret is not None
    assert settings.sentry_service_hook_secret.get_secret_value() == "s"
    assert "s" not in repr(settings.sentry_service_hook_secret)


def test_a_retention_outside_the_three_choices_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOFIX_INBOX_RETENTION", "forever")
    with pytest.raises(ConfigError, match="AUTOFIX_INBOX_RETENTION: Input should be 'keep', 'scrub' or 'drop'"):
        Settings()
