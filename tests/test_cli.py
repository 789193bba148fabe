"""The command-line contract, run as a real `autofix` process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_cli import EXAMPLES, autofix, clean_env, git


def test_ingest_of_a_malformed_file_names_the_file_and_stores_nothing(tmp_path: Path) -> None:
    good = EXAMPLES / "events" / "1-checkout-coupon-null.json"
    bad = tmp_path / "broken.json"
    bad.write_text('{"event_id": "abc", "exception": {"values": [ {"type": 3')
    result = autofix("ingest", str(good), str(bad), home=tmp_path)
    assert result.returncode != 0
    assert "broken.json" in result.stderr
    listed = autofix("issues", "--json", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []  # not even the good file of the same call was stored


def test_ingest_stores_events_once_and_groups_them_into_issues(tmp_path: Path) -> None:
    files = [str(p) for p in sorted((EXAMPLES / "events").glob("*.json"))]
    first = autofix("ingest", *files, home=tmp_path)
    assert first.returncode == 0, first.stderr
    again = autofix("ingest", *files, home=tmp_path)
    assert "dropped 5 duplicate(s)" in again.stdout
    issues = json.loads(autofix("issues", "--json", home=tmp_path).stdout)
    counts = sorted(i["count"] for i in issues)
    assert counts == [1, 1, 1, 2]  # both coupon events are one issue
    assert {i["fix_class"] for i in issues} >= {"none-attribute", "missing-key", "zero-division"}


def _demo_repo(tmp_path: Path) -> Path:
    from pipeline.demo import prepare_repo

    return prepare_repo(EXAMPLES, tmp_path)[0]


def test_fix_prints_a_verified_candidate_for_a_recorded_event(tmp_path: Path) -> None:
    repo = _demo_repo(tmp_path)
    event = EXAMPLES / "events" / "3-profile-without-nickname.json"
    result = autofix("fix", "--repo", str(repo), "--event", str(event), "--test-cmd",
                     "python -m pytest -q -p no:cacheprovider", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == "verified"
    assert out["strategy"].startswith("template:")
    assert out["patch"].startswith("--- a/shop/users.py")
    assert out["localization"][0] == {"path": "shop/users.py", "function": "display_name", "line": 10,
                                      "role": "crash"}
    kinds = [run["kind"] for run in out["verification"]["runs"]]
    assert kinds == ["replays_before", "tests_before", "replays_after", "tests_after"]
    assert out["queued"] is True
    assert out["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert [(r["role"], r["name"]) for r in out["replays"]] == [("caller", "shop.api.get_profile")]
    assert out["not_replayable"][0].startswith("crash display_name (shop/users.py:10): argument 'profile' was "
                                               "scrubbed ([Filtered:email]")
    assert [(r["before"], r["after"]) for r in out["verification"]["replays"]] == [("reproduced", "passed")]
    assert 0 < out["confidence"] <= 1
    assert set(out["cost"]) >= {"tokens", "seconds"}


def test_fix_says_no_fix_when_no_frame_matches_a_repo_file(tmp_path: Path) -> None:
    repo = tmp_path / "other"
    repo.mkdir()
    (repo / "unrelated.py").write_text("def f():\n    return 1\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    event = EXAMPLES / "events" / "3-profile-without-nickname.json"
    result = autofix("fix", "--repo", str(repo), "--event", str(event), "--json", home=tmp_path)
    assert result.returncode == 1, result.stderr  # ran, but nothing verified
    out = json.loads(result.stdout)
    assert out["status"] == "no_fix"
    assert "matches a file in the repo" in out["reason"]
    assert "shop/users.py" in out["reason"]
    assert out["patch"] is None


def test_reject_without_a_reason_is_refused(tmp_path: Path) -> None:
    result = autofix("reject", "nope", "--reason", " ", home=tmp_path)
    assert result.returncode != 0
    assert "needs a reason" in result.stderr


@pytest.mark.slow
def test_demo_queues_verified_fixes_and_approve_all_pushes_branches_that_pass_their_tests(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    # As a user would check it: stdout is JSON and nothing else, whatever goes to stderr.
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c",
         f"{sys.executable} -m pipeline demo --json --approve-all --workdir {work} 2>/dev/null | "
         f"{sys.executable} -m json.tool"],
        cwd=tmp_path, env=clean_env(),
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["kept"] is True and report["workdir"] == str(work)
    verified = [row for row in report["issues"] if row["verification"] == "verified"]
    assert len(verified) >= 3
    assert {row["fix_class"] for row in verified} >= {"none-attribute", "missing-key", "zero-division"}
    assert report["summary"]["published"] == len(verified)
    # The log file's ZeroDivisionError traceback joins the Sentry event of the same crash, and the
    # fix is still made from the event that carries the arguments.
    zero = next(row for row in report["issues"] if row["fix_class"] == "zero-division")
    assert zero["count"] == 2 and zero["verification"] == "verified"
    assert report["sandbox"] in ("docker", "bwrap")  # auto: docker where an engine answers

    from pipeline.adapters.sql_store import SqlStore

    store = SqlStore(f"sqlite:///{work / '.autofix' / 'autofix.db'}")
    for row in verified:
        pr = store.get_pull_request(row["candidate_id"])
        assert pr is not None and pr.branch == row["branch"]
        for part in ("**Error**", "### Root cause", "### Evidence", "replays_before", "replays_after", "tests_after",
                     "| caller | `shop.api.", "Verified on commit", "Verification log", "```diff"):
            assert part in pr.body, part
    store.close()

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", report["remote"], str(clone))
    for row in verified:
        assert row["status"] == "pr_open"
        branch = row["branch"]
        git(clone, "checkout", "-q", "main")
        git(clone, "checkout", "-q", "-B", f"check-{row['candidate_id']}", "main")
        # The pushed commit applies cleanly on main...
        git(clone, "cherry-pick", f"origin/{branch}")
        # ...and the service's own tests pass with it.
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=clone,
                               capture_output=True, text=True, timeout=120)
        assert tests.returncode == 0, tests.stdout[-2000:]
        message = git(clone, "log", "-1", "--format=%B")
        assert f"Autofix-Candidate: {row['candidate_id']}" in message


def test_the_reviewer_flow_through_the_cli_ingests_triages_queues_approves_and_rejects(tmp_path: Path) -> None:
    from pipeline.demo import prepare_repo

    repo, remote = prepare_repo(EXAMPLES, tmp_path)
    (tmp_path / "autofix.toml").write_text(
        f'[[repos]]\nname = "shop"\npath = "{repo}"\nremote_url = "{remote}"\n'
        'test_command = "python -m pytest -q -p no:cacheprovider"\n'
    )
    # Event 2, not 1: every frame of event 1 holds the customer's scrubbed email, so none replays.
    events = [str(EXAMPLES / "events" / name) for name in
              ("2-checkout-coupon-absent.json", "3-profile-without-nickname.json")]
    assert autofix("ingest", *events, home=tmp_path).returncode == 0
    triaged = autofix("triage", "--json", home=tmp_path)
    assert triaged.returncode == 0, triaged.stderr[-2000:]
    assert {o["status"] for o in json.loads(triaged.stdout)["outcomes"].values()} == {"verified"}

    queued = json.loads(autofix("queue", "--json", home=tmp_path).stdout)
    assert len(queued) == 2
    keep, drop = queued
    approved = autofix("approve", keep["id"], "--reviewer", "ada", home=tmp_path)
    assert approved.returncode == 0, approved.stderr
    again = autofix("approve", keep["id"], "--json", home=tmp_path)  # a second approval returns the same PR
    assert again.returncode == 0, again.stderr
    pr = json.loads(again.stdout)
    assert pr["candidate_id"] == keep["id"] and pr["branch"].startswith("autofix/")
    assert pr["commit_sha"][:10] in approved.stdout
    rejected = autofix("reject", drop["id"], "--reason", "wrong default for this field", "--json", home=tmp_path)
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout) == {"candidate_id": drop["id"], "status": "rejected",
                                           "reason": "wrong default for this field", "reviewer": "cli"}

    assert json.loads(autofix("queue", "--json", home=tmp_path).stdout) == []
    statuses = {i["status"] for i in json.loads(autofix("issues", "--json", home=tmp_path).stdout)}
    assert statuses == {"pr_open", "rejected"}
    branches = git(tmp_path, "ls-remote", "--heads", str(remote))
    assert "refs/heads/autofix/" in branches
