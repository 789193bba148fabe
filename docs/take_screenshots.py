"""The README's screenshots of the review UI, taken from a real `autofix demo` store in headless Chromium.

    .venv/bin/python docs/take_screenshots.py [--out docs/screenshots]     (or: make screenshots)

Runs the demo into a temporary AUTOFIX_HOME, adds a reviewer, starts `autofix serve` on a free port,
logs in through the login form and photographs the queue and the first candidate's page.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

AUTOFIX = [sys.executable, "-m", "pipeline"]
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="autofix-shots-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
        env.update(AUTOFIX_HOME=str(Path(tmp) / "home"), AUTOFIX_SANDBOX="bwrap")
        subprocess.run([*AUTOFIX, "demo"], env=env, cwd=tmp, check=True, capture_output=True)
        subprocess.run([*AUTOFIX, "reviewer", "add", "alice", "--password-stdin"], env=env, cwd=tmp,
                       input=PASSWORD, text=True, check=True, capture_output=True)
        port = free_port()
        server = subprocess.Popen([*AUTOFIX, "serve", "--port", str(port)], env=env, cwd=tmp,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium")
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{base}/login")
                page.fill("input[name=username]", "alice")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit], input[type=submit]")
                page.wait_for_url(re.compile(r".*/queue.*"))
                page.screenshot(path=str(args.out / "queue.png"), full_page=True)
                page.click("a[href^='/candidates/']")
                page.wait_for_url(re.compile(r".*/candidates/.*"))
                page.screenshot(path=str(args.out / "candidate.png"), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"wrote {args.out / 'queue.png'} and {args.out / 'candidate.png'}")


if __name__ == "__main__":
    main()
