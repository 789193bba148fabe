"""What `autofix init` writes: a commented autofix.toml guessed from a git checkout.

Everything is read from the checkout itself, never from the network: its folder name, the default
branch (origin's HEAD, else the current branch), the origin remote, the test command (pytest when
the checkout has pytest configuration or test files; pytest also runs unittest suites), the
top-level packages (which decide what counts as the app's code in a log traceback), a path mapping
from a Dockerfile's WORKDIR, and the checkout's own virtualenv when it has pytest (mounted read-only
in the sandbox so the tests see the app's dependencies).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.workspace import GitError, git

PYTEST_COMMAND = "python -m pytest -q -p no:cacheprovider"
_NOT_APP = {"tests", "test", "testing", "docs", "doc", "examples", "example", "scripts", "bench", "benchmarks",
            "build", "dist", "migrations"}


@dataclass(frozen=True)
class Guess:
    name: str
    default_branch: str
    remote_url: str | None = None
    test_command: str | None = None
    test_evidence: str = "no tests found"
    in_app_packages: tuple[str, ...] = ()
    path_mappings: dict[str, str] = field(default_factory=dict)
    mapping_evidence: str | None = None
    venv: str | None = None  # repo-relative, when it has pytest


def _git_out(root: Path, *args: str) -> str | None:
    try:
        return git(root, *args).strip() or None
    except GitError:
        return None


def _default_branch(root: Path) -> str:
    origin_head = _git_out(root, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if origin_head:
        return origin_head.split("/", 1)[-1]
    return _git_out(root, "symbolic-ref", "--quiet", "--short", "HEAD") or "main"


def _pyproject(root: Path) -> dict[str, object]:
    try:
        return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _has_section(path: Path, section: str) -> bool:
    try:
        return f"[{section}]" in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _test_command(root: Path) -> tuple[str | None, str]:
    tool = _pyproject(root).get("tool")
    if isinstance(tool, dict) and "pytest" in tool:
        return PYTEST_COMMAND, "pytest configuration in pyproject.toml"
    for name, section in (("pytest.ini", None), ("conftest.py", None), ("setup.cfg", "tool:pytest"),
                          ("tox.ini", "pytest")):
        if (root / name).is_file() and (section is None or _has_section(root / name, section)):
            return PYTEST_COMMAND, f"pytest configuration in {name}"
    for folder in ("tests", "test"):
        if (root / folder).is_dir() and any(
            p.name.startswith("test") or p.name.endswith("_test.py") for p in (root / folder).rglob("*.py")
        ):
            return PYTEST_COMMAND, f"test files in {folder}/"
    return None, "no tests found: set test_command so patches are checked against the repo's tests"


def _packages(root: Path) -> tuple[str, ...]:
    found: set[str] = set()
    for base in (root, root / "src"):
        if base.is_dir():
            for child in base.iterdir():
                if (child.is_dir() and (child / "__init__.py").is_file() and child.name.isidentifier()
                        and child.name not in _NOT_APP):
                    found.add(child.name)
    return tuple(sorted(found))


def _workdir_mapping(root: Path) -> tuple[dict[str, str], str | None]:
    dockerfile = root / "Dockerfile"
    if not dockerfile.is_file():
        return {}, None
    workdirs = re.findall(r"(?im)^\s*WORKDIR\s+(\S+)\s*$", dockerfile.read_text(encoding="utf-8", errors="replace"))
    absolute = [w for w in workdirs if w.startswith("/") and "$" not in w]
    if not absolute:
        return {}, None
    prefix = absolute[-1].rstrip("/") + "/"
    return {prefix: ""}, f"the Dockerfile's WORKDIR {absolute[-1]}"


def _venv_with_pytest(root: Path) -> str | None:
    for name in (".venv", "venv"):
        venv = root / name
        if (venv / "bin" / "python").exists() and any(venv.glob("lib/python*/site-packages/pytest")):
            return name
    return None


def guess(root: Path) -> Guess:
    """What autofix.toml should say about the checkout whose top folder is `root`."""
    command, evidence = _test_command(root)
    mappings, mapping_evidence = _workdir_mapping(root)
    return Guess(
        name=re.sub(r"[^A-Za-z0-9_.-]+", "-", root.name).strip("-") or "app",
        default_branch=_default_branch(root),
        remote_url=_git_out(root, "remote", "get-url", "origin"),
        test_command=command,
        test_evidence=evidence,
        in_app_packages=_packages(root),
        path_mappings=mappings,
        mapping_evidence=mapping_evidence,
        venv=_venv_with_pytest(root),
    )


def _s(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string


def render(g: Guess) -> str:
    """The autofix.toml text for a guess: every setting explained, the unsure ones commented out."""
    packages = ", ".join(_s(p) for p in g.in_app_packages)
    lines = [
        f"# autofix configuration for {g.name}, written by `autofix init`; check it with `autofix config check`.",
        "# Environment variables AUTOFIX_* override the top-level keys. Relative paths are relative to this file.",
        "# State (the SQLite store, worktrees) goes to .autofix/ beside this file unless AUTOFIX_HOME is set.",
        "",
        "# The application's top-level packages: frames in them are the app's code in log tracebacks.",
        f"in_app_packages = [{packages}]" if packages else "# in_app_packages = [\"myapp\"]   # none found",
        "",
        "[[repos]]",
        f"name = {_s(g.name)}",
        'path = "."                                  # this checkout: retrieval and verification read it',
        f"default_branch = {_s(g.default_branch)}",
    ]
    if g.remote_url:
        lines.append(f"remote_url = {_s(g.remote_url)}   # approved fixes are pushed here as branches")
    else:
        lines.append('# remote_url = "git@example.com:acme/app.git"   # where approved branches are pushed '
                     "(no origin found: they go to this checkout)")
    if g.test_command:
        lines.append(f"test_command = {_s(g.test_command)}   # found: {g.test_evidence}")
    else:
        lines.append(f'# test_command = "python -m pytest -q"   # {g.test_evidence}')
    if g.venv:
        lines.append(f"sandbox_paths = [{_s(g.venv)}]   # its bin/ goes first on PATH in the sandbox")
    else:
        lines.append('# sandbox_paths = [".venv"]   # read-only in the sandbox: a virtualenv with the app\'s '
                     "dependencies and pytest")
    lines.append('# sentry_projects = ["my-project"]   # Sentry project slugs whose events are this repo\'s')
    lines += ["", "# Stack-trace path prefix -> repo-relative folder. Frames are also matched by path suffix,",
              "# so this is needed only when that is ambiguous.", "[repos.path_mappings]"]
    if g.path_mappings:
        lines += [f"{_s(k)} = {_s(v)}   # from {g.mapping_evidence}" for k, v in g.path_mappings.items()]
    else:
        lines.append('# "/app/" = ""')
    lines += [
        "",
        "# What a candidate must meet to reach the review queue (these are the defaults).",
        "[gate]",
        "min_confidence = 0.6",
        "max_changed_lines = 40",
        "max_files = 3",
        "",
    ]
    return "\n".join(lines)


def exclude_state_folder(root: Path, folder: str = ".autofix/") -> bool:
    """Add the state folder to the checkout's .git/info/exclude; False when it was already there."""
    path_text = _git_out(root, "rev-parse", "--git-path", "info/exclude")
    if path_text is None:
        return False
    path = Path(path_text) if Path(path_text).is_absolute() else root / path_text
    existing = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    if folder in existing or folder.rstrip("/") in existing:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*existing, folder]) + "\n", encoding="utf-8")
    return True
