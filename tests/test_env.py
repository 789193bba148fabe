"""The repo's own environment: read from its declaration, built once per key, used read-only in bwrap."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from helpers_fix import build_wheel, git, init_repo, write_tree
from structlog.testing import capture_logs

from pipeline.fixers.templates import TemplateFixer
from pipeline.flow import FixOutcome, FixRequest, fix_issue
from pipeline.grouping import group
from pipeline.records import ReplayStatus
from pipeline.scrub import scrub_event
from pipeline.settings import EnvConfig
from pipeline.sources import load_path
from sandbox import env_wheels
from sandbox.config import make_sandbox
from sandbox.env import EnvBuildFailed, autofix_pytest, declared, ensure_env, env_key
from sandbox.process import base_python

DATA = Path(__file__).resolve().parent / "data"
EVENT = DATA / "replay_events" / "tinyapp-label-of-zero.json"


# --- the declaration and the key -----------------------------------------------------------------


def test_requirements_files_are_read_with_includes_and_without_options_local_paths_or_docs(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "requirements.txt": "# runtime\nrequests>=2 ; python_version >= '3.8'  # the client\n-r requirements/extra.txt\n"
                            "-e .\n.\n--index-url https://example.invalid/simple\nattrs==25.3.0\n",
        "requirements/extra.txt": "idna==3.10\n",
        "requirements-dev.txt": "pytest-mock==3.14.0\n",
        "requirements-docs.txt": "sphinx==8.0\n",
    })
    d = declared(tmp_path)
    assert d.requirements == ("pytest-mock==3.14.0", 'requests>=2; python_version >= "3.8"', "idna==3.10",
                              "attrs==25.3.0")
    assert d.sources == ("requirements-dev.txt", "requirements.txt")
    assert "-e .: an option or a local path, not a package" in d.skipped
    assert not d.names_pytest


def test_pyproject_dependencies_and_a_test_extra_are_read_but_never_the_project_itself(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": '[project]\nname = "My_Pkg"\ndependencies = ["markupsafe>=2"]\n'
                                            '[project.optional-dependencies]\ntest = ["my-pkg[speedups]", "pytest>=7"]\n'
                                            'docs = ["sphinx"]\n'})
    d = declared(tmp_path)
    assert d.requirements == ("markupsafe>=2", "pytest>=7")
    assert d.names_pytest
    assert any(s.startswith("my-pkg[speedups]: the repo itself") for s in d.skipped)


def test_the_key_changes_with_the_declaration_the_sandbox_and_the_interpreter(tmp_path: Path) -> None:
    write_tree(tmp_path, {"requirements.txt": "attrs==25.3.0\n"})
    d = declared(tmp_path)
    key = env_key(d, "bwrap", "3.11.7")
    assert key == env_key(declared(tmp_path), "bwrap", "3.11.7")
    assert len({key, env_key(d, "docker", "3.11.7"), env_key(d, "bwrap", "3.12.1"),
                env_key(declared(tmp_path / "empty"), "bwrap", "3.11.7"),
                env_key(declared(tmp_path, "make deps"), "bwrap", "3.11.7")}) == 5


def test_autofix_s_own_pytest_is_packed_from_its_installed_files(tmp_path: Path) -> None:
    wheels = env_wheels.pack_all(["pytest"], tmp_path)
    names = {w.name.split("-")[0].lower() for w in wheels}
    assert {"pytest", "pluggy", "iniconfig", "packaging"} <= names
    assert f"pytest-{autofix_pytest()}-py3-none-any.whl" in {w.name for w in wheels}


# --- sandboxes: the interpreter and read-only mounts -------------------------------------------------


def test_bwrap_and_local_offer_the_resolved_base_interpreter() -> None:
    assert base_python() == os.path.realpath(base_python())
    assert make_sandbox("bwrap").python == base_python()
    assert make_sandbox("local").python == base_python()


def test_bwrap_mounts_ro_paths_for_one_run_at_their_own_path_read_only(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data.txt").write_text("visible\n")
    work = tmp_path / "work"
    work.mkdir()
    box = make_sandbox("bwrap")
    script = f"cat {shared}/data.txt; touch {shared}/new 2>/dev/null && echo writable || echo read-only"
    seen = box.run(work, ["sh", "-c", script], ro_paths=[shared])
    assert seen.output.split() == ["visible", "read-only"]
    assert not (shared / "new").exists()
    unmounted = box.run(work, ["sh", "-c", f"cat {shared}/data.txt"])
    assert unmounted.exit_code != 0


# --- a repo that needs a third-party package -------------------------------------------------------


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    build_wheel(DATA / "tinyfmt_src" / "tinyfmt", "tinyfmt", "1.0", tmp_path / "wheels")
    return tmp_path / "wheels"


def tiny_repo(root: Path, requirements: str | None) -> Path:
    shutil.copytree(DATA / "tinyfmt_app", root, ignore=shutil.ignore_patterns("__pycache__"))
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    return init_repo(root, {})


def fix(repo: Path, tmp_path: Path, envs: Path, config: EnvConfig, setup_command: str | None = None) -> FixOutcome:
    event, issue = group(scrub_event(load_path(EVENT)[0]))
    request = FixRequest(event, issue, repo, tmp_path / "work", env_home=envs, env=config, setup_command=setup_command)
    return fix_issue(request, [TemplateFixer()], make_sandbox("bwrap"))


def test_a_repo_importing_a_third_party_package_verifies_in_bwrap_and_the_second_run_reuses_its_env(
    tmp_path: Path, wheels: Path
) -> None:
    repo = tiny_repo(tmp_path / "repo", "tinyfmt==1.0\n")
    config = EnvConfig(find_links=[str(wheels)], no_index=True)
    envs = tmp_path / "envs"
    with capture_logs() as first_logs:
        first = fix(repo, tmp_path, envs, config)
    assert first.status == "verified", first.reason
    assert [(r.name, r.before, r.after) for r in first.best.verification.replays] == [  # type: ignore[union-attr]
        ("tinyapp.labels.share_label", ReplayStatus.REPRODUCED, ReplayStatus.PASSED)]
    assert [e["event"] for e in first_logs if e["event"].startswith("env.")] == ["env.built"]
    built = [p for p in envs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(built) == 1 and (built[0] / "venv" / "lib").is_dir()
    assert any(p.name.startswith("tinyfmt") for p in (built[0] / "venv" / "lib").rglob("*.dist-info"))

    with capture_logs() as second_logs:
        second = fix(repo, tmp_path, envs, config)
    assert second.status == "verified", second.reason
    assert [e["event"] for e in second_logs if e["event"].startswith("env.")] == ["env.reused"]


def test_without_its_declared_dependency_the_replay_fails_to_import_and_nothing_is_verified(
    tmp_path: Path, repo_env_cache: Path
) -> None:
    repo = tiny_repo(tmp_path / "repo", None)
    outcome = fix(repo, tmp_path, repo_env_cache, EnvConfig())
    assert outcome.status == "unverified"
    replay = outcome.best.verification.replays[0]  # type: ignore[union-attr]
    assert replay.before is ReplayStatus.OTHER_ERROR
    assert "No module named 'tinyfmt'" in replay.detail
    assert outcome.reason.startswith("no replay failed with the event's exception before the patch")


def test_a_setup_command_fills_the_wheelhouse_on_the_host(tmp_path: Path, wheels: Path) -> None:
    repo = tiny_repo(tmp_path / "repo", None)
    command = f'cp {wheels}/tinyfmt-1.0-py3-none-any.whl "$AUTOFIX_WHEELHOUSE"/'
    outcome = fix(repo, tmp_path, tmp_path / "envs", EnvConfig(no_index=True), setup_command=command)
    assert outcome.status == "verified", outcome.reason


def test_a_failed_build_says_why_and_leaves_nothing_half_made(tmp_path: Path, wheels: Path) -> None:
    repo = tiny_repo(tmp_path / "repo", "tinyfmt==9.9\n")
    envs = tmp_path / "envs"
    outcome = fix(repo, tmp_path, envs, EnvConfig(find_links=[str(wheels)], no_index=True))
    assert outcome.status == "unverified"
    assert outcome.reason.startswith("the repo's environment could not be built: fetching the declared "
                                     "requirements failed")
    assert "tinyfmt==9.9" in outcome.reason
    assert [p.name for p in envs.iterdir() if p.is_dir() and not p.name.startswith(".")] == []

    with pytest.raises(EnvBuildFailed):
        ensure_env(repo, envs, make_sandbox("bwrap"), EnvConfig(find_links=[str(wheels)], no_index=True))


def test_two_builds_of_one_key_at_once_build_it_once(tmp_path: Path, wheels: Path) -> None:
    repo = tiny_repo(tmp_path / "repo", "tinyfmt==1.0\n")
    config = EnvConfig(find_links=[str(wheels)], no_index=True)
    box = make_sandbox("bwrap")
    results = []

    def build() -> None:
        results.append(ensure_env(repo, tmp_path / "envs", box, config))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.reused for r in results) == [False, True]
    assert results[0].root == results[1].root


def test_a_build_that_died_half_way_is_started_again(tmp_path: Path, wheels: Path) -> None:
    repo = tiny_repo(tmp_path / "repo", "tinyfmt==1.0\n")
    config = EnvConfig(find_links=[str(wheels)], no_index=True)
    box = make_sandbox("bwrap")
    env = ensure_env(repo, tmp_path / "envs", box, config)
    (env.root / "autofix-env.json").unlink()  # as if the builder was killed before it finished
    (env.root / "venv" / "bin" / "python").unlink()
    again = ensure_env(repo, tmp_path / "envs", box, config)
    assert not again.reused and again.python.exists()
    git(repo, "status")  # the repo itself is untouched: nothing was installed from it
