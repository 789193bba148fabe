"""The revert fixer on a real git history built here: a release commit that introduced the crash
(proposed, its hunks inside the crashing function only), an old commit beyond the age limit and a
commit made after the release (never proposed), and the whole path through fix_issue in bubblewrap
on an event the real sentry-sdk recorded."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers_fix import event, exc, frame, git, init_repo, issue, line_of

from pipeline.fixers.revert import RevertFixer, blame, function_span, in_release, parse_hunks
from pipeline.fixers.templates import TemplateFixer
from pipeline.flow import FixRequest, fix_issue
from pipeline.grouping import group
from pipeline.records import CodeContext, ErrorEvent, Location, Patch
from pipeline.settings import RevertConfig
from pipeline.sources import load_path
from sandbox.config import make_sandbox
from sandbox.workspace import open_workspace

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.now(UTC).replace(microsecond=0)

ORDERS = '''"""Order lines as the shop prints them."""

VAT = 0.2


def unit_price(item: dict) -> float:
    return item["price"] / item["qty"]


def describe(item: dict) -> str:
    qty = int(item["qty"])
    name = item["name"].strip()
    return str(qty) + " x " + name


def total(items: list) -> float:
    return sum(i["price"] for i in items) * (1 + VAT)
'''
CRASH = "    return qty + \" x \" + name\n"
SCRIPT = '''from shop.orders import describe

print(describe({"qty": 2, "name": " pen "}))
'''


def commit(repo: Path, message: str, when: datetime, edits: dict[str, tuple[str, str]]) -> str:
    for rel, (old, new) in edits.items():
        path = repo / rel
        text = path.read_text()
        assert text.count(old) == 1, old
        path.write_text(text.replace(old, new))
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
    env = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false",
                    "commit", "-q", "-am", message], cwd=repo, env={**_env(), **env}, check=True)
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """initial (90 days ago) -> old tweak of unit_price (60 days) -> the release commit that breaks
    describe and also changes VAT (3 days; tagged v1.1) -> a later change to describe (1 day, not
    released). The event is captured by the real sentry-sdk while the release is checked out."""
    repo = tmp_path_factory.mktemp("revert") / "repo"
    init_repo(repo, {"shop/__init__.py": "", "shop/orders.py": ORDERS})
    stamp = (NOW - timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--amend",
                    "--no-edit", "--date", stamp], cwd=repo, env={**_env(), "GIT_COMMITTER_DATE": stamp}, check=True)
    old = commit(repo, "Round unit prices", NOW - timedelta(days=60),
                 {"shop/orders.py": ('return item["price"] / item["qty"]', 'return round(item["price"] / item["qty"], 2)')})
    bad = commit(repo, "Simplify describe; VAT 21%", NOW - timedelta(days=3), {"shop/orders.py": (
        '    qty = int(item["qty"])\n    name = item["name"].strip()\n    return str(qty) + " x " + name\n',
        '    qty = item["qty"]\n    name = item["name"].strip()\n' + CRASH)})
    commit(repo, "VAT 21%", NOW - timedelta(days=3), {"shop/orders.py": ("VAT = 0.2\n", "VAT = 0.21\n")})
    git(repo, "tag", "v1.1")
    released = git(repo, "rev-parse", "HEAD").stdout.strip()
    work = repo.parent / "capture"
    work.mkdir()
    (work / "repro.py").write_text(SCRIPT)
    import os

    run = subprocess.run([sys.executable, "-m", "pipeline.benchmark.capture", "--out", str(work / "event.json"),
                          "--in-app", "shop", "--release", "shop@1.1", str(work / "repro.py")],
                         cwd=work, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(ROOT)])})
    assert run.returncode == 0, run.stderr
    later = commit(repo, "Title-case names", NOW - timedelta(days=1), {"shop/orders.py": (
        'name = item["name"].strip()\n', 'name = item["name"].strip().title()\n')})
    return {"repo": repo, "old": old, "bad": bad, "released": released, "later": later,
            "event": work / "event.json"}


def _propose(repo: Path, work: Path, ref: str, function: str, needle: str, release: str | None,
             config: RevertConfig | None = None) -> list[Patch]:
    with open_workspace(repo, work, ref) as tree:
        source = (tree.path / "shop/orders.py").read_text()
        ctx = CodeContext(str(tree.path), (Location("shop/orders.py", function, line_of(source, needle)),))
        ev: ErrorEvent = replace(event(exc("TypeError", "boom", frame(function, "shop/orders.py"))),
                                 release=release, received_at=NOW)
        return RevertFixer(config).propose(issue(), ev, ctx, [])


def test_the_release_commit_that_broke_the_line_is_reverted_inside_the_function_only(
        history: dict[str, object], tmp_path: Path) -> None:
    repo = history["repo"]
    assert isinstance(repo, Path)
    patches = _propose(repo, tmp_path, "v1.1", "describe", CRASH.strip(), "shop@1.1")

    assert [p.strategy for p in patches] == ["revert"]
    patch = patches[0]
    assert patch.files == ("shop/orders.py",)
    assert str(history["bad"])[:10] in patch.description and "Simplify describe" in patch.description
    changed = [line for line in patch.diff.splitlines()[2:] if line[:1] in "+-"]
    assert changed == ['-    qty = item["qty"]', '-    return qty + " x " + name',
                       '+    qty = int(item["qty"])', '+    return str(qty) + " x " + name'] or changed == [
        '-    qty = item["qty"]', '+    qty = int(item["qty"])',
        '-    return qty + " x " + name', '+    return str(qty) + " x " + name']
    assert "VAT" not in patch.diff  # the same commit's change outside the function stays
    assert ".title()" not in patch.diff  # the checkout is the release, not main
    with open_workspace(repo, tmp_path, "v1.1") as tree:
        tree.apply(patch.diff)
        namespace: dict[str, object] = {}
        exec((tree.path / "shop/orders.py").read_text(), namespace)
        assert namespace["describe"]({"qty": 2, "name": " pen "}) == "2 x pen"  # type: ignore[operator]
        assert namespace["VAT"] == 0.21


def test_an_old_commit_beyond_the_age_limit_is_not_proposed(history: dict[str, object], tmp_path: Path) -> None:
    repo = history["repo"]
    assert isinstance(repo, Path)
    needle = 'return round(item["price"] / item["qty"], 2)'
    assert _propose(repo, tmp_path, "v1.1", "unit_price", needle, "shop@1.1") == []
    # The limit is what kept it out: with a longer window the same commit is proposed.
    wide = _propose(repo, tmp_path, "v1.1", "unit_price", needle, "shop@1.1", RevertConfig(max_age_days=90))
    assert len(wide) == 1 and str(history["old"])[:10] in wide[0].description
    assert '+    return item["price"] / item["qty"]\n' in wide[0].diff
    assert RevertFixer(RevertConfig(enabled=False)).config.enabled is False


def test_a_commit_that_is_not_in_the_release_is_never_proposed(history: dict[str, object], tmp_path: Path) -> None:
    repo = history["repo"]
    assert isinstance(repo, Path)
    later, released = str(history["later"]), str(history["released"])
    assert not in_release(repo, later, released) and in_release(repo, str(history["bad"]), released)
    # main's head carries the later commit on the crashing function; a release that names no tag
    # says nothing about what shipped, so nothing is proposed, nor without a release at all.
    needle = 'name = item["name"].strip().title()'
    assert _propose(repo, tmp_path, "main", "describe", needle, "shop@9.9") == []
    assert _propose(repo, tmp_path, "main", "describe", needle, None) == []
    # The same crash on the release blames the release's own commit, never the later one.
    on_release = _propose(repo, tmp_path, "v1.1", "describe", 'name = item["name"].strip()', "shop@1.1")
    assert all(later[:10] not in p.description for p in on_release)


def test_blame_hunks_and_spans_read_the_history(history: dict[str, object]) -> None:
    repo = history["repo"]
    assert isinstance(repo, Path)
    lines = blame(repo, "v1.1", "shop/orders.py")
    source = git(repo, "show", "v1.1:shop/orders.py").stdout
    crash = line_of(source, CRASH.strip())
    assert [b.sha for b in lines if b.final_line == crash] == [history["bad"]]
    assert [b.boundary for b in lines][:1] == [True]  # the root commit's lines
    assert function_span(source, "describe") == (line_of(source, "def describe"), crash)
    assert function_span(source, "Orders.describe") is None
    hunks = parse_hunks(git(repo, "diff", "-U0", f"{history['bad']}^", str(history["bad"])).stdout)
    assert [(h.new_start, h.new_len, len(h.removed)) for h in hunks] == [(11, 1, 1), (13, 1, 1)]


def test_end_to_end_the_revert_is_verified_in_bubblewrap_on_the_release_commit(
        history: dict[str, object], tmp_path: Path, repo_env_cache: Path) -> None:
    repo, path = history["repo"], history["event"]
    assert isinstance(repo, Path) and isinstance(path, Path)
    ev, iss = group(load_path(path)[0])
    assert ev.release == "shop@1.1" and iss.fix_class == "type-mismatch"
    request = FixRequest(ev, iss, repo, tmp_path / "work", env_home=repo_env_cache, default_branch="main")

    outcome = fix_issue(request, [TemplateFixer(), RevertFixer()], make_sandbox("bwrap"))

    assert outcome.status == "verified", outcome.reason
    assert outcome.commit == history["released"]
    best = outcome.best
    assert best is not None and best.patch.strategy == "revert" and outcome.queued
    assert best.verification is not None and best.verification.reproduced
    assert '+    return str(qty) + " x " + name\n' in best.patch.diff and "title" not in best.patch.diff
    assert best.confidence_parts["strategy_prior"] == pytest.approx(0.15 * 0.8)
