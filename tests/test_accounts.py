"""Accounts, tokens, the login limit, id prefixes and the shared decision path, without a server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from helpers_review import WHEN, seed

from pipeline.accounts import (
    ApiToken,
    AuditEntry,
    Reviewer,
    hash_password,
    new_token,
    parse_token,
    token_matches,
    verify_password,
)
from pipeline.adapters.sql_store import SqlStore
from pipeline.errors import NotFound
from pipeline.records import CandidateStatus, Cost, FixCandidate, Patch
from pipeline.review import Actor, AmbiguousId, ReviewError, decide_reject, decide_retry, resolve_candidate_id
from pipeline.settings import Settings
from pipeline.triage import prepare
from pipeline.web.auth import LoginLimiter


def test_a_password_hash_is_salted_scrypt_and_only_the_right_password_verifies() -> None:
    first, second = hash_password("a long passphrase"), hash_password("a long passphrase")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert verify_password("a long passphrase", first) and verify_password("a long passphrase", second)
    assert not verify_password("a long passphrasE", first)
    for broken in ("", "scrypt$1$2", "argon2$x$y$z$a$b", "scrypt$16384$8$1$!!$!!"):
        assert not verify_password("x", broken)


def test_a_token_is_found_by_its_public_id_and_matched_by_the_hash_of_its_secret() -> None:
    token, record = new_token("bot")
    parsed = parse_token(token)
    assert parsed is not None and parsed[0] == record.id and parsed[1] not in record.secret_hash
    assert token_matches(parsed[1], record) and not token_matches(parsed[1] + "x", record)
    assert parse_token("ghp_abc") is None and parse_token("afx_") is None and parse_token("afx_id") is None


def test_five_failures_lock_a_name_from_a_client_while_other_names_from_it_may_still_try() -> None:
    limiter = LoginLimiter(max_failures=5, window_s=900, lockout_s=60)
    bob, alice = limiter.keys("Bob", "10.0.0.1"), limiter.keys("alice", "10.0.0.1")
    delays = [limiter.failed(bob) for _ in range(4)]
    assert delays == sorted(delays) and delays[-1] > delays[0]  # each failure waits longer
    assert limiter.retry_after(bob) is None
    limiter.failed(bob)
    assert limiter.retry_after(bob) is not None and limiter.retry_after(limiter.keys("bob", "10.0.0.1"))
    assert limiter.retry_after(alice) is None
    for _ in range(15):  # the client's own counter: 20 failures across names lock every name from it
        limiter.failed(limiter.keys("mallory", "10.0.0.1"))
    assert limiter.retry_after(alice) is not None
    assert limiter.retry_after(limiter.keys("alice", "10.0.0.2")) is None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> SqlStore:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    s = SqlStore(url)
    request.addfinalizer(s.close)
    return s


def test_reviewers_tokens_and_audit_entries_are_kept_and_a_new_password_replaces_the_old(store: SqlStore) -> None:
    store.save_reviewer(Reviewer("alice", hash_password("first password")))
    store.save_reviewer(Reviewer("alice", hash_password("second password")))
    alice = store.get_reviewer("alice")
    assert alice is not None and verify_password("second password", alice.password_hash)
    assert store.get_reviewer("nobody") is None
    store.save_token(ApiToken("abc123", "bot", "f" * 64))
    assert store.get_token("abc123") == ApiToken("abc123", "bot", "f" * 64, store.get_token("abc123").created_at)  # type: ignore[union-attr]
    later = AuditEntry("c1", "alice", "rejected", "ui", "127.0.0.1", "wrong place", WHEN + timedelta(seconds=1))
    store.add_audit(later)
    store.add_audit(AuditEntry("c1", "bob", "approve_failed", "api", "10.0.0.2", "host down", WHEN))
    store.add_audit(AuditEntry("c2", "carol", "approved", "cli", "root", "https://x/pull/1", WHEN))
    assert [(a.actor, a.action) for a in store.audit_for("c1")] == [("bob", "approve_failed"), ("alice", "rejected")]
    assert store.audit_for("c1")[1] == later


def test_a_prefix_names_one_candidate_and_like_wildcards_in_it_match_nothing(store: SqlStore) -> None:
    seeded = seed(store, "")
    assert resolve_candidate_id(store, seeded.name_id[:3]) in {seeded.name_id}
    assert resolve_candidate_id(store, seeded.name_id) == seeded.name_id
    for nonsense in ("%", "_", seeded.name_id[:2] + "%", "zz"):
        with pytest.raises(NotFound):
            resolve_candidate_id(store, nonsense)
    made = [FixCandidate("fp-total", Patch("template:x", f"--- a/x{i}\n", ("x",), "v"), None, 0.1, {}, Cost(),
                         CandidateStatus.HELD) for i in range(17)]
    for c in made:
        store.save_candidate(c)
    ids = sorted(c.id for c in made)
    a, b = next((a, b) for a, b in zip(ids, ids[1:], strict=False) if a[0] == b[0])
    with pytest.raises(AmbiguousId) as raised:
        resolve_candidate_id(store, a[0])
    assert a in str(raised.value) and b in str(raised.value)


def test_a_reviewers_hint_reaches_the_next_attempts_fix_request(store: SqlStore, tmp_path: Path) -> None:
    seeded = seed(store, "")
    checkout = tmp_path / "shop"
    checkout.mkdir()
    settings = Settings(home=tmp_path / "home", repos=[{"name": "shop", "path": str(checkout)}])
    decide_retry(store, store, seeded.total_id, Actor("alice", "ui", "127.0.0.1"), "  keep the float: return 0.0  ")
    issue = store.get_issue("fp-total")
    assert issue is not None
    prepared = prepare(store, settings, issue, tmp_path / "work")
    assert not isinstance(prepared, str), prepared
    _, request = prepared
    assert [(h.source, h.text) for h in request.hints] == [("reviewer", "keep the float: return 0.0")]
    total = store.get_candidate(seeded.total_id)
    assert total is not None and total.patch.id in request.tried  # the same patch is never proposed again
    with pytest.raises(ReviewError):
        decide_reject(store, store, seeded.name_id, Actor("alice", "ui"), "   ")
    assert store.audit_for(seeded.name_id) == []
