"""`autofix show`, `diff`, `retry`, `reviewer add`, `token create`, and id prefixes on the real command line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers_cli import AUTOFIX, autofix, clean_env
from helpers_review import APP_PY, PASSWORD, Seeded, seed

from pipeline.accounts import parse_token, token_matches, verify_password
from pipeline.adapters.sql_store import SqlStore
from pipeline.records import CandidateStatus, Cost, FixCandidate, Patch


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def seeded(home: Path) -> Seeded:
    home.mkdir()
    store = SqlStore(f"sqlite:///{home / 'autofix.db'}")
    try:
        return seed(store, "")
    finally:
        store.close()


def store_of(home: Path) -> SqlStore:
    return SqlStore(f"sqlite:///{home / 'autofix.db'}")


def test_show_prints_the_error_root_cause_diff_and_runs_of_a_candidate_named_by_prefix(home: Path, seeded: Seeded) -> None:
    shown = autofix("show", seeded.total_id[:4], home=home)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert f"candidate {seeded.total_id}" in text and "ZeroDivisionError: division by zero" in text
    assert "root cause: shop/app.py:6 in total" in text
    assert "+    return sum(items) / len(items) if items else 0" in text
    assert "python -m pytest -q tests" in text and "sk-live" not in text
    as_json = json.loads(autofix("show", seeded.total_id, "--json", home=home).stdout)
    assert as_json["candidate"]["id"] == seeded.total_id and as_json["others"][0]["id"] == seeded.held_id


def test_diff_prints_only_the_patch_and_git_apply_takes_it(home: Path, seeded: Seeded, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "shop").mkdir(parents=True)
    (checkout / "shop" / "app.py").write_text(APP_PY)
    subprocess.run(["git", "init", "-q"], cwd=checkout, check=True)
    patch = autofix("diff", seeded.name_id[:6], home=home)
    assert patch.returncode == 0 and patch.stdout.startswith("--- a/shop/app.py")
    subprocess.run(["git", "apply"], cwd=checkout, input=patch.stdout, text=True, check=True)
    assert "(user.get('name') or '').title()" in (checkout / "shop" / "app.py").read_text()


def test_an_ambiguous_prefix_exits_2_naming_the_matches_and_an_unknown_one_exits_2(home: Path, seeded: Seeded) -> None:
    store = store_of(home)
    made = [FixCandidate("fp-total", Patch("template:x", f"--- a/x{i}\n", ("x",), f"variant {i}"), None, 0.1, {},
                         Cost(), CandidateStatus.HELD) for i in range(17)]
    for c in made:
        store.save_candidate(c)
    ids = sorted(c.id for c in made)
    prefix, pair = next((a[0], (a, b)) for a, b in zip(ids, ids[1:], strict=False) if a[0] == b[0])  # 17 ids, 16 first digits
    store.close()
    # Every command resolves ids through review.resolve_candidate_id (test_accounts.py); two of them here.
    for command in (["show", prefix], ["reject", prefix, "--reason", "x"]):
        answer = autofix(*command, home=home)
        assert answer.returncode == 2, (command, answer.stderr)
        assert "ambiguous" in answer.stderr and pair[0] in answer.stderr and pair[1] in answer.stderr
    unknown = autofix("show", "zzzz", home=home)
    assert unknown.returncode == 2 and "no candidate" in unknown.stderr


def test_reject_and_retry_by_prefix_are_audited_as_cli_decisions_and_the_hint_is_kept(home: Path, seeded: Seeded) -> None:
    assert autofix("reject", seeded.name_id[:5], "--reason", "wrong place", "--reviewer", "carol",
                   home=home).returncode == 0
    retried = autofix("retry", seeded.total_id[:5], "--hint", "return 0.0 for no items", "--json", home=home)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["status"] == "retried"
    store = store_of(home)
    assert [(a.actor, a.action, a.via) for a in store.audit_for(seeded.name_id)] == [("carol", "rejected", "cli")]
    assert [(a.action, a.detail) for a in store.audit_for(seeded.total_id)] == [("retried", "return 0.0 for no items")]
    assert [h.text for h in store.hints_for("fp-total")] == ["return 0.0 for no items"]
    store.close()


def test_reviewer_add_stores_a_scrypt_hash_and_token_create_prints_a_token_stored_hashed(home: Path, seeded: Seeded) -> None:
    def add(name: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*AUTOFIX, "reviewer", "add", name, "--password-stdin"], input=password + "\n",
                              text=True, capture_output=True, cwd=home, env=clean_env(AUTOFIX_HOME=str(home)))

    added = add("dora", "a long passphrase")
    assert added.returncode == 0, added.stderr
    short = add("eve", "short")
    assert short.returncode == 2 and "at least 8" in short.stderr
    made = json.loads(autofix("token", "create", "bot", "--json", home=home).stdout)
    store = store_of(home)
    dora = store.get_reviewer("dora")
    assert dora is not None and dora.password_hash.startswith("scrypt$")
    assert verify_password("a long passphrase", dora.password_hash) and not verify_password(PASSWORD, dora.password_hash)
    assert store.get_reviewer("eve") is None
    parsed = parse_token(made["token"])
    assert parsed is not None
    record = store.get_token(parsed[0])
    assert record is not None and record.name == "bot" and token_matches(parsed[1], record)
    assert parsed[1] not in record.secret_hash
    store.close()
