"""A real `autofix serve` process on a free loopback port, for the ingestion tests.

`Server.start` runs `python -m pipeline serve --port 0` with its own AUTOFIX_HOME (and store URL),
reads the port it bound from its `server.listening` log line, and waits for /healthz. Its store is
opened directly for assertions; `wait_for` polls it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from pipeline.adapters.sql_store import SqlStore

ROOT = Path(__file__).resolve().parents[1]
DSN_KEY = "0123456789abcdef0123456789abcdef"
CLIENT_SECRET = "integration-secret-\u00e9"  # non-ASCII on purpose: keys are bytes of UTF-8
SERVICE_HOOK_SECRET = "service-hook-secret"
LEGACY_TOKEN = "legacy-token-123"
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 30.0, every: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    root: Path
    log_path: Path
    store_url: str
    port: int = 0
    _store: SqlStore | None = field(default=None, repr=False)

    @classmethod
    def start(cls, root: Path, *, store_url: str | None = None, env: dict[str, str] | None = None,
              config: str = "") -> Server:
        root.mkdir(parents=True, exist_ok=True)
        home = root / "home"
        store_url = store_url or f"sqlite:///{home / 'autofix.db'}"
        (root / "autofix.toml").write_text(config)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
        full_env.update(
            AUTOFIX_HOME=str(home), AUTOFIX_STORE_URL=store_url, AUTOFIX_CONFIG=str(root / "autofix.toml"),
            AUTOFIX_SENTRY_DSN_KEYS=f"otherkey,{DSN_KEY}", AUTOFIX_SENTRY_CLIENT_SECRET=CLIENT_SECRET,
            AUTOFIX_SENTRY_SERVICE_HOOK_SECRET=SERVICE_HOOK_SECRET, AUTOFIX_SENTRY_LEGACY_TOKEN=LEGACY_TOKEN,
            **(env or {}),
        )
        log_path = root / "serve.log"
        with log_path.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", "0"], cwd=root,
                                    env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        server = cls(proc, root, log_path, store_url)
        try:
            server.port = wait_for("the server's port", server._listening_port, timeout=60)
            wait_for("/healthz", server._healthy, timeout=60)
        except AssertionError:
            server.stop()
            raise AssertionError(f"the server did not start:\n{log_path.read_text()[-4000:]}") from None
        return server

    def _listening_port(self) -> int | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"the server exited:\n{self.log_path.read_text()[-4000:]}")
        for line in self.lines():
            if line.get("event") == "server.listening":
                return int(line["port"])
        return None

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url("/healthz"), timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def dsn(self) -> str:
        return f"http://{DSN_KEY}@127.0.0.1:{self.port}/1"

    def lines(self) -> list[dict[str, Any]]:
        text = self.log_path.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == name]

    @property
    def store(self) -> SqlStore:
        if self._store is None:
            self._store = SqlStore(self.store_url)
        return self._store

    def drained(self, timeout: float = 30.0) -> None:
        """Wait until no inbox item is pending."""
        wait_for("the inbox to drain", lambda: self.store.inbox_backlog() == 0 or None, timeout)

    def stop(self) -> int:
        if self._store is not None:
            self._store.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode
