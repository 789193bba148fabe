"""Verification replays the whole captured call path, in bubblewrap, on events recorded by the real
sentry-sdk from tests/data/replayapp (see tests/data/make_replay_fixtures.py)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers_fix import git, init_repo

from pipeline.fixers.diffing import unified_diff
from pipeline.fixers.templates import TemplateFixer
from pipeline.flow import FixOutcome, FixRequest, fix_issue
from pipeline.grouping import group
from pipeline.ports import Fixer
from pipeline.records import CodeContext, ErrorEvent, Issue, Patch, ReplayStatus, Review
from pipeline.scrub import scrub_event
from pipeline.sources import load_path
from sandbox.config import make_sandbox

DATA = Path(__file__).resolve().parent / "data"
EVENTS = DATA / "replay_events"


class GivenPatches:
    """A fixer whose patches are written by the test: what a naive crash-site fix would propose."""

    name = "given"

    def __init__(self, patches: Sequence[Patch]) -> None:
        self.patches = list(patches)

    def propose(self, issue: Issue, event: ErrorEvent, context: CodeContext, history: Sequence[Review]) -> list[Patch]:
        return list(self.patches)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(DATA / "replayapp", root, ignore=shutil.ignore_patterns("__pycache__"))
    return init_repo(root, {})


def edit(repo: Path, rel: str, old: str, new: str, strategy: str = "template:given") -> Patch:
    source = (repo / rel).read_text()
    assert source.count(old) == 1, old
    return Patch(strategy, unified_diff(rel, source, source.replace(old, new)), (rel,), f"{rel}: {new.strip()[:40]}")


def fix(name: str, repo: Path, fixers: Sequence[Fixer], tmp_path: Path, cache: Path, **kw: object) -> FixOutcome:
    event, issue = group(scrub_event(load_path(EVENTS / f"{name}.json")[0]))
    request = FixRequest(event, issue, repo, tmp_path / "work", env_home=cache, **kw)  # type: ignore[arg-type]
    return fix_issue(request, fixers, make_sandbox("bwrap"))


# --- the crash-site-only patch that moves the crash one frame up ---------------------------------


def test_returning_none_from_average_is_rejected_because_the_callers_round_then_fails(
    repo: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    naive = edit(repo, "replayapp/stats.py", "    return sum(values) / len(values)",
                 "    if not len(values):\n        return None\n    return sum(values) / len(values)")
    outcome = fix("stats-summary-of-no-ratings", repo, [GivenPatches([naive])], tmp_path, repo_env_cache)

    assert outcome.status == "unverified"
    assert not outcome.queued
    v = outcome.best.verification  # type: ignore[union-attr]
    assert v is not None and not v.verified
    crash, caller = v.replays
    assert (crash.role, crash.name, crash.before, crash.after) == (
        "crash", "replayapp.stats.average", ReplayStatus.REPRODUCED, ReplayStatus.PASSED)
    assert (caller.role, caller.name, caller.before, caller.after) == (
        "caller", "replayapp.stats.summary", ReplayStatus.REPRODUCED, ReplayStatus.OTHER_ERROR)
    assert "TypeError" in caller.detail and "__round__" in caller.detail
    assert outcome.reason.startswith("after the patch the caller replay replayapp.stats.summary raises TypeError")
    assert [run.kind for run in v.runs] == ["replays_before", "replays_after"]


def test_returning_none_from_first_word_is_rejected_because_greet_then_raises_on_the_none(
    repo: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    naive = edit(repo, "replayapp/greeting.py", "    return text.split()[0]",
                 "    if text is None:\n        return None\n    return text.split()[0]")
    outcome = fix("greeting-of-no-name", repo, [GivenPatches([naive])], tmp_path, repo_env_cache)

    assert outcome.status == "unverified"
    caller = outcome.best.verification.replays[1]  # type: ignore[union-attr]
    assert (caller.name, caller.after) == ("replayapp.greeting.greet", ReplayStatus.REPRODUCED)
    assert "'NoneType' object has no attribute 'capitalize'" in caller.detail
    assert outcome.reason.startswith("after the patch the caller replay replayapp.greeting.greet still raises "
                                     "AttributeError")


@pytest.mark.parametrize(("name", "returned", "caller"), [
    ("stats-summary-of-no-ratings", "return 0", "round(average(ratings), 2)"),
    ("greeting-of-no-name", 'return ""', "first_word(name).capitalize"),
])
def test_the_templates_return_what_the_caller_needs_and_that_verifies_through_the_whole_path(
    repo: Path, tmp_path: Path, repo_env_cache: Path, name: str, returned: str, caller: str
) -> None:
    outcome = fix(name, repo, [TemplateFixer()], tmp_path, repo_env_cache)

    assert outcome.status == "verified", outcome.reason
    assert outcome.queued
    best = outcome.best
    assert best is not None and best.verification is not None
    assert f"+        {returned}\n" in best.patch.diff
    assert caller in best.patch.description
    assert [(r.role, r.after) for r in best.verification.replays] == [
        ("crash", ReplayStatus.PASSED), ("caller", ReplayStatus.PASSED)]
    assert "tests_not_run" in best.confidence_parts  # no test command, none discoverable
    assert best.verification.reason.endswith("tests not run: no test command configured or found")


# --- a fix one frame up: the crash frame's replay is below the patch ------------------------------


def test_a_fix_in_the_caller_is_judged_by_the_callers_replay_not_by_the_frame_below_it(
    repo: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    # summary() no longer calls average() with no ratings. The crash frame's replay still calls
    # average([]) directly and still raises: that proves nothing about a patch above it.
    caller_fix = edit(repo, "replayapp/stats.py", '    return {"mean": round(average(ratings), 2), "count": len(ratings)}',
                      '    mean = round(average(ratings), 2) if ratings else 0.0\n'
                      '    return {"mean": mean, "count": len(ratings)}')
    outcome = fix("stats-summary-of-no-ratings", repo, [GivenPatches([caller_fix])], tmp_path, repo_env_cache)

    assert outcome.status == "verified", outcome.reason
    v = outcome.best.verification  # type: ignore[union-attr]
    assert v is not None and v.verified and v.patched_depth == 1 and v.stack_frames == 2
    crash, caller = v.replays
    assert (crash.name, crash.depth, crash.after, crash.judged) == (
        "replayapp.stats.average", 0, ReplayStatus.REPRODUCED, False)
    assert (caller.name, caller.depth, caller.after, caller.judged) == (
        "replayapp.stats.summary", 1, ReplayStatus.PASSED, True)
    assert "replayapp.stats.average: below the patched function, not judged" in v.reason
    # summary() is the app's outermost frame: nothing above it could check what it returns.
    assert outcome.queued, outcome.decisions


def test_a_lookup_that_rejects_its_input_on_purpose_is_fixed_in_its_caller_and_verified_there(
    repo: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    # currency() raises ValueError for an unknown code by design; same_currency() gave it "btc".
    outcome = fix("codes-unknown-currency", repo, [TemplateFixer()], tmp_path, repo_env_cache)

    assert outcome.status == "verified", outcome.reason
    assert outcome.queued, outcome.decisions
    best = outcome.best
    assert best is not None and best.verification is not None and best.strategy == "template:caller_handles"
    assert best.patch.files == ("replayapp/codes.py",)
    assert "+        return currency(a) == currency(b)\n+    except ValueError:\n+        return False\n" in best.patch.diff
    assert [(r.name, r.after, r.judged) for r in best.verification.replays] == [
        ("replayapp.codes.currency", ReplayStatus.REPRODUCED, False),
        ("replayapp.codes.same_currency", ReplayStatus.PASSED, True)]


def test_a_caller_fix_that_still_crashes_is_rejected_by_the_callers_replay(
    repo: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    still_wrong = edit(repo, "replayapp/greeting.py", '    return "Hello, " + first_word(name).capitalize() + "!"',
                       '    name = name if name is not None else None\n'
                       '    return "Hello, " + first_word(name).capitalize() + "!"')
    outcome = fix("greeting-of-no-name", repo, [GivenPatches([still_wrong])], tmp_path, repo_env_cache)

    assert outcome.status == "unverified"
    v = outcome.best.verification  # type: ignore[union-attr]
    assert v is not None and v.patched_depth == 1
    crash, caller = v.replays
    assert not crash.judged and caller.judged and caller.after is ReplayStatus.REPRODUCED
    assert outcome.reason.startswith("after the patch the caller replay replayapp.greeting.greet still raises")


# --- frames that cannot be replayed, each for its own reason --------------------------------------


@pytest.mark.parametrize(("name", "replayed", "reason"), [
    ("notify-scrubbed-email", ["caller replayapp.notify.notify_all"],
     "crash share (replayapp/notify.py:5): argument 'email' was scrubbed ([Filtered:email] is not the user's data)"),
    ("trimmed-fifteen-readings", ["caller replayapp.trimmed.fifteen_readings"],
     "crash mean_beyond (replayapp/trimmed.py:6): argument 'values' holds exactly 10 items, the SDK's limit for "
     "a container: it may have been cut"),
    ("meter-receiver-plain-object", ["caller replayapp.meter.check"],
     "crash Meter.mean (replayapp/meter.py:9): method mean: its receiver 'self' is "
     "'<replayapp.meter.Meter object at 0x"),
    ("basket-receiver-dataclass", ["crash replayapp.basket.Basket.per_item", "caller replayapp.basket.empty_basket_share"],
     None),
])
def test_each_frame_is_replayed_or_says_why_not_and_the_replayable_ones_reproduce(
    repo: Path, tmp_path: Path, repo_env_cache: Path, name: str, replayed: list[str], reason: str | None
) -> None:
    outcome = fix(name, repo, [TemplateFixer()], tmp_path, repo_env_cache)

    assert outcome.plan is not None
    assert [f"{r.role} {r.name}" for r in outcome.plan.replays] == replayed
    if reason is None:
        assert outcome.plan.not_replayable == ()
    else:
        assert len(outcome.plan.not_replayable) == 1
        assert outcome.plan.not_replayable[0].startswith(reason)
    v = outcome.best.verification  # type: ignore[union-attr]
    assert v is not None
    assert v.not_replayable == outcome.plan.not_replayable
    assert all(r.before is ReplayStatus.REPRODUCED for r in v.replays), v.replays
    assert outcome.status == "verified", outcome.reason


@pytest.mark.parametrize(("name", "function", "reason", "before"), [
    # share() runs `guests = int(guests)` first: the event holds 0, the int, where the call passed
    # "0". Called with 0, int() gives 0 again and the division fails on the same line.
    ("split-normalised-guests", "split.share", "parameter 'guests' is reassigned on line 5, before line 6",
     [ReplayStatus.REPRODUCED, ReplayStatus.REPRODUCED]),
    # ratio() runs `b = b - 1` first: the event's b=0 is the call's 1 less one. Called with 0 it
    # divides by -1 and returns: that replay proves nothing, and the caller's carries the verdict.
    ("ratio-reassigned-divisor", "ratio.ratio", "parameter 'b' is reassigned on line 5, before line 6",
     [ReplayStatus.PASSED, ReplayStatus.REPRODUCED]),
])
def test_a_frame_whose_parameter_changed_is_replayed_with_its_values_at_the_crash(
    repo: Path, tmp_path: Path, repo_env_cache: Path, name: str, function: str, reason: str,
    before: list[ReplayStatus],
) -> None:
    outcome = fix(name, repo, [TemplateFixer()], tmp_path, repo_env_cache)
    plan = outcome.plan
    assert plan is not None and plan.not_replayable == ()
    crash, caller = plan.replays
    assert (crash.role, crash.name, caller.role) == ("crash", f"replayapp.{function}", "caller")
    assert crash.site == (f"replayapp/{function.split('.')[0]}.py", 6)
    assert reason in crash.approximate
    assert outcome.status == "verified", outcome.reason
    v = outcome.best.verification  # type: ignore[union-attr]
    assert v is not None
    assert [r.before for r in v.replays] == before
    assert all(r.after is ReplayStatus.PASSED for r in v.replays if r.before is ReplayStatus.REPRODUCED)


def test_a_dataclass_receiver_is_rebuilt_from_its_repr_and_the_method_replay_fails_then_passes(
    repo: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    outcome = fix("basket-receiver-dataclass", repo, [TemplateFixer()], tmp_path, repo_env_cache)
    assert outcome.plan is not None
    receiver = outcome.plan.replays[0].receiver
    assert receiver is not None and dict(receiver.attrs) == {"items": [], "discount": 5.0}
    assert "cls.__new__(cls)" in outcome.plan.source
    method = outcome.best.verification.replays[0]  # type: ignore[union-attr]
    assert (method.before, method.after) == (ReplayStatus.REPRODUCED, ReplayStatus.PASSED)


# --- the repo's tests before and after --------------------------------------------------------------

RED_SUITE = '''from replayapp.stats import average, summary


def test_average_of_two():
    assert average([4, 5]) == 4.5


def test_summary_counts_the_ratings():
    assert summary([4, 5])["count"] == 2


def test_a_known_failure_elsewhere():
    assert summary([1])["mean"] == 2
'''


def test_a_suite_red_on_the_base_does_not_block_but_a_newly_failing_test_rejects(
    repo: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    (repo / "tests").mkdir()
    (repo / "tests" / "test_stats.py").write_text(RED_SUITE)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tests, one of them failing")
    guard = "    if not len(values):\n        return 0\n"
    breaks = edit(repo, "replayapp/stats.py", "    return sum(values) / len(values)",
                  guard + "    return sum(values) // len(values)")
    keeps = edit(repo, "replayapp/stats.py", "    return sum(values) / len(values)",
                 guard + "    return sum(values) / len(values)")
    outcome = fix("stats-summary-of-no-ratings", repo, [GivenPatches([breaks, keeps])], tmp_path, repo_env_cache)

    assert outcome.status == "verified", outcome.reason
    by_patch = {c.patch.id: c for c in outcome.candidates}
    rejected = by_patch[breaks.id].verification
    accepted = by_patch[keeps.id].verification
    assert rejected is not None and accepted is not None
    assert rejected.repro_passes_after and rejected.tests_pass_after is False
    assert rejected.newly_failing == ("tests.test_stats::test_average_of_two",)
    assert "the patch breaks 1 test(s) that passed on the base: tests.test_stats::test_average_of_two" in rejected.reason
    assert accepted.verified and accepted.tests_pass_after is True and accepted.newly_failing == ()
    assert "2 tests passed on the base and still pass (1 already failing on the base)" in accepted.reason
    assert [run.kind for run in accepted.runs] == ["replays_before", "tests_before", "replays_after", "tests_after"]
    assert outcome.best is by_patch[keeps.id]


def test_a_patch_that_adds_an_undefined_name_is_rejected_by_the_static_check(
    repo: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    sloppy = edit(repo, "replayapp/stats.py", "def summary(ratings):\n",
                  "def summary(ratings):\n    if not ratings:\n        return EMPTY_SUMMARY\n")
    outcome = fix("stats-summary-of-no-ratings", repo, [GivenPatches([sloppy])], tmp_path, repo_env_cache)
    v = outcome.best.verification  # type: ignore[union-attr]
    assert v is not None and not v.verified
    assert v.static_problems == ("replayapp/stats.py: the patch adds an undefined name 'EMPTY_SUMMARY'",)
    assert outcome.reason == v.static_problems[0]


# --- the commit that will be published -------------------------------------------------------------


def test_verification_runs_on_the_commit_the_release_names_and_the_candidate_records_it(
    repo: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    released = git(repo, "rev-parse", "HEAD").stdout.strip()
    git(repo, "tag", "v1.0.0")  # the event's release is replayapp@1.0.0
    stats = repo / "replayapp" / "stats.py"
    stats.write_text('"""Moved on since the release."""\n\n\n' + stats.read_text())
    git(repo, "commit", "-q", "-am", "later work on main")
    outcome = fix("stats-summary-of-no-ratings", repo, [TemplateFixer()], tmp_path, repo_env_cache,
                  default_branch="main")

    assert outcome.status == "verified", outcome.reason
    assert (outcome.commit, outcome.commit_source) == (released, "release replayapp@1.0.0 -> 1.0.0") or \
        (outcome.commit, outcome.commit_source) == (released, "release replayapp@1.0.0 -> v1.0.0")
    best = outcome.best
    assert best is not None and best.base_commit == released
    assert "--- a/replayapp/stats.py" in best.patch.diff and "Moved on" not in best.patch.diff
    # The template read the released file: its hunk sits where the release has the code.
    assert "@@ -2," in best.patch.diff or "@@ -1," in best.patch.diff

    git(repo, "tag", "-d", "v1.0.0")
    head = git(repo, "rev-parse", "main").stdout.strip()
    untagged = fix("stats-summary-of-no-ratings", repo, [TemplateFixer()], tmp_path, repo_env_cache,
                   default_branch="main")
    assert untagged.commit == head
    assert untagged.commit_source == "head of main (release replayapp@1.0.0 names no tag or commit)"
