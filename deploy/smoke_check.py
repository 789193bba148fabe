"""The host half of deploy/smoke.sh: real errors into a running compose deployment, then the proof.

Runs on the host with the project's venv, against the web service's published port:

1. the example service (examples/service) hits its four bugs through its `shop.api` handlers with
   the real sentry-sdk, its DSN pointing at the web (`/api/1/envelope/`), as record_events.py does;
2. one recorded event goes in as Sentry's signed `error.created` webhook (HMAC-SHA256 of the body
   with the client secret), with a fresh event id;
3. the JSON API (`/v1/candidates`, a Bearer token) is polled until every issue the events made has
   a candidate awaiting review, which takes the ingest worker (normalise, group) and the fix worker
   (sandbox containers on the host's engine) doing their parts;
4. `/metrics` must count every event received, show the attempts and the sandbox runs.

Prints one JSON report on stdout (figures in seconds) and exits 1 naming what failed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# The webhook carries event 3 (KeyError in display_name) once more, as Sentry would send it.
WEBHOOK_EVENT = EXAMPLES / "events" / "3-profile-without-nickname.json"

T = TypeVar("T")


class SmokeFailed(Exception):
    """One check did not hold; the message says which and what was seen."""


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float, every_s: float = 2.0) -> T:
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while True:
        try:
            found = probe()
        except (httpx.HTTPError, SmokeFailed) as exc:
            found, last_error = None, str(exc)
        if found:
            return found
        if time.monotonic() > deadline:
            raise SmokeFailed(f"timed out after {timeout_s:.0f} s waiting for {what}"
                              + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(every_s)


def send_sdk_events(base_url: str, dsn_key: str) -> list[str]:
    """Each scenario of examples/record_events.py through the real sentry-sdk; their event ids."""
    import sentry_sdk

    sys.path.insert(0, str(EXAMPLES))
    import record_events  # examples/record_events.py: the scenarios and the framework stand-in

    host = base_url.split("://", 1)[1].rstrip("/")
    sentry_sdk.init(dsn=f"http://{dsn_key}@{host}/1", include_local_variables=True,
                    release=f"shop@{record_events.__version__}", environment="production",
                    server_name="shop-web-1", default_integrations=False, auto_session_tracking=False)
    ids: list[str] = []
    for _name, route, handler, request, _expected in record_events.SCENARIOS:
        response = record_events.serve(route, handler, request)
        if response["status"] != 500:
            raise SmokeFailed(f"{route}: the example service did not crash ({response})")
        event_id = sentry_sdk.last_event_id()
        if event_id is None:
            raise SmokeFailed(f"{route}: sentry-sdk sent no event")
        ids.append(event_id)
    client = sentry_sdk.get_client()
    client.flush(timeout=30)
    client.close(timeout=30)
    return ids


def send_webhook(base_url: str, client_secret: str) -> str:
    """A recorded event as Sentry's signed `error.created` webhook; its (fresh) event id."""
    event: dict[str, Any] = json.loads(WEBHOOK_EVENT.read_text())
    event["event_id"] = uuid.uuid4().hex
    event["timestamp"] = time.time()
    payload = {"action": "created", "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
               "installation": {"uuid": str(uuid.uuid4())}, "data": {"error": event}}
    body = json.dumps(payload).encode()
    signature = hmac.new(client_secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "Sentry-Hook-Resource": "error",
               "Sentry-Hook-Signature": signature, "Sentry-Hook-Timestamp": str(int(time.time())),
               "Request-ID": str(uuid.uuid4())}
    response = httpx.post(f"{base_url}/webhooks/sentry", content=body, headers=headers, timeout=30)
    if response.status_code != 200:
        raise SmokeFailed(f"the signed webhook got {response.status_code}: {response.text[:300]}")
    # A wrong signature must be refused, or the check above proves nothing about signing.
    forged = httpx.post(f"{base_url}/webhooks/sentry", content=body,
                        headers={**headers, "Sentry-Hook-Signature": "0" * 64, "Request-ID": str(uuid.uuid4())},
                        timeout=30)
    if forged.status_code != 401:
        raise SmokeFailed(f"a webhook with a wrong signature got {forged.status_code}, not 401")
    return str(event["event_id"])


def candidates(base_url: str, token: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/v1/candidates", params={"status": "awaiting_review"},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
    if response.status_code != 200:
        raise SmokeFailed(f"GET /v1/candidates answered {response.status_code}: {response.text[:300]}")
    found: list[dict[str, Any]] = response.json()
    return found


def verified(base_url: str, token: str, summary: dict[str, Any]) -> dict[str, Any]:
    """A candidate's evidence from /v1/candidates/{id}: it must have been verified in the sandbox."""
    response = httpx.get(f"{base_url}/v1/candidates/{summary['id']}", headers={"Authorization": f"Bearer {token}"},
                         timeout=30)
    if response.status_code != 200:
        raise SmokeFailed(f"GET /v1/candidates/{summary['id']} answered {response.status_code}")
    candidate = response.json()["candidate"]
    verification = candidate.get("verification") or {}
    runs = [r["kind"] for r in verification.get("runs", [])]
    if not verification.get("verified"):
        raise SmokeFailed(f"candidate {summary['id']} ({summary.get('title')}) is not verified: "
                          f"{verification.get('reason')!r}, runs {runs}")
    return {"id": summary["id"], "title": summary.get("title"), "strategy": summary.get("strategy"),
            "confidence": summary.get("confidence"), "files": summary.get("files"), "sandbox_runs": runs,
            "seconds": candidate["cost"]["seconds"]}


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus metric's samples whose labels include `labels`."""
    total, seen = 0.0, False
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total, seen = total + float(match.group(2)), True
    if not seen:
        raise SmokeFailed(f"/metrics has no {name} {labels or ''}")
    return total


def check_metrics(base_url: str, events: int) -> dict[str, float]:
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    figures = {
        "events_received": metric(text, "autofix_events_received_total"),
        "inbox_backlog": metric(text, "autofix_inbox_backlog"),
        "attempts": metric(text, "autofix_attempts_total"),
        "sandbox_runs": metric(text, "autofix_sandbox_runs_total"),
    }
    if figures["events_received"] < events:
        raise SmokeFailed(f"/metrics counts {figures['events_received']:.0f} events received, {events} were sent")
    if figures["attempts"] < 1 or figures["sandbox_runs"] < 1:
        raise SmokeFailed(f"/metrics shows no attempt or no sandbox run: {figures}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="The web service's published address.")
    parser.add_argument("--token", required=True, help="An API token (autofix token create).")
    parser.add_argument("--dsn-key", required=True, help="A key in AUTOFIX_SENTRY_DSN_KEYS.")
    parser.add_argument("--client-secret", required=True, help="AUTOFIX_SENTRY_CLIENT_SECRET.")
    parser.add_argument("--expect-candidates", type=int, default=4,
                        help="How many candidates awaiting review prove the flow (default 4: one per bug "
                             "of the example service, as `autofix demo` makes).")
    parser.add_argument("--timeout", type=float, default=900.0, help="Seconds to wait for them.")
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    report: dict[str, Any] = {}
    try:
        if candidates(base, args.token):
            raise SmokeFailed("candidates are awaiting review before any event was sent: not a fresh deployment")
        started = time.monotonic()
        event_ids = send_sdk_events(base, args.dsn_key)
        event_ids.append(send_webhook(base, args.client_secret))
        report["events_sent"] = len(event_ids)
        report["send_s"] = round(time.monotonic() - started, 2)
        first = wait_for("a candidate awaiting review on /v1/candidates", lambda: candidates(base, args.token),
                         args.timeout)
        report["event_to_first_candidate_s"] = round(time.monotonic() - started, 1)
        report["first_candidate"] = first[0].get("title")
        found = wait_for(f"{args.expect_candidates} candidate(s) awaiting review on /v1/candidates",
                         lambda: (c := candidates(base, args.token)) and len(c) >= args.expect_candidates and c,
                         args.timeout)
        report["event_to_candidates_s"] = round(time.monotonic() - started, 1)
        report["candidates"] = [verified(base, args.token, c) for c in found]
        # The rest of the issues' attempts may still be running; the metrics need only the events.
        report["metrics"] = wait_for("/metrics to count the events", lambda: check_metrics(base, len(event_ids)), 120)
    except (SmokeFailed, httpx.HTTPError) as exc:
        report["failed"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(report, indent=1))
        print(f"smoke check FAILED: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
