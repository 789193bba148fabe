"""The review UI in headless Chromium (Playwright, /usr/bin/chromium) against a real `autofix serve`
whose store is seeded with candidates and whose code host is our GitHub REST server on 127.0.0.1.

AUTOFIX_SCREENSHOTS=docs/screenshots makes the browser test save the queue and a candidate page there
(`make screenshots`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from github_fake import FakeGitHub
from helpers_review import FILES, NAME_DIFF, PASSWORD, Seeded, config, seed
from helpers_serve import ROOT, Server

from pipeline.accounts import Reviewer, hash_password
from pipeline.adapters.sql_store import SqlStore
from pipeline.records import CandidateStatus, Cost, FixCandidate, Patch

CHROMIUM = "/usr/bin/chromium"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    server: Server
    fake: FakeGitHub
    seeded: Seeded


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("review-ui")
    fake = FakeGitHub().start()
    base = fake.seed(FILES)
    store_url = f"sqlite:///{root / 'home' / 'autofix.db'}"
    (root / "home").mkdir(parents=True)
    store = SqlStore(store_url)
    seeded = seed(store, base)
    store.close()
    server = Server.start(root, store_url=store_url, config=config(fake.base_url),
                          env={"AUTOFIX_GITHUB_TOKEN": fake.token, "AUTOFIX_GITHUB_API_URL": fake.base_url,
                               "AUTOFIX_SENTRY_URL": "https://sentry.example.com", "AUTOFIX_SENTRY_ORG": "acme"})
    try:
        yield Site(server, fake, seeded)
    finally:
        server.stop()
        fake.stop()


def logged_in(site: Site, name: str = "alice", password: str = PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=site.server.url(""), follow_redirects=False)
    token = CSRF.search(client.get("/login").text)
    assert token is not None
    answer = client.post("/login", data={"username": name, "password": password, "csrf_token": token[1]})
    assert answer.status_code == 303, answer.text
    return client


def test_requests_without_a_session_are_sent_to_the_login_page_or_refused_with_401(site: Site) -> None:
    anonymous = httpx.Client(base_url=site.server.url(""), follow_redirects=False)
    for path in ("/queue", f"/candidates/{site.seeded.name_id}", "/"):
        answer = anonymous.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")
    refused = anonymous.post(f"/candidates/{site.seeded.name_id}/approve", data={"csrf_token": "x"})
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    api = anonymous.get("/v1/candidates")
    assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
    forger = httpx.Client(base_url=site.server.url(""), follow_redirects=False,
                          cookies={"autofix_session": "eyJ1IjoiYWxpY2UifQ.forged.sig"})
    assert forger.get("/queue").status_code == 303
    assert anonymous.get("/healthz").status_code == 200  # ingestion and health keep their own rules
    store = site.server.store
    assert store.get_candidate(site.seeded.name_id).status is CandidateStatus.AWAITING_REVIEW  # type: ignore[union-attr]


def test_the_queue_filters_by_fix_class_and_status_and_login_never_redirects_off_site(site: Site) -> None:
    client = logged_in(site)
    rows = re.compile(r'class="candidate-row" data-id="([0-9a-f]+)"')
    assert rows.findall(client.get("/queue").text) == [site.seeded.name_id, site.seeded.total_id]
    assert rows.findall(client.get("/queue", params={"fix_class": "zero_division"}).text) == [site.seeded.total_id]
    assert rows.findall(client.get("/queue", params={"status": "held"}).text) == [site.seeded.held_id]
    assert rows.findall(client.get("/queue", params={"repo": "elsewhere"}).text) == []
    fresh = httpx.Client(base_url=site.server.url(""), follow_redirects=False)
    token = CSRF.search(fresh.get("/login").text)
    assert token is not None
    answer = fresh.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token[1],
                                        "next": "//evil.example/queue"})
    assert answer.status_code == 303 and answer.headers["location"] == "/queue"


def test_a_cross_site_form_post_without_or_with_a_wrong_csrf_token_is_refused_with_403(site: Site) -> None:
    client = logged_in(site)
    target = f"/candidates/{site.seeded.held_id}/reject"
    assert client.post(target, data={"reason": "forged"}).status_code == 403
    assert client.post(target, data={"reason": "forged", "csrf_token": "wrong"}).status_code == 403
    page = client.get(f"/candidates/{site.seeded.held_id}")
    token = CSRF.search(page.text)
    assert token is not None
    other_site = {"Origin": "https://evil.example"}
    assert client.post(target, data={"reason": "x", "csrf_token": token[1]}, headers=other_site).status_code == 403
    assert client.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 403
    assert site.server.store.reviews_for(site.seeded.held_id) == []
    cookies = [c for c in page.headers.get_list("set-cookie") if c.startswith("autofix_session=")]
    assert cookies and all("httponly" in c.lower() and "samesite=strict" in c.lower() for c in cookies)


def test_five_wrong_passwords_slow_logins_down_to_a_429_with_retry_after_even_for_the_right_one(site: Site) -> None:
    client = httpx.Client(base_url=site.server.url(""), follow_redirects=False)
    site.server.store.save_reviewer(Reviewer("bob", hash_password(PASSWORD)))

    def attempt(password: str) -> httpx.Response:
        token = CSRF.search(client.get("/login").text)
        assert token is not None
        return client.post("/login", data={"username": "bob", "password": password, "csrf_token": token[1]})

    assert [attempt(f"guess-{i}").status_code for i in range(5)] == [401] * 5
    locked = attempt(PASSWORD)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "too many failed logins" in locked.text
    logged_in(site, "alice")  # another reviewer from the same client is not locked out


def test_retry_on_the_page_needs_a_hint_then_sets_the_candidate_aside_with_the_hint_shown(site: Site) -> None:
    store = site.server.store
    extra = FixCandidate("fp-name", Patch("template:missing_key_default", NAME_DIFF.replace("''", "'?'"),
                                          ("shop/app.py",), "display_name: '?' for a user without a name"),
                         None, 0.7, {}, Cost(), CandidateStatus.AWAITING_REVIEW)
    store.save_candidate(extra)
    client = logged_in(site)
    token = CSRF.search(client.get(f"/candidates/{extra.id}").text)
    assert token is not None
    empty = client.post(f"/candidates/{extra.id}/retry", data={"hint": " ", "csrf_token": token[1]})
    assert empty.status_code == 400 and "needs a hint" in empty.text
    done = client.post(f"/candidates/{extra.id}/retry", data={"hint": "use an empty name", "csrf_token": token[1]})
    assert done.status_code == 303
    page = client.get(done.headers["location"]).text
    assert "use an empty name" in page and 'id="decide"' not in page
    assert store.get_candidate(extra.id).status is CandidateStatus.REJECTED  # type: ignore[union-attr]
    assert [h.text for h in store.hints_for("fp-name") if h.source == "reviewer"] == ["use an empty name"]
    assert [(a.actor, a.action, a.via) for a in store.audit_for(extra.id)] == [("alice", "retried", "ui")]


def test_a_reviewer_rejects_one_candidate_approves_another_and_sees_both_in_the_audit_log(site: Site) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ["AUTOFIX_SCREENSHOTS"]) if os.environ.get("AUTOFIX_SCREENSHOTS") else None
    if shots is not None and not shots.is_absolute():
        shots = ROOT / shots
    seeded, base = site.seeded, site.server.url("")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/queue")
        expect(page).to_have_url(re.compile(r"/login\?next="))
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/queue$"))
        rows = page.locator("tr.candidate-row")
        expect(rows).to_have_count(2)
        assert rows.nth(0).get_attribute("data-id") == seeded.name_id  # higher priority first
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "queue.png"), full_page=True)

        page.click(f"a[href='/candidates/{seeded.total_id}']")
        expect(page.locator("#diff .add")).to_contain_text("if items else 0")
        expect(page.locator("#diff .del")).to_contain_text("return sum(items) / len(items)")
        expect(page.locator("tr.run")).to_have_count(3)
        expect(page.locator("#runs")).to_contain_text("python -m pytest -q tests")
        expect(page.locator("#runs")).not_to_contain_text("sk-live-abcdef")  # scrubbed before the page
        expect(page.locator("tr.frame.localised")).to_have_count(1)
        expect(page.locator("#others")).to_contain_text(seeded.held_id)
        page.select_option("#reason-pick", "too broad: changes more than the bug needs")
        page.click("#reject")
        expect(page.locator("#status")).to_have_text("rejected")
        expect(page.locator("tr.audit-entry")).to_contain_text(["alice"])
        expect(page.locator("tr.audit-entry").first).to_contain_text("too broad")

        page.goto(f"{base}/candidates/{seeded.name_id[:6]}")  # an id prefix names the candidate
        expect(page.locator("#sentry-link")).to_have_attribute(
            "href", "https://sentry.example.com/organizations/acme/issues/4711/")
        expect(page.locator("#error-section")).to_contain_text("production")
        expect(page.locator("#error-section")).to_contain_text("shop@1.4.2")
        expect(page.locator("#stack")).not_to_contain_text("hunter2")
        if shots is not None:
            page.screenshot(path=str(shots / "candidate.png"), full_page=True)
        page.click("#approve")
        link = page.locator("#pull-request a")
        expect(link).to_have_attribute("href", re.compile(r"/acme/shop/pull/1$"))
        expect(page.locator("tr.audit-entry").first).to_contain_text("approved")
        expect(page.locator("tr.audit-entry").first).to_contain_text("127.0.0.1")
        browser.close()

    store = site.server.store
    assert store.get_candidate(seeded.total_id).status is CandidateStatus.REJECTED  # type: ignore[union-attr]
    assert store.get_candidate(seeded.name_id).status is CandidateStatus.PUBLISHED  # type: ignore[union-attr]
    assert site.fake.pulls[1]["head"]["ref"].startswith("autofix/")
    audit = [(a.actor, a.action, a.via) for c in (seeded.total_id, seeded.name_id) for a in store.audit_for(c)]
    assert audit == [("alice", "rejected", "ui"), ("alice", "approved", "ui")]
