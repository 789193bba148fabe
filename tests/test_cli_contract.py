"""The command line as a newcomer meets it: exit codes, one-line errors, quiet stderr, --json, init, demo."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from helpers_cli import EXAMPLES, ROOT, autofix, git

EVENT = EXAMPLES / "events" / "3-profile-without-nickname.json"
EVENT_FILES = [*sorted((EXAMPLES / "events").glob("*.json")), EXAMPLES / "logs" / "app.log"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("autofix: error: "), lines[0]
    return lines[0].removeprefix("autofix: error: ")


def service_checkout(parent: Path) -> Path:
    """A fresh git checkout of examples/service, as a user's own repo would be."""
    repo = parent / "service"
    shutil.copytree(EXAMPLES / "service", repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    git(repo, "init", "-q", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the service")
    return repo


# --- version, help, exit codes --------------------------------------------------------------------


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = autofix("--version", home=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"autofix {version('autofix-pipeline')}\n"


def test_help_documents_the_exit_codes(tmp_path: Path) -> None:
    result = autofix("--help", home=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for part in ("0 success", "1 ran but did not succeed", "2 usage or input error", "3 environment missing"):
        assert part in text


def test_exit_0_on_success_and_an_empty_listing_says_what_to_run_next(tmp_path: Path) -> None:
    issues = autofix("issues", home=tmp_path)
    assert issues.returncode == 0, issues.stderr
    assert "autofix ingest" in issues.stdout
    queue = autofix("queue", home=tmp_path)
    assert queue.returncode == 0 and "autofix triage" in queue.stdout


def test_exit_1_when_fix_ran_but_verified_nothing(tmp_path: Path) -> None:
    from pipeline.demo import prepare_repo

    repo = prepare_repo(EXAMPLES, tmp_path)[0]
    # The DigestError in the log (its last traceback) has no template: autofix runs and finds no fix.
    result = autofix("fix", "--repo", str(repo), "--event", str(EXAMPLES / "logs" / "app.log"), "--index", "-1",
                     "--json", home=tmp_path)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["status"] in ("no_fix", "unverified")


@pytest.mark.parametrize("args", [("triage", "--limit", "0"), ("no-such-command",), ("fix", "--repo", ".")])
def test_exit_2_on_a_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert autofix(*args, home=tmp_path).returncode == 2


def test_exit_3_when_the_store_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test"
    result = autofix("issues", home=tmp_path, env={"AUTOFIX_STORE_URL": url})
    assert result.returncode == 3, result.stderr
    assert "connection" in one_error_line(result).lower()


# --- configuration errors: one line, exit 2 -------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("[gate]\nmin_confidnce = 0.9\n", ':2: unknown key "min_confidnce" in [gate]; did you mean "min_confidence"?'),
    ('[[repo]]\nname = "shop"\n', ":1: unknown section [[repo]]; did you mean [[repos]]?"),
    ('[gate]\nmax_files = "three"\n', ":2: gate.max_files: Input should be a valid integer"),
    ('sandbox = "chroot"\n', ":1: sandbox: Input should be 'auto', 'docker', 'bwrap' or 'local'"),
    ('[[repos]]\nname = "shop"\npath = "missing"\n', ":3: repos[0].path: no such folder: "),
    ("[gate\nmax_files = 3\n", ":1:6: Expected ']' at the end of a table declaration"),
], ids=["unknown-key", "unknown-section", "bad-value", "bad-sandbox", "missing-repo-path", "syntax-error"])
def test_a_bad_configuration_file_is_one_line_naming_file_and_line_with_exit_2(
        tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "autofix.toml"
    config.write_text(text)
    result = autofix("issues", home=tmp_path, sandbox=None)
    assert result.returncode == 2
    assert one_error_line(result).startswith(f"{config}{expected}")
    assert result.stdout == ""


def test_a_bad_environment_variable_is_one_line_naming_it(tmp_path: Path) -> None:
    result = autofix("issues", home=tmp_path, env={"AUTOFIX_BROKER_URL": "localhost:6379"})
    assert result.returncode == 2
    assert one_error_line(result).startswith("AUTOFIX_BROKER_URL: 'localhost:6379' is not a Redis URL")


def test_config_check_prints_the_effective_settings_with_secrets_masked(tmp_path: Path) -> None:
    secret = "sk-do-not-print-me"
    env = {"AUTOFIX_LLM_API_KEY": secret, "AUTOFIX_STORE_URL": "postgresql+psycopg://autofix:pw1234@db/autofix"}
    (tmp_path / "autofix.toml").write_text('in_app_packages = ["shop"]\n')
    human = autofix("config", "check", home=None, cwd=tmp_path, env=env)
    assert human.returncode == 0, human.stderr
    assert f"state folder  {tmp_path / '.autofix'}" in human.stdout
    assert f"config file   {tmp_path / 'autofix.toml'}" in human.stdout
    assert "in_app_packages = ['shop']" in human.stdout
    report = json.loads(autofix("config", "check", "--json", home=None, cwd=tmp_path, env=env).stdout)
    assert report["home"] == str(tmp_path / ".autofix")
    assert report["settings"]["llm_api_key"] == "********"
    assert report["store_url"] == "postgresql+psycopg://autofix:********@db/autofix"
    for text in (human.stdout, json.dumps(report)):
        assert secret not in text and "pw1234" not in text


def test_config_check_fails_with_1_when_a_repo_is_not_a_git_checkout(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "autofix.toml").write_text('[[repos]]\nname = "plain"\npath = "plain"\n')
    result = autofix("config", "check", "--json", home=tmp_path)
    assert result.returncode == 1
    (check,) = [c for c in json.loads(result.stdout)["checks"] if not c["passed"]]
    assert check["name"] == "repo plain" and "not a git checkout" in check["detail"]


# --- fix and demo arguments: checked first, one line, exit 2 --------------------------------------


def test_fix_checks_the_repo_before_anything_else(tmp_path: Path) -> None:
    result = autofix("fix", "--repo", str(tmp_path / "nope"), "--event", str(tmp_path / "nope.json"), home=tmp_path)
    assert result.returncode == 2
    assert one_error_line(result) == f"--repo {tmp_path / 'nope'}: no such folder"


def test_fix_refuses_a_folder_that_is_not_a_git_checkout(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    result = autofix("fix", "--repo", str(tmp_path / "plain"), "--event", str(EVENT), home=tmp_path)
    assert result.returncode == 2
    assert "not a git checkout" in one_error_line(result)


def test_fix_refuses_a_subfolder_of_a_checkout_naming_its_top(tmp_path: Path) -> None:
    repo = service_checkout(tmp_path)
    result = autofix("fix", "--repo", str(repo / "shop"), "--event", str(EVENT), home=tmp_path)
    assert result.returncode == 2
    assert one_error_line(result) == f"--repo {repo / 'shop'}: is inside the git checkout {repo}; pass its top folder"


def test_fix_refuses_a_missing_event_file(tmp_path: Path) -> None:
    repo = service_checkout(tmp_path)
    result = autofix("fix", "--repo", str(repo), "--event", str(tmp_path / "none.json"), home=tmp_path)
    assert result.returncode == 2
    assert one_error_line(result) == f"--event {tmp_path / 'none.json'}: no such file"


@pytest.mark.parametrize("mapping", ["no-equals-sign", "=shop/", "/app/=/abs/path"])
def test_fix_refuses_a_malformed_path_map(tmp_path: Path, mapping: str) -> None:
    repo = service_checkout(tmp_path)
    result = autofix("fix", "--repo", str(repo), "--event", str(EVENT), "--path-map", mapping, home=tmp_path)
    assert result.returncode == 2
    assert one_error_line(result).startswith(f"--path-map {mapping!r}: ")


def test_fix_path_map_resolves_an_ambiguous_file_and_output_writes_the_patch(tmp_path: Path) -> None:
    repo = tmp_path / "mono"
    shutil.copytree(EXAMPLES / "service", repo / "current", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(EXAMPLES / "service", repo / "legacy", ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two copies")
    ambiguous = autofix("fix", "--repo", str(repo), "--event", str(EVENT), "--json", home=tmp_path)
    assert ambiguous.returncode == 1
    assert json.loads(ambiguous.stdout)["status"] == "no_fix"  # shop/users.py is in both copies

    patch = tmp_path / "fix.diff"
    # Where the event was recorded: the crash frame's abs_path without its repo-relative part.
    frames = json.loads(EVENT.read_text())["exception"]["values"][-1]["stacktrace"]["frames"]
    prefix = frames[-1]["abs_path"].removesuffix("shop/users.py")
    mapped = autofix("fix", "--repo", str(repo), "--event", str(EVENT), "--path-map", f"{prefix}=current/",
                     "--output", str(patch), "--json", home=tmp_path)
    out = json.loads(mapped.stdout)
    assert out["localization"][0]["path"] == "current/shop/users.py"
    assert out["patch"] and patch.read_text() == out["patch"]
    assert patch.read_text().startswith("--- a/current/shop/users.py")
    assert mapped.returncode == (0 if out["status"] == "verified" else 1)


def test_demo_refuses_a_folder_that_is_not_an_examples_folder(tmp_path: Path) -> None:
    result = autofix("demo", "--examples", str(tmp_path), home=tmp_path)
    assert result.returncode == 2
    assert one_error_line(result) == f"--examples {tmp_path}: not an examples folder (it needs service/ and events/)"


def test_demo_refuses_a_workdir_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    result = autofix("demo", "--workdir", str(tmp_path / "busy"), home=tmp_path)
    assert result.returncode == 2
    assert one_error_line(result) == f"--workdir {tmp_path / 'busy'}: exists and is not an empty folder"


# --- output: stdout for results, stderr quiet unless asked -----------------------------------------


def test_ingest_is_silent_on_stderr_by_default_and_json_holds_only_json(tmp_path: Path) -> None:
    result = autofix("ingest", *map(str, EVENT_FILES), "--json", home=tmp_path)
    assert result.returncode == 0
    assert result.stderr == ""  # no store.migrated, no event.stored
    report = json.loads(result.stdout)
    assert len(report["stored"]) == 7 and report["duplicates"] == []
    again = json.loads(autofix("ingest", str(EVENT), "--json", home=tmp_path).stdout)
    assert again["stored"] == [] and len(again["duplicates"]) == 1 and len(again["issues"]) == 1


def test_verbose_logs_info_and_the_log_format_can_be_json(tmp_path: Path) -> None:
    verbose = autofix("-v", "ingest", str(EVENT), home=tmp_path)
    assert "events.ingested" in verbose.stderr and "store.migrated" in verbose.stderr
    as_json = autofix("-v", "ingest", str(EVENT), "--json", home=tmp_path / "other", cwd=tmp_path,
                      env={"AUTOFIX_LOG_FORMAT": "json"})
    events = [json.loads(line)["event"] for line in as_json.stderr.splitlines()]
    assert "events.ingested" in events
    assert json.loads(as_json.stdout)["stored"]
    quiet = autofix("-q", "ingest", str(EVENT), home=tmp_path / "third", cwd=tmp_path,
                    env={"AUTOFIX_LOG_LEVEL": "debug"})
    assert quiet.stderr == ""


def test_bench_finds_its_suite_beside_the_package_not_in_the_current_folder(tmp_path: Path) -> None:
    result = autofix("bench", "--case", "no-such-case", home=tmp_path, cwd=tmp_path)
    assert result.returncode == 2
    assert one_error_line(result) == f"no such case(s) in {ROOT / 'bench' / 'crashes'}: no-such-case"


# --- init, then ingest and triage from the checkout, nothing else configured ----------------------------


def test_init_outside_a_git_checkout_is_refused(tmp_path: Path) -> None:
    result = autofix("init", home=None, cwd=tmp_path)
    assert result.returncode == 2
    assert "not inside a git checkout" in one_error_line(result)


def test_init_json_reports_what_it_guessed_and_wrote(tmp_path: Path) -> None:
    repo = service_checkout(tmp_path)
    result = autofix("init", "--json", home=None, cwd=repo)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["path"] == str(repo / "autofix.toml") and report["state_folder_excluded"] is True
    assert report["repo"]["in_app_packages"] == ["shop"] and report["repo"]["default_branch"] == "main"


@pytest.mark.slow
def test_init_then_ingest_and_triage_in_a_fresh_checkout_gives_verified_candidates(tmp_path: Path) -> None:
    repo = service_checkout(tmp_path)
    init = autofix("init", home=None, cwd=repo / "shop")  # anywhere inside the checkout
    assert init.returncode == 0, init.stderr
    assert "autofix ingest" in init.stdout and "autofix triage" in init.stdout
    text = (repo / "autofix.toml").read_text()
    assert 'in_app_packages = ["shop"]' in text and 'default_branch = "main"' in text
    assert 'test_command = "python -m pytest -q -p no:cacheprovider"' in text
    assert autofix("init", home=None, cwd=repo).returncode == 2  # never overwrites without --force
    assert git(repo, "status", "--porcelain") == "?? autofix.toml\n"  # .autofix/ is excluded

    ingested = autofix("ingest", *map(str, EVENT_FILES), home=None, cwd=repo)
    assert ingested.returncode == 0, ingested.stderr
    triaged = autofix("triage", "--json", home=None, cwd=repo)
    assert triaged.returncode == 0, triaged.stderr[-2000:]
    outcomes = json.loads(triaged.stdout)["outcomes"].values()
    verified = [o for o in outcomes if o["status"] == "verified"]
    assert len(verified) >= 4
    queued = json.loads(autofix("queue", "--json", home=None, cwd=repo / "tests").stdout)
    assert {c["id"] for c in queued} == {o["candidates"][0]["id"] for o in verified}
    assert (repo / ".autofix" / "autofix.db").is_file()


# --- the demo, as a newcomer runs it -----------------------------------------------------------------


@pytest.mark.slow
def test_demo_is_quiet_cleans_up_and_leaves_its_candidates_in_autofix_home(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    home = tmp_path / "home"
    result = autofix("demo", home=home, cwd=tmp_path, env={"TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stderr.splitlines()) <= 5, result.stderr
    assert list(scratch.iterdir()) == []  # the temporary work folder is gone
    queued = json.loads(autofix("queue", "--json", home=home).stdout)
    assert len(queued) >= 4
    for candidate in queued:
        assert candidate["id"] in result.stdout  # the table shows each candidate's id
