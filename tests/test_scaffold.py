"""`autofix init`'s guesses, read from a checkout, and the file it writes, which Settings must accept."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_fix import write_tree

from pipeline import scaffold
from pipeline.settings import Settings
from sandbox.workspace import git


def checkout(root: Path, files: dict[str, str], branch: str = "main") -> Path:
    write_tree(root, files)
    git(root, "init", "-q", f"--initial-branch={branch}")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return root


def test_a_pytest_project_gets_its_packages_branch_and_test_command(tmp_path: Path) -> None:
    root = checkout(tmp_path / "shop", {
        "pyproject.toml": "[project]\nname = 'shop'\n[tool.pytest.ini_options]\ntestpaths = ['tests']\n",
        "shop/__init__.py": "", "src/lib/__init__.py": "", "tests/__init__.py": "", "tests/test_a.py": "",
    }, branch="trunk")
    guess = scaffold.guess(root)
    assert (guess.name, guess.default_branch) == ("shop", "trunk")
    assert guess.test_command == scaffold.PYTEST_COMMAND
    assert guess.test_evidence == "pytest configuration in pyproject.toml"
    assert guess.in_app_packages == ("lib", "shop")  # tests/ is never the app
    assert guess.remote_url is None


def test_test_files_alone_are_enough_and_no_tests_leaves_the_command_commented(tmp_path: Path) -> None:
    with_tests = checkout(tmp_path / "a", {"app.py": "", "test/test_app.py": ""})
    assert scaffold.guess(with_tests).test_evidence == "test files in test/"
    without = checkout(tmp_path / "b", {"app.py": ""})
    guess = scaffold.guess(without)
    assert guess.test_command is None
    assert '# test_command = "python -m pytest -q"' in scaffold.render(guess)


def test_the_origin_remote_and_a_dockerfile_workdir_are_used(tmp_path: Path) -> None:
    root = checkout(tmp_path / "svc", {"Dockerfile": "FROM python:3.12\nWORKDIR /srv\nWORKDIR /srv/app/\n",
                                       "svc/__init__.py": ""})
    git(root, "remote", "add", "origin", "git@example.com:acme/svc.git")
    guess = scaffold.guess(root)
    assert guess.remote_url == "git@example.com:acme/svc.git"
    assert guess.path_mappings == {"/srv/app/": ""}
    assert "the Dockerfile's WORKDIR /srv/app/" in scaffold.render(guess)


def test_a_virtualenv_with_pytest_in_the_checkout_is_mounted_in_the_sandbox(tmp_path: Path) -> None:
    root = checkout(tmp_path / "svc", {"svc/__init__.py": ""})
    write_tree(root, {".venv/bin/python": "", ".venv/lib/python3.11/site-packages/pytest/__init__.py": ""})
    assert scaffold.guess(root).venv == ".venv"
    assert scaffold.guess(checkout(tmp_path / "bare", {"x.py": ""})).venv is None


def test_the_written_file_is_valid_and_says_what_was_guessed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = checkout(tmp_path / "shop", {"shop/__init__.py": "", "tests/test_x.py": "", "Dockerfile": "WORKDIR /app\n"})
    write_tree(root, {".venv/bin/python": "", ".venv/lib/python3.11/site-packages/pytest/__init__.py": ""})
    (root / "autofix.toml").write_text(scaffold.render(scaffold.guess(root)))
    monkeypatch.delenv("AUTOFIX_HOME", raising=False)
    monkeypatch.delenv("AUTOFIX_CONFIG", raising=False)
    monkeypatch.chdir(root / "shop")
    settings = Settings()
    (repo,) = settings.repos
    assert (repo.name, repo.path, repo.default_branch) == ("shop", root, "main")
    assert repo.test_command == scaffold.PYTEST_COMMAND
    assert repo.path_mappings == {"/app/": ""}
    assert repo.sandbox_paths == [root / ".venv"]
    assert settings.in_app_packages == ["shop"]
    assert settings.home == root / ".autofix"


def test_the_state_folder_is_excluded_from_git_once(tmp_path: Path) -> None:
    root = checkout(tmp_path / "r", {"a.py": ""})
    assert scaffold.exclude_state_folder(root) is True
    assert scaffold.exclude_state_folder(root) is False
    (root / ".autofix").mkdir()
    (root / ".autofix" / "autofix.db").write_text("")
    assert git(root, "status", "--porcelain") == ""
