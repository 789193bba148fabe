"""Shared builders for the fix-engine tests: records, small source trees and throwaway git repos."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.records import ErrorEvent, ExceptionInfo, Frame, Issue

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write repo-relative files under root and return root."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def line_of(source: str, needle: str) -> int:
    """The 1-based number of the only line containing needle."""
    hits = [i + 1 for i, text in enumerate(source.splitlines()) if needle in text]
    assert len(hits) == 1, f"{needle!r} found on lines {hits}"
    return hits[0]


def frame(
    function: str, filename: str, lineno: int | None = None, *, context_line: str | None = None,
    abs_path: str | None = None, module: str | None = None, in_app: bool = True,
    vars: Mapping[str, Any] | None = None,
) -> Frame:
    return Frame(function=function, filename=filename, abs_path=abs_path, module=module, lineno=lineno,
                 context_line=context_line, in_app=in_app, vars=dict(vars or {}))


def event(*exceptions: ExceptionInfo, event_id: str = "evt-1") -> ErrorEvent:
    return ErrorEvent(id=event_id, source="sentry-event", platform="python", exceptions=exceptions,
                      received_at=WHEN)


def exc(type_: str, value: str, *frames: Frame) -> ExceptionInfo:
    return ExceptionInfo(type=type_, value=value, frames=frames)


def issue(fix_class: str = "test") -> Issue:
    return Issue(fingerprint="fp-1", title="t", culprit="c", fix_class=fix_class, first_seen=WHEN,
                 last_seen=WHEN)


def git(cwd: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false",
            *args]
    return subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, text=True, check=check)


def init_repo(root: Path, files: Mapping[str, str]) -> Path:
    """A git repo on branch main with files committed."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    write_tree(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def build_wheel(package_dir: Path, name: str, version: str, dest: Path) -> Path:
    """A pure-Python wheel of one package folder, written by hand (no build backend, no network)."""
    import base64
    import hashlib
    import zipfile

    dest.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    files = {f"{package_dir.name}/{p.relative_to(package_dir).as_posix()}": p.read_bytes()
             for p in sorted(package_dir.rglob("*.py"))}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{arc},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
              f"{len(data)}" for arc, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for arc, data in files.items():
            zf.writestr(arc, data)
    return wheel
