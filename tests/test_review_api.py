"""The JSON API under /v1/ in the real app (create_app, a SQLite store, the GitHub fake for approval):
token and session auth, list/show/approve/reject/retry/stats, and the OpenAPI document describing it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from github_fake import FakeGitHub
from helpers_review import FILES, PASSWORD, Seeded, seed

from pipeline.accounts import new_token
from pipeline.records import CandidateStatus, IssueStatus
from pipeline.settings import Settings
from pipeline.web.app import create_app
from pipeline.wiring import Deps


@dataclass
class Api:
    client: TestClient
    deps: Deps
    fake: FakeGitHub
    seeded: Seeded

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seeded.token}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    fake = FakeGitHub().start()
    base = fake.seed(FILES)
    settings = Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path / 'a.db'}",
                        repos=[{"name": "shop", "host": "github", "github_repo": "acme/shop"}],
                        github_token=fake.token, github_api_url=fake.base_url,
                        github_client={"seconds_between_requests": 0, "seconds_between_writes": 0},
                        public_base_url="http://review.example")
    deps = Deps(settings)
    seeded = seed(deps.inbox_store, base)
    with TestClient(create_app(settings, deps=deps)) as client:
        yield Api(client, deps, fake, seeded)
    fake.stop()


def test_every_api_route_needs_a_valid_token_or_session(api: Api) -> None:
    c, cid = api.client, api.seeded.name_id
    wrong = {"Authorization": "Bearer afx_nope_" + "x" * 40}
    _, other = new_token("unsaved")
    forged = {"Authorization": f"Bearer afx_{api.seeded.token.split('_')[1]}_{'y' * 43}"}  # a real id, a wrong secret
    for headers in ({}, wrong, forged, {"Authorization": "Basic YWxpY2U6eA=="}, {"Authorization": "Bearer"}):
        assert c.get("/v1/candidates", headers=headers).status_code == 401
        assert c.get(f"/v1/candidates/{cid}", headers=headers).status_code == 401
        assert c.post(f"/v1/candidates/{cid}/reject", json={"reason": "x"}, headers=headers).status_code == 401
        assert c.get("/v1/stats", headers=headers).status_code == 401
    assert other.id != api.seeded.token
    assert api.deps.store.get_candidate(cid).status is CandidateStatus.AWAITING_REVIEW  # type: ignore[union-attr]


def test_the_list_is_ordered_by_priority_then_confidence_and_filters_by_repo_class_and_status(api: Api) -> None:
    c = api.client
    listed = c.get("/v1/candidates", headers=api.auth()).json()
    assert [row["id"] for row in listed] == [api.seeded.name_id, api.seeded.total_id]
    assert listed[0]["fix_class"] == "missing_key" and listed[0]["priority"] == 5.0
    only = c.get("/v1/candidates", params={"fix_class": "zero_division"}, headers=api.auth()).json()
    assert [row["id"] for row in only] == [api.seeded.total_id]
    assert c.get("/v1/candidates", params={"repo": "other"}, headers=api.auth()).json() == []
    held = c.get("/v1/candidates", params={"status": "held"}, headers=api.auth()).json()
    assert [row["id"] for row in held] == [api.seeded.held_id]
    assert len(c.get("/v1/candidates", params={"status": "all"}, headers=api.auth()).json()) == 3
    assert c.get("/v1/candidates", params={"status": "nonsense"}, headers=api.auth()).status_code == 400


def test_show_gives_the_error_runs_others_and_scrubs_secrets_and_takes_an_id_prefix(api: Api) -> None:
    store = api.deps.store
    issue = store.get_issue("fp-total")
    assert issue is not None
    store.update_issue(replace(issue, title="ZeroDivisionError for jane.doe@example.com"))
    shown = api.client.get(f"/v1/candidates/{api.seeded.total_id[:5]}", headers=api.auth())
    assert shown.status_code == 200
    body = shown.json()
    assert body["candidate"]["id"] == api.seeded.total_id
    assert [r["exit_code"] for r in body["candidate"]["verification"]["runs"]] == [1, 0, 0]
    assert "sk-live" not in shown.text and "s3cret" not in shown.text and "jane.doe" not in shown.text
    assert body["issue"]["title"].startswith("ZeroDivisionError for [Filtered")
    assert body["event"]["environment"] == "production" and body["event"]["release"] == "shop@1.4.2"
    assert body["localised_frames"] == ["shop/app.py:6 total"]
    assert [o["id"] for o in body["others"]] == [api.seeded.held_id]
    assert body["others"][0]["why"]
    assert api.client.get("/v1/candidates/ffffffffffff", headers=api.auth()).status_code == 404


def test_approve_reject_and_retry_decide_once_each_and_are_audited_with_the_tokens_name(api: Api) -> None:
    c, s = api.client, api.seeded
    approved = c.post(f"/v1/candidates/{s.name_id}/approve", headers=api.auth())
    assert approved.status_code == 200, approved.text
    pr = approved.json()["pull_request"]
    assert pr["number"] == 1 and pr["url"].endswith("/acme/shop/pull/1")
    assert f"http://review.example/candidates/{s.name_id}" in api.fake.pulls[1]["body"]
    again = c.post(f"/v1/candidates/{s.name_id}/approve", headers=api.auth())
    assert again.json()["pull_request"]["url"] == pr["url"] and len(api.fake.pulls) == 1

    assert c.post(f"/v1/candidates/{s.total_id}/reject", json={"reason": ""}, headers=api.auth()).status_code == 422
    assert c.post(f"/v1/candidates/{s.total_id}/reject", json={"reason": "wrong place"},
                  headers=api.auth()).status_code == 200
    late = c.post(f"/v1/candidates/{s.total_id}/reject", json={"reason": "twice"}, headers=api.auth())
    assert late.status_code == 409 and "not awaiting review" in late.json()["detail"]
    assert c.post(f"/v1/candidates/{s.total_id}/approve", headers=api.auth()).status_code == 409

    audit = c.get(f"/v1/candidates/{s.total_id}", headers=api.auth()).json()["audit"]
    assert [(a["actor"], a["action"], a["via"], a["detail"]) for a in audit] == [
        ("token:chatops", "rejected", "api", "wrong place")]
    stats = c.get("/v1/stats", headers=api.auth()).json()
    assert stats["rejection_reasons"] == [{"reason": "wrong place", "count": 1}]
    rows = {(r["fix_class"], r["strategy"]): (r["approvals"], r["rejections"]) for r in stats["acceptance"]}
    assert rows == {("missing_key", "template:missing_key"): (1, 0), ("zero_division", "template:zero_division"): (0, 1)}


def test_a_retry_stores_the_hint_for_the_issues_next_attempt_and_reopens_the_issue(api: Api) -> None:
    s, store = api.seeded, api.deps.store
    answer = api.client.post(f"/v1/candidates/{s.total_id}/retry",
                             json={"hint": "return 0.0, callers format it as a float; token=abc123"},
                             headers=api.auth())
    assert answer.status_code == 200 and answer.json()["status"] == "retried"
    [hint] = store.hints_for("fp-total")
    assert hint.source == "reviewer" and hint.candidate_id == s.total_id
    assert hint.text.startswith("return 0.0") and "abc123" not in hint.text  # scrubbed like any outside text
    assert store.get_candidate(s.total_id).status is CandidateStatus.REJECTED  # type: ignore[union-attr]
    assert store.get_issue("fp-total").status is IssueStatus.TRIAGED  # type: ignore[union-attr]
    empty = api.client.post(f"/v1/candidates/{s.name_id}/retry", json={"hint": "   "}, headers=api.auth())
    assert empty.status_code == 409


def test_a_session_may_use_the_api_but_writes_need_its_csrf_header(api: Api) -> None:
    c = api.client
    login = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert token is not None
    assert c.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token[1]},
                  follow_redirects=False).status_code == 303
    assert c.get("/v1/candidates").status_code == 200
    target = f"/v1/candidates/{api.seeded.total_id}/reject"
    assert c.post(target, json={"reason": "x"}).status_code == 403
    page = c.get(f"/candidates/{api.seeded.total_id}")
    session_csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert session_csrf is not None
    assert c.post(target, json={"reason": "x"}, headers={"X-CSRF-Token": session_csrf[1]}).status_code == 200
    audit = api.deps.accounts.audit_for(api.seeded.total_id)
    assert [(a.actor, a.via) for a in audit] == [("alice", "api")]


def test_the_openapi_document_describes_the_v1_api_and_its_bearer_auth(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert set(p for p in paths if p.startswith("/v1/")) == {
        "/v1/candidates", "/v1/candidates/{candidate_id}", "/v1/candidates/{candidate_id}/approve",
        "/v1/candidates/{candidate_id}/reject", "/v1/candidates/{candidate_id}/retry", "/v1/stats"}
    assert "/queue" not in paths and "/login" not in paths  # pages are not part of the API
    assert set(paths["/v1/candidates/{candidate_id}/reject"]) == {"post"}
    reject = paths["/v1/candidates/{candidate_id}/reject"]["post"]
    assert reject["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RejectIn")
    assert {"401", "404", "409"} <= set(reject["responses"])
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"HTTPBearer": []} in paths["/v1/candidates"]["get"]["security"]
    schemas = doc["components"]["schemas"]
    assert {"CandidateSummary", "CandidateDetail", "Decision", "RetryIn"} <= set(schemas)
    assert schemas["RejectIn"]["required"] == ["reason"]
    assert schemas["RejectIn"]["properties"]["reason"]["minLength"] == 1


def _session_csrf(api: Api) -> str:
    c = api.client
    login = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert login is not None
    assert c.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": login[1]},
                  follow_redirects=False).status_code == 303
    page = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/queue").text)
    assert page is not None
    return page[1]


def test_a_session_idle_longer_than_the_limit_is_refused_and_logout_ends_one(api: Api) -> None:
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    from pipeline.web.auth import secret_key

    settings = api.deps.settings

    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return super().get_timestamp() - settings.review_ui.session_idle_s - 5

    stale = URLSafeTimedSerializer(secret_key(settings), salt="autofix.session", signer=Earlier)
    cookie = stale.dumps({"u": "alice", "c": "t"})
    idle = TestClient(api.client.app, cookies={"autofix_session": cookie})
    assert idle.get("/queue", follow_redirects=False).status_code == 303
    assert idle.get("/v1/candidates").status_code == 401
    fresh = URLSafeTimedSerializer(secret_key(settings), salt="autofix.session").dumps({"u": "alice", "c": "t"})
    assert TestClient(api.client.app, cookies={"autofix_session": fresh}).get("/queue").status_code == 200

    csrf = _session_csrf(api)
    assert api.client.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    out = api.client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert api.client.get("/queue", follow_redirects=False).status_code == 303


def test_a_code_host_failure_is_audited_and_approving_again_resumes_the_publication(api: Api) -> None:
    s = api.seeded
    api.fake.fail_next("POST", r"/git/blobs$", 401, {"message": "Bad credentials", "documentation_url": "x"})
    failed = api.client.post(f"/v1/candidates/{s.name_id}/approve", headers=api.auth())
    assert failed.status_code == 502 and "Bad credentials" in failed.json()["detail"]
    assert api.fake.pulls == {}
    assert api.deps.store.get_candidate(s.name_id).status is CandidateStatus.APPROVED  # type: ignore[union-attr]
    resumed = api.client.post(f"/v1/candidates/{s.name_id}/approve", headers=api.auth())
    assert resumed.status_code == 200 and resumed.json()["pull_request"]["number"] == 1
    audit = api.deps.accounts.audit_for(s.name_id)
    assert [a.action for a in audit] == ["approve_failed", "approved"]
    assert "Bad credentials" in audit[0].detail and audit[1].detail.endswith("/pull/1")
