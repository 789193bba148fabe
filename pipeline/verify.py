"""Prove a patch in a sandbox: the reproduction fails before and passes after; the tests pass after.

Everything runs inside the Sandbox port (no network, only the worktree writable). The reproduction
file lives in a dot-folder of the worktree: pytest does not collect dot-folders, so the repo's own
test command never runs it, and it is not part of the patch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from pipeline.errors import PatchDoesNotApply
from pipeline.ports import Limits, RunResult, Sandbox
from pipeline.records import Patch, SandboxRun, Verification
from pipeline.repro import MARKER, Reproduction
from sandbox.workspace import open_workspace

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class VerifyRequest:
    repo_root: Path
    patch: Patch
    reproduction: Reproduction | None
    test_command: str | None
    work_base: Path
    limits: Limits = Limits()
    ref: str = "HEAD"
    tool_paths: tuple[Path, ...] = ()


def _env(workdir: Path, tool_paths: Sequence[Path] = ()) -> dict[str, str]:
    # A repo's own tools (its virtualenv, mounted read-only) come first; then the interpreter that
    # runs autofix, which also runs the reproduction.
    bins = [str(p / "bin") for p in tool_paths if (p / "bin").is_dir()]
    path = ":".join([*bins, os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"])
    return {"PATH": path, "AUTOFIX_REPO": str(workdir)}


def _record(kind: str, command: str, result: RunResult) -> SandboxRun:
    return SandboxRun(kind, command, result.exit_code, round(result.duration_s, 3), result.output,
                      result.timed_out)


def _repro_command(repro: Reproduction) -> list[str]:
    # The first python on the sandbox's PATH (see _env): a repo's mounted environment when there is
    # one, else autofix's own (bwrap, local) or the image's (docker, where host paths do not exist).
    return ["python", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", repro.path]


def run_reproduction(request: VerifyRequest, sandbox: Sandbox) -> SandboxRun | None:
    """Run the reproduction on the unpatched checkout, once per issue, shared by its patches."""
    repro = request.reproduction
    if repro is None:
        return None
    with open_workspace(request.repo_root, request.work_base, request.ref) as ws:
        ws.write_file(repro.path, repro.source)
        cmd = _repro_command(repro)
        return _record("repro_before", " ".join(cmd[2:]),
                       sandbox.run(ws.path, cmd, request.limits, _env(ws.path, request.tool_paths)))


def reproduced(before: SandboxRun | None) -> bool:
    """The reproduction failed with the event's exception (not with some unrelated error)."""
    return before is not None and not before.passed and MARKER in before.output_tail


def verify(request: VerifyRequest, sandbox: Sandbox, before: SandboxRun | None) -> Verification:
    """Apply the patch in a fresh worktree and run the reproduction, then the test command."""
    runs: list[SandboxRun] = [before] if before is not None else []
    repro = request.reproduction
    with open_workspace(request.repo_root, request.work_base, request.ref) as ws:
        env = _env(ws.path, request.tool_paths)
        try:
            ws.apply(request.patch.diff)
        except PatchDoesNotApply as exc:
            log.info("patch.not_applied", patch=request.patch.id, reason=str(exc))
            return Verification(tuple(runs), reproduced(before), False, None, applied=False, reason=str(exc))
        repro_after = False
        if repro is not None:
            ws.write_file(repro.path, repro.source)
            cmd = _repro_command(repro)
            after = _record("repro_after", " ".join(cmd[2:]), sandbox.run(ws.path, cmd, request.limits, env))
            runs.append(after)
            repro_after = after.passed
        tests_after: bool | None = None
        # The suite is the slow part: skip it for a patch the reproduction already rejected.
        if request.test_command and (repro is None or repro_after):
            cmd = ["sh", "-c", request.test_command]
            tests = _record("tests_after", request.test_command, sandbox.run(ws.path, cmd, request.limits, env))
            runs.append(tests)
            tests_after = tests.passed
    was_reproduced = reproduced(before)
    reason = _reason(repro, was_reproduced, repro_after, tests_after)
    verification = Verification(tuple(runs), was_reproduced, repro_after, tests_after, reason=reason)
    log.info("patch.verified" if verification.verified else "patch.not_verified",
             patch=request.patch.id, reason=reason)
    return verification


def _reason(repro: Reproduction | None, reproduced: bool, repro_after: bool, tests_after: bool | None) -> str:
    if repro is None:
        return "no reproduction could be written from the event"
    if not reproduced:
        return "the reproduction did not fail with the event's exception before the patch"
    if not repro_after:
        return "the reproduction still fails after the patch"
    if tests_after is False:
        return "the test command fails after the patch"
    through = f" (through caller {repro.qualname})" if repro.via == "caller" else ""
    return f"reproduced before{through}, passes after" + ("" if tests_after is None else ", tests pass")
