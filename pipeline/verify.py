"""Prove a patch in a sandbox, against a baseline computed once per issue.

The baseline runs on the unpatched commit: every replay (each must fail with the event's exception
to count as reproduced) and then the repo's tests. Each patch then gets a fresh worktree of the same
commit: it must apply, its Python files must still compile and add no undefined name, every replay
that reproduced must complete with no exception, and no test that passed on the base may fail.

All runs go through the Sandbox port with the repo's environment (sandbox/env.py) mounted
read-only and first on PATH. `verify_patch(setup, baseline, patch)` depends on nothing else, so a
fixer that iterates can be handed `functools.partial(verify_patch, setup, baseline)` as its
`verify(patch) -> Verification` callback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from pipeline import static_checks
from pipeline.errors import PatchDoesNotApply
from pipeline.fixers.diffing import changed_old_lines, diff_files
from pipeline.ports import Limits, RunResult, Sandbox
from pipeline.records import Patch, ReplayResult, ReplayStatus, SandboxRun, Verification
from pipeline.repro import FILENAME, FOLDER, INI, JUNIT, MARKER, ReplayPlan
from pipeline.testruns import SuiteReport, compare, read_report
from sandbox.env import RepoEnv
from sandbox.workspace import Workspace, open_workspace

log = structlog.get_logger(__name__)

TESTS_JUNIT = f"{FOLDER}/tests.xml"


@dataclass(frozen=True)
class VerifySetup:
    """What every verification of one issue shares: where, with what, and which replays."""

    repo_root: Path
    commit: str
    sandbox: Sandbox
    env: RepoEnv | None  # None only when there is nothing to run (no replay)
    plan: ReplayPlan
    test_command: str | None
    work_base: Path
    limits: Limits = Limits()
    tool_paths: tuple[Path, ...] = ()  # the repo's own tools (read-only; each one's bin/ on PATH)

    @property
    def repo_env(self) -> RepoEnv:
        if self.env is None:
            raise ValueError("verification needs the repo's environment once there is a replay to run")
        return self.env

    def run_env(self, workdir: Path) -> dict[str, str]:
        bins = [p / "bin" for p in self.tool_paths if (p / "bin").is_dir()]
        return {**self.repo_env.run_env(bins), "AUTOFIX_REPO": str(workdir), "COLUMNS": "300"}

    @property
    def ro_paths(self) -> tuple[Path, ...]:
        return (*self.repo_env.ro_paths, *self.tool_paths)


@dataclass(frozen=True)
class Baseline:
    """The unpatched commit's results: replays before, and the tests when they were run."""

    replays: tuple[ReplayResult, ...]
    runs: tuple[SandboxRun, ...]
    tests: SuiteReport | None  # None: no test command, or nothing reproduced so tests were not needed

    @property
    def reproduced(self) -> tuple[ReplayResult, ...]:
        return tuple(r for r in self.replays if r.before is ReplayStatus.REPRODUCED)


def _record(kind: str, command: str, result: RunResult) -> SandboxRun:
    return SandboxRun(kind, command, result.exit_code, round(result.duration_s, 3), result.output,
                      result.timed_out)


def _replay_command(setup: VerifySetup) -> list[str]:
    return [str(setup.repo_env.python), "-m", "pytest", "-c", INI, "-p", "no:cacheprovider", "-q", "-rA",
            f"--junit-xml={JUNIT}", FILENAME]


def _run_replays(setup: VerifySetup, ws: Workspace, kind: str) -> tuple[SandboxRun, dict[str, tuple[ReplayStatus, str]]]:
    plan = setup.plan
    ws.write_file(plan.path, plan.source)
    ws.write_file(INI, plan.ini)
    cmd = _replay_command(setup)
    env = {**setup.run_env(ws.path), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = setup.sandbox.run(ws.path, cmd, setup.limits, env, setup.ro_paths)
    report = read_report(result.exit_code, result.timed_out, result.output, ws.path / JUNIT)
    statuses: dict[str, tuple[ReplayStatus, str]] = {}
    for test_id, outcome in report.tests.items():
        name = test_id.rsplit("::", 1)[-1]
        if outcome.status == "passed":
            statuses[name] = (ReplayStatus.PASSED, "")
        elif outcome.status == "failed":
            reproduced = MARKER in outcome.message
            detail = outcome.message.replace("Failed: ", "", 1).replace(MARKER + " ", "", 1)
            statuses[name] = (ReplayStatus.REPRODUCED if reproduced else ReplayStatus.OTHER_ERROR, detail)
    if not report.tests and not result.timed_out:
        # Nothing reported per test: the file did not even load (a broken environment, say).
        detail = _last_line(result.output)
        statuses = {r.test_name: (ReplayStatus.OTHER_ERROR, detail) for r in plan.replays}
    return _record(kind, "python " + " ".join(cmd[1:]), result), statuses


def _run_tests(setup: VerifySetup, ws: Workspace, kind: str) -> tuple[SandboxRun, SuiteReport]:
    assert setup.test_command is not None
    junit = ws.write_file(TESTS_JUNIT, "")
    junit.unlink()
    env = {**setup.run_env(ws.path), "PYTEST_ADDOPTS": f"-rA -p no:cacheprovider --junit-xml={junit}"}
    result = setup.sandbox.run(ws.path, ["sh", "-c", setup.test_command], setup.limits, env, setup.ro_paths)
    report = read_report(result.exit_code, result.timed_out, result.output, junit)
    return _record(kind, setup.test_command, result), report


def run_baseline(setup: VerifySetup) -> Baseline:
    """Replays on the unpatched commit, then (if any reproduced) the tests; once per issue."""
    if not setup.plan.replays:
        return Baseline((), (), None)
    with open_workspace(setup.repo_root, setup.work_base, setup.commit) as ws:
        run, statuses = _run_replays(setup, ws, "replays_before")
        replays = tuple(_before(r.name, r.role, statuses.get(r.test_name), r.depth) for r in setup.plan.replays)
        runs = [run]
        tests = None
        if setup.test_command and any(r.before is ReplayStatus.REPRODUCED for r in replays):
            tests_run, tests = _run_tests(setup, ws, "tests_before")
            runs.append(tests_run)
    log.info("baseline.ran", replays=len(replays), reproduced=sum(r.before is ReplayStatus.REPRODUCED for r in replays),
             tests=None if tests is None else len(tests.passed))
    return Baseline(replays, tuple(runs), tests)


def verify_patch(setup: VerifySetup, baseline: Baseline, patch: Patch) -> Verification:
    """The verdict on one patch against the baseline."""
    notes = setup.plan.not_replayable
    if not baseline.reproduced:
        reason = setup.plan.reason or ("no replay failed with the event's exception before the patch: "
                                       + "; ".join(r.describe() for r in baseline.replays))
        return Verification(baseline.runs, False, False, None, reason=reason, replays=baseline.replays,
                            not_replayable=notes, stack_frames=len(setup.plan.frames))
    runs = list(baseline.runs)
    with open_workspace(setup.repo_root, setup.work_base, setup.commit) as ws:
        touched = diff_files(patch.diff)
        depth = setup.plan.patched_depth(changed_old_lines(patch.diff))
        before = {path: _read(ws, path) for path in touched}
        try:
            ws.apply(patch.diff)
        except PatchDoesNotApply as exc:
            log.info("patch.not_applied", patch=patch.id, reason=str(exc))
            return Verification(tuple(runs), True, False, None, applied=False,
                                reason=f"the patch does not apply: {exc}", replays=baseline.replays,
                                not_replayable=notes, patched_depth=depth, stack_frames=len(setup.plan.frames))
        problems = static_checks.problems(before, {path: _read(ws, path) for path in touched})
        run, statuses = _run_replays(setup, ws, "replays_after")
        runs.append(run)
        replays = tuple(_after(r, planned.test_name, statuses, depth)
                        for r, planned in zip(baseline.replays, setup.plan.replays, strict=True))
        judged = [r for r in replays if r.judged and r.before is ReplayStatus.REPRODUCED]
        passes = bool(judged) and all(r.after is ReplayStatus.PASSED for r in judged)
        tests_ok: bool | None = None
        tests_note = "tests not run: no test command configured or found"
        newly: tuple[str, ...] = ()
        if passes and not problems and baseline.tests is not None:
            tests_run, after = _run_tests(setup, ws, "tests_after")
            runs.append(tests_run)
            verdict = compare(baseline.tests, after)
            tests_ok, tests_note, newly = verdict.ok, verdict.note, verdict.newly_failing
    reason = _reason(replays, problems, passes, tests_ok, tests_note)
    verification = Verification(tuple(runs), True, passes, tests_ok, reason=reason, replays=replays,
                                not_replayable=notes, newly_failing=newly, static_problems=problems,
                                patched_depth=depth, stack_frames=len(setup.plan.frames))
    log.info("patch.verified" if verification.verified else "patch.not_verified", patch=patch.id, reason=reason)
    return verification


def _read(ws: Workspace, path: str) -> bytes | None:
    try:
        return ws.read_bytes(path)
    except OSError:
        return None


def _before(name: str, role: str, status: tuple[ReplayStatus, str] | None, depth: int = 0) -> ReplayResult:
    before, detail = status or (ReplayStatus.NOT_RUN, "")
    return ReplayResult(name, role, before, None, detail, depth)


def _after(replay: ReplayResult, test_name: str, statuses: dict[str, tuple[ReplayStatus, str]],
           patched_depth: int = 0) -> ReplayResult:
    """The replay with its result after the patch; only a replay that reproduced is judged after, and
    only one at or above the patched function (a frame below it is called with the crash's arguments
    straight, past the patched caller, so it still raises whether or not the patch is right)."""
    if replay.before is not ReplayStatus.REPRODUCED:
        return replay
    status, detail = statuses.get(test_name, (ReplayStatus.NOT_RUN, ""))
    return ReplayResult(replay.name, replay.role, replay.before, status,
                        detail if status is not ReplayStatus.PASSED else replay.detail, replay.depth,
                        judged=replay.depth >= patched_depth)


def _reason(replays: Sequence[ReplayResult], problems: Sequence[str], passes: bool, tests_ok: bool | None,
            tests_note: str) -> str:
    if problems:
        return "; ".join(problems)
    if not passes:
        failing = [r for r in replays
                   if r.judged and r.before is ReplayStatus.REPRODUCED and r.after is not ReplayStatus.PASSED]
        if not failing:
            below = ", ".join(r.name for r in replays if not r.judged)
            return (f"no replay runs through the patched function: the ones that reproduced ({below}) "
                    "call functions below it directly")
        first = failing[0]
        how = {ReplayStatus.REPRODUCED: "still raises", ReplayStatus.OTHER_ERROR: "raises"}.get(
            first.after or ReplayStatus.NOT_RUN, "did not complete")
        what = f" {first.detail}" if first.detail and how != "did not complete" else ""
        more = f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""
        return f"after the patch the {first.role} replay {first.name} {how}{what}{more}"
    if tests_ok is False:
        return tests_note
    done = ", ".join(f"{r.role} {r.name}" for r in replays if r.judged and r.before is ReplayStatus.REPRODUCED)
    unjudged = [r.name for r in replays if not r.judged and r.before is ReplayStatus.REPRODUCED]
    beside = f" ({', '.join(unjudged)}: below the patched function, not judged)" if unjudged else ""
    return (f"replays fail with the event's exception before the patch and complete after it ({done}){beside}; "
            f"{tests_note}")


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
