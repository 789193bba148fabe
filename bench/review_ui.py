"""Figures for the review UI: how long the queue, a candidate page and a login take in the real app.

    .venv/bin/python bench/review_ui.py [--candidates 200] [--rounds 30]

Seeds a SQLite store with the test seed plus N held candidates, serves it in-process (create_app,
FastAPI's TestClient) and prints the median and p90 of each request, in milliseconds.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fastapi.testclient import TestClient  # noqa: E402
from helpers_review import PASSWORD, seed  # noqa: E402

from pipeline import logging_setup  # noqa: E402
from pipeline.records import CandidateStatus, Cost, FixCandidate, Patch  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.web.app import create_app  # noqa: E402
from pipeline.wiring import Deps  # noqa: E402


def timed(call: object, rounds: int) -> tuple[float, float]:
    assert callable(call)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    logging_setup.configure("warning")
    home = Path(tempfile.mkdtemp())
    settings = Settings(home=home, store_url=f"sqlite:///{home / 'a.db'}", repos=[{"name": "shop"}])
    deps = Deps(settings)
    seeded = seed(deps.inbox_store, "")
    for i in range(args.candidates):
        deps.store.save_candidate(FixCandidate("fp-total", Patch("template:x", f"--- a/x{i}\n", ("x",), f"v{i}"),
                                               None, 0.9, {}, Cost(), CandidateStatus.AWAITING_REVIEW))
    with TestClient(create_app(settings, deps=deps)) as client:
        def login() -> None:
            client.cookies.clear()
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
            assert token is not None
            answer = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token[1]},
                                 follow_redirects=False)
            assert answer.status_code == 303, answer.status_code

        figures = {"GET + POST /login (scrypt check)": timed(login, 10)}
        figures[f"GET /queue ({args.candidates + 2} candidates)"] = timed(lambda: client.get("/queue"), args.rounds)
        figures["GET /candidates/{id}"] = timed(lambda: client.get(f"/candidates/{seeded.total_id}"), args.rounds)
        figures["GET /v1/candidates (token)"] = timed(
            lambda: client.get("/v1/candidates", headers={"Authorization": f"Bearer {seeded.token}"}), args.rounds)
    for name, (median, p90) in figures.items():
        print(f"{name:40s} median {median:7.1f} ms   p90 {p90:7.1f} ms")


if __name__ == "__main__":
    main()
