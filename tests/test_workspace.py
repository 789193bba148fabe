"""Workspaces as real git worktrees of a throwaway repository: open, patch, diff, remove."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import InvalidInput, PatchDoesNotApply
from sandbox.bwrap import BubblewrapSandbox
from sandbox.workspace import open_workspace

CALC = "def divide(a, b):\n    return a / b\n"
FIXED = "def divide(a, b):\n    if b == 0:\n        return None\n    return a / b\n"


def git(repo: Path, *args: str) -> str:
    argv = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(argv, cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "calc.py").write_text(CALC)
    (root / "README").write_text("first\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    (root / "README").write_text("second\n")
    git(root, "commit", "-q", "-am", "second")
    return root


def make_patch(repo: Path) -> str:
    """A diff from the repo's own git: one file changed, one added; the repo is left as it was."""
    (repo / "calc.py").write_text(FIXED)
    (repo / "test_calc.py").write_text(
        "from calc import divide\n\ndef test_zero():\n    assert divide(1, 0) is None\n"
    )
    git(repo, "add", "-A")
    diff = git(repo, "diff", "--cached", "--src-prefix=a/", "--dst-prefix=b/", "HEAD")
    git(repo, "reset", "-q", "--hard", "HEAD")
    return diff


def worktrees(repo: Path) -> str:
    return git(repo, "worktree", "list", "--porcelain")


def test_worktree_opens_at_head_with_the_repo_files(repo: Path, tmp_path: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()

    with open_workspace(repo, tmp_path / "ws") as ws:
        assert ws.base_commit == head
        assert ws.path.parent == (tmp_path / "ws").resolve()
        assert (ws.path / "calc.py").read_text() == CALC
        assert (ws.path / "README").read_text() == "second\n"
        assert str(ws.path) in worktrees(repo)


def test_worktree_opens_at_an_older_ref(repo: Path, tmp_path: Path) -> None:
    with open_workspace(repo, tmp_path / "ws", ref="HEAD~1") as ws:
        assert (ws.path / "README").read_text() == "first\n"


def test_applied_patch_round_trips_through_diff(repo: Path, tmp_path: Path) -> None:
    patch = make_patch(repo)

    with open_workspace(repo, tmp_path / "ws") as ws:
        ws.apply(patch)
        assert (ws.path / "calc.py").read_text() == FIXED
        assert ws.diff() == patch

    assert (repo / "calc.py").read_text() == CALC  # the caller's checkout is untouched
    assert git(repo, "status", "--porcelain") == ""


def test_a_patch_that_does_not_apply_raises_with_gits_message(repo: Path, tmp_path: Path) -> None:
    patch = make_patch(repo).replace("return a / b", "return a // b")  # context the file lacks

    with open_workspace(repo, tmp_path / "ws") as ws:
        with pytest.raises(PatchDoesNotApply, match="patch does not apply"):
            ws.apply(patch)
        assert ws.diff() == ""  # --check ran first: nothing half-applied
        assert not (ws.path / "test_calc.py").exists()


def test_a_patch_whose_paths_leave_the_worktree_does_not_apply(repo: Path, tmp_path: Path) -> None:
    escape = "--- /dev/null\n+++ b/../escaped.py\n@@ -0,0 +1 @@\n+print('out')\n"

    with open_workspace(repo, tmp_path / "ws") as ws, pytest.raises(PatchDoesNotApply):
        ws.apply(escape)
    assert not (tmp_path / "ws" / "escaped.py").exists()


def test_an_empty_patch_does_not_apply(repo: Path, tmp_path: Path) -> None:
    with open_workspace(repo, tmp_path / "ws") as ws, pytest.raises(PatchDoesNotApply):
        ws.apply("  \n")


def test_written_files_stay_out_of_the_diff(repo: Path, tmp_path: Path) -> None:
    patch = make_patch(repo)

    with open_workspace(repo, tmp_path / "ws") as ws:
        ws.apply(patch)
        written = ws.write_file("tests/test_repro.py", "def test_repro():\n    pass\n")
        ws.write_file("README", "overwritten by a helper\n")

        assert written.read_text().startswith("def test_repro")
        assert ws.diff() == patch


def test_write_file_refuses_paths_that_leave_the_workspace(repo: Path, tmp_path: Path) -> None:
    with open_workspace(repo, tmp_path / "ws") as ws:
        for bad in ("../escape.py", "/etc/passwd", "a/../../b", ""):
            with pytest.raises(InvalidInput):
                ws.write_file(bad, "x")
    assert not (tmp_path / "ws" / "escape.py").exists()


def test_worktree_is_removed_on_exit_even_after_an_error(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), open_workspace(repo, tmp_path / "ws") as ws:
        ws.write_file("scratch.txt", "untracked files do not stop removal")
        path = ws.path
        raise RuntimeError("boom")

    assert not path.exists()
    assert str(path) not in worktrees(repo)


def test_a_folder_that_is_not_a_repo_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a git repository"), open_workspace(tmp_path, tmp_path / "ws"):
        pass


def test_a_ref_that_names_no_commit_is_invalid_input(repo: Path, tmp_path: Path) -> None:
    with (
        pytest.raises(InvalidInput, match="does not name a commit"),
        open_workspace(repo, tmp_path / "ws", ref="no-such-branch"),
    ):
        pass


def test_a_patched_workspace_runs_its_tests_in_the_sandbox(repo: Path, tmp_path: Path) -> None:
    sandbox = BubblewrapSandbox()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_calc.py"]

    with open_workspace(repo, tmp_path / "ws") as ws:
        ws.write_file(
            "test_calc.py", "from calc import divide\n\ndef test_zero():\n    assert divide(1, 0) is None\n"
        )
        before = sandbox.run(ws.path, command)
        ws.apply(make_patch(repo).split("diff --git a/test_calc.py")[0])
        after = sandbox.run(ws.path, command)

    assert before.exit_code == 1 and "ZeroDivisionError" in before.output
    assert after.exit_code == 0, after.output
