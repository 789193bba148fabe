"""Per-run overhead of each sandbox backend, next to the same command run bare.

Two workloads, each run `--runs` times per backend after one warm-up run:

* trivial: `true`;
* suite: the example service's own tests (`python -m pytest -q` in a copy of examples/service),
  with pytest from a repo environment made the way verification makes one: wheels downloaded on
  the host, then `<sandbox.python> -m venv` and an offline `pip install` inside the sandbox. The
  bare run uses the bwrap environment (its venv points at this host's interpreter), so bare, local
  and bwrap run the very same interpreter and pytest; docker runs the image's.

Figures are wall-clock medians of `Sandbox.run` (the docker figure includes creating, starting and
removing its container), the overhead is median minus the bare median, the ratio median over bare.

Usage::

    DOCKER_HOST=unix:///run/podman/podman.sock .venv/bin/python bench/sandbox_overhead.py [--runs 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pytest
import structlog

from pipeline.errors import SandboxUnavailable
from pipeline.ports import Limits, Sandbox
from sandbox.config import make_sandbox
from sandbox.process import clean_env

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "examples" / "service"
LIMITS = Limits(timeout_s=300)


def _median_of(runs: int, once: Callable[[], None]) -> float:
    once()  # warm-up: page cache, the engine's first container, pyc of the venv
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _bare(argv: Sequence[str], cwd: Path) -> None:
    # The environment the sandboxes give their commands, so only the sandboxing differs.
    env = clean_env(str(cwd), {"PYTHONDONTWRITEBYTECODE": "1"})
    done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bare run of {argv} failed: {done.stdout.decode()[-500:]}")


def _sandboxed(sandbox: Sandbox, argv: Sequence[str], cwd: Path, ro: Sequence[Path]) -> None:
    result = sandbox.run(cwd, argv, LIMITS, ro_paths=ro)
    if result.exit_code != 0:
        raise SystemExit(f"{sandbox.name} run of {argv} failed: {result.output[-500:]}")


def _wheelhouse(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest",
                    str(folder), f"pytest=={pytest.__version__}"], check=True, timeout=300)
    return folder


def _make_env(sandbox: Sandbox, wheels: Path, folder: Path) -> Path:
    folder.mkdir(mode=0o755)
    shutil.copytree(wheels, folder / "wheels")
    for argv in ([sandbox.python, "-m", "venv", "venv"],
                 [str(folder / "venv/bin/python"), "-m", "pip", "install", "--quiet", "--no-index",
                  "--find-links", "wheels", "pytest"]):
        result = sandbox.run(folder, argv, LIMITS)
        if result.exit_code != 0:
            raise SystemExit(f"making the {sandbox.name} environment failed: {result.output[-1000:]}")
    return folder


def measure(runs: int, backends: Sequence[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="autofix-bench-") as tmp:
        base = Path(tmp)
        base.chmod(0o755)
        wheels = _wheelhouse(base / "wheels")
        sandboxes: dict[str, Sandbox] = {}
        for name in backends:
            try:
                sandboxes[name] = make_sandbox(name)
            except SandboxUnavailable as exc:
                print(f"skipping {name}: {exc}", file=sys.stderr)
        envs = {name: _make_env(sb, wheels, base / f"env-{name}") for name, sb in sandboxes.items()
                if name != "local"}
        host_env = envs.get("bwrap") or _make_env(make_sandbox("local"), wheels, base / "env-host")
        envs.setdefault("local", host_env)

        def suite_dir(name: str) -> Path:
            work = base / f"service-{name}"
            if not work.exists():
                shutil.copytree(SERVICE, work, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
            return work

        suite = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
        trivial_bare = _median_of(runs, lambda: _bare(["true"], base))
        suite_bare = _median_of(runs, lambda: _bare([str(host_env / "venv/bin/python"), *suite], suite_dir("bare")))
        rows.append(_row("bare", trivial_bare, trivial_bare, suite_bare, suite_bare))
        for name, sb in sandboxes.items():
            env = envs[name]
            trivial = _median_of(runs, partial(_sandboxed, sb, ["true"], base / "wheels", ()))
            argv = [str(env / "venv/bin/python"), *suite]
            tests = _median_of(runs, partial(_sandboxed, sb, argv, suite_dir(name), [env]))
            rows.append(_row(name, trivial, trivial_bare, tests, suite_bare))
    return rows


def _row(name: str, trivial: float, trivial_bare: float, suite: float, suite_bare: float) -> dict[str, object]:
    return {
        "backend": name,
        "trivial_s": round(trivial, 4),
        "trivial_overhead_s": round(trivial - trivial_bare, 4),
        "suite_s": round(suite, 3),
        "suite_overhead_s": round(suite - suite_bare, 3),
        "suite_ratio": round(suite / suite_bare, 2),
    }


def markdown(rows: Sequence[dict[str, object]]) -> str:
    lines = ["| backend | `true` (s) | overhead (s) | examples' tests (s) | overhead (s) | ratio to bare |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['trivial_s']} | {r['trivial_overhead_s']} | {r['suite_s']} | "
                     f"{r['suite_overhead_s']} | {r['suite_ratio']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--backend", action="append", choices=["local", "bwrap", "docker"],
                        help="backends to measure (default: all three)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rows = measure(args.runs, args.backend or ["local", "bwrap", "docker"])
    print(json.dumps(rows, indent=2) if args.json else markdown(rows))


if __name__ == "__main__":
    main()
