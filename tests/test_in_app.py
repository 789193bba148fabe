"""In-app marks of log frames: the guess that needs no configuration, the logger's hint, and what
configured packages and path prefixes change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.records import ErrorEvent, ExceptionInfo, Frame
from pipeline.settings import RepoConfig, Settings
from pipeline.sources.in_app import InAppRules, guess_in_app, installed_package, repo_packages

AT = datetime(2026, 5, 1, tzinfo=UTC)
SITE = "/opt/shop/venv/lib/python3.11/site-packages"


@pytest.mark.parametrize(
    ("path", "in_app"),
    [
        ("/srv/shop/current/shop/orders.py", True),
        ("worker.py", True),
        (f"{SITE}/requests/sessions.py", False),
        ("/usr/lib/python3/dist-packages/yaml/loader.py", False),
        ("/usr/lib/python3.11/json/decoder.py", False),
        ("/root/.pyenv/versions/3.11.7/lib/python3.11/concurrent/futures/thread.py", False),
        ("/srv/shop/.venv/src/helper/util.py", False),
        ("/home/ada/.virtualenvs/shop/bin/activate_this.py", False),
        ("/srv/shop/.tox/py311/lib/thing.py", False),
        ("/opt/shop/venv/bin/gunicorn", False),
        ("<frozen runpy>", False),
        ("C:\\Python311\\Lib\\site-packages\\flask\\app.py", False),
    ],
)
def test_the_guess_keeps_libraries_the_standard_library_and_virtualenvs_out(path: str, in_app: bool) -> None:
    assert guess_in_app(path) is in_app


def test_the_installed_package_of_a_path_is_the_folder_after_the_last_site_packages() -> None:
    assert installed_package(f"{SITE}/shop/orders.py") == "shop"
    assert installed_package(f"{SITE}/six.py") == "six"
    assert installed_package("/srv/shop/orders.py") is None


def _log_event(paths: list[str], logger: str | None = None) -> ErrorEvent:
    frames = tuple(Frame(function=f"f{i}", filename=p, abs_path=p, lineno=i + 1, context_line="x()")
                   for i, p in enumerate(paths))
    return ErrorEvent("e", "log", "python", (ExceptionInfo("ZeroDivisionError", "division by zero", frames=frames),),
                      AT, logger=logger)


def _marks(event: ErrorEvent) -> list[bool]:
    assert event.primary is not None
    return [f.in_app for f in event.primary.frames]


def test_the_reporting_logger_names_an_app_installed_into_a_virtualenv() -> None:
    event = _log_event(["/opt/shop/bin/worker.py", f"{SITE}/shop/cart.py", f"{SITE}/shop/pricing.py"],
                       logger="shop.worker")
    assert _marks(InAppRules().mark(event)) == [True, True, True]
    assert _marks(InAppRules().mark(_log_event([p.abs_path or "" for p in event.primary.frames]))) == [  # type: ignore[union-attr]
        True, False, False]


def test_a_framework_logging_the_traceback_outermost_is_not_promoted() -> None:
    event = _log_event([f"{SITE}/uvicorn/protocols/http.py", f"{SITE}/uvicorn/middleware.py",
                        "/srv/app/shop/views.py", "/srv/app/shop/orders.py"], logger="uvicorn.error")
    assert _marks(InAppRules().mark(event)) == [False, False, True, True]


def test_a_library_the_app_calls_is_not_promoted_by_a_stdlib_logger() -> None:
    event = _log_event(["/srv/app/jobs.py", f"{SITE}/json/whatever.py"], logger="logging")
    assert _marks(InAppRules().mark(event)) == [True, False]


def test_configured_packages_decide_exactly_even_inside_site_packages() -> None:
    event = _log_event(["/srv/grocer/current/worker.py", f"{SITE}/grocer/cart.py", f"{SITE}/requests/api.py"])
    rules = InAppRules.of(["grocer"])
    assert _marks(rules.mark(event)) == [True, True, False]  # the worker's folder is named grocer too
    assert _marks(InAppRules.of(["shop"]).mark(event)) == [False, False, False]


def test_path_prefixes_from_repo_mappings_mark_the_files_under_them() -> None:
    event = _log_event(["/app/manage.py", "/app/.venv/lib/python3.11/site-packages/django/core.py", "/usr/x.py"])
    assert _marks(InAppRules.of(prefixes=["/app/"]).mark(event)) == [True, False, False]


def test_sdk_events_keep_the_marks_their_sdk_sent_but_frozen_modules_are_never_in_app() -> None:
    event = _log_event([f"{SITE}/shop/cart.py"])
    sdk = ErrorEvent("s", "sentry-event", "python", event.exceptions, AT)
    assert InAppRules.of(["nothing"]).mark(sdk) is sdk
    frozen = Frame("run_path", "<frozen runpy>", abs_path="/srv/app/<frozen runpy>", module="runpy")
    app = Frame("main", "app.py", abs_path="/srv/app/app.py", module="app")
    with_runpy = ErrorEvent("r", "sentry-event", "python", (ExceptionInfo("E", "", frames=(frozen, app)),), AT)
    assert _marks(InAppRules().mark(with_runpy)) == [False, True]


def test_settings_give_packages_from_the_list_the_repos_and_their_checkouts(tmp_path: Path) -> None:
    checkout = tmp_path / "shop"
    (checkout / "shop").mkdir(parents=True)
    (checkout / "shop" / "__init__.py").write_text("")
    (checkout / "src" / "billing").mkdir(parents=True)
    (checkout / "src" / "billing" / "__init__.py").write_text("")
    (checkout / "manage.py").write_text("")
    (checkout / "setup.py").write_text("")
    (checkout / "tests").mkdir()
    (checkout / "tests" / "__init__.py").write_text("")
    assert repo_packages(checkout) == {"shop", "billing", "manage"}
    settings = Settings(in_app_packages=["extra"], repos=[
        RepoConfig(name="shop", path=checkout, path_mappings={"/srv/shop/": "", "": ""}),
        RepoConfig(name="named", packages=["named_pkg"]),
    ])
    rules = InAppRules.from_settings(settings)
    assert rules.packages == {"extra", "shop", "billing", "manage", "named_pkg"}
    assert rules.prefixes == ("/srv/shop/",)
