"""A repo's own environment: a virtualenv with its declared dependencies and pytest, built once.

What a repo declares (requirements*.txt at its root, pyproject `[project].dependencies` plus a
test/dev extra, or a configured `setup_command`) is hashed with the sandbox's name, the sandbox
interpreter's version and autofix's pytest version into a key; the env lives in
`AUTOFIX_HOME/envs/<key>/` and is reused by every later run with the same key.

Building it has two halves. On the host, with network: autofix's own pytest (and pip) are packed
from their installed files (env_wheels), and the declared requirements are fetched with `pip wheel`
into `wheels/` (or `setup_command` fills it). Then INSIDE the sandbox, with no network and the env
folder as the only writable place: `<sandbox.python> -m venv --without-pip venv`, and pip (run from
its wheel) installs from `wheels/` with `--no-index`. The repo itself is never installed: its code
comes from the worktree under test. A lock (fcntl) keeps two builds of one key apart, a marker file
says the env is complete, and a failed build removes its folder. Runs then mount the env read-only
(`ro_paths`) with its bin/ first on PATH.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import structlog
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pipeline.errors import PermanentError
from pipeline.file_lock import exclusive
from pipeline.ports import Limits, Sandbox
from pipeline.settings import EnvConfig
from sandbox import env_wheels

log = structlog.get_logger(__name__)

MARKER = "autofix-env.json"
TEST_EXTRAS = ("test", "tests", "testing", "dev")
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# Inside the sandbox pip reads no configuration file: the host's index settings mean nothing there.
_PIP_ENV = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONNOUSERSITE": "1"}


class EnvBuildFailed(PermanentError):
    """The repo's environment could not be built; the message says which step and why."""


@dataclass(frozen=True)
class Declaration:
    """What a repo says it needs: PEP 508 requirements and where they were read."""

    requirements: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # repo-relative files that declared something
    setup_command: str | None = None
    setup_inputs: str = ""  # digest of the files a setup command may read
    skipped: tuple[str, ...] = ()  # lines not installed, with why (the repo itself, options)

    @property
    def names_pytest(self) -> bool:
        return any(_req_name(r) == "pytest" for r in self.requirements)


@dataclass(frozen=True)
class RepoEnv:
    """A built environment; `reused` says whether this call found it already built."""

    key: str
    root: Path
    reused: bool
    python_version: str

    @property
    def bin(self) -> Path:
        return self.root / "venv" / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def ro_paths(self) -> tuple[Path, ...]:
        return (self.root,)

    def run_env(self, extra_bins: Sequence[Path] = ()) -> dict[str, str]:
        """PATH (this env's bin first, then `extra_bins`, then the system) and VIRTUAL_ENV."""
        path = ":".join([str(self.bin), *(str(b) for b in extra_bins), _SYSTEM_PATH])
        return {"PATH": path, "VIRTUAL_ENV": str(self.root / "venv"), "PYTHONNOUSERSITE": "1"}


# --- the declaration -----------------------------------------------------------------------------


def declared(repo: Path, setup_command: str | None = None) -> Declaration:
    """Read what `repo` (a checkout at the commit under test) declares about its dependencies."""
    reqs: list[str] = []
    sources: list[str] = []
    skipped: list[str] = []
    for path in sorted(repo.glob("requirements*.txt")):
        if "doc" in path.name.lower() or not path.is_file():
            continue
        found = _requirements_file(path, repo, skipped, set())
        if found:
            sources.append(path.name)
            reqs += found
    own_name, from_pyproject = _pyproject(repo / "pyproject.toml", skipped)
    if from_pyproject:
        sources.append("pyproject.toml")
        reqs += from_pyproject
    if own_name:
        # A test extra that names the project itself ("mypkg[test]") would install the repo.
        mine = [r for r in reqs if _req_name(r) == own_name]
        skipped += [f"{r}: the repo itself" for r in mine]
        reqs = [r for r in reqs if _req_name(r) != own_name]
    inputs = ""
    if setup_command:
        digest = hashlib.sha256()
        for name in ("pyproject.toml", "setup.py", "setup.cfg", *(p.name for p in sorted(repo.glob("req*.txt")))):
            if (repo / name).is_file():
                digest.update(name.encode() + b"\0" + (repo / name).read_bytes() + b"\0")
        inputs = digest.hexdigest()
    return Declaration(tuple(dict.fromkeys(reqs)), tuple(sources), setup_command, inputs, tuple(skipped))


def _requirements_file(path: Path, repo: Path, skipped: list[str], seen: set[Path]) -> list[str]:
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    out: list[str] = []
    text = path.read_text(encoding="utf-8", errors="replace").replace("\\\n", "")
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        nested = re.match(r"^(?:-r|--requirement)[\s=]+(\S+)$", line)
        if nested:
            inner = (path.parent / nested.group(1)).resolve()
            if inner.is_relative_to(repo.resolve()):
                out += _requirements_file(inner, repo, skipped, seen)
            continue
        if line.startswith("-") or line.startswith((".", "/", "file:")):
            skipped.append(f"{line}: an option or a local path, not a package")
            continue
        requirement = _valid(line)
        if requirement is None:
            skipped.append(f"{line}: not a requirement")
            continue
        out.append(requirement)
    return out


def _pyproject(path: Path, skipped: list[str]) -> tuple[str | None, list[str]]:
    if not path.is_file():
        return None, []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        skipped.append(f"pyproject.toml: unreadable ({exc})")
        return None, []
    project = data.get("project")
    if not isinstance(project, dict):
        return None, []
    name = project.get("name")
    lines = list(project.get("dependencies") or [])
    extras = project.get("optional-dependencies") or {}
    if isinstance(extras, dict):
        for extra in TEST_EXTRAS:
            lines += list(extras.get(extra) or [])
    found = []
    for line in lines:
        requirement = _valid(line) if isinstance(line, str) else None
        if requirement is None:
            skipped.append(f"{line}: not a requirement")
        else:
            found.append(requirement)
    return (canonicalize_name(name) if isinstance(name, str) else None), found


def _valid(line: str) -> str | None:
    try:
        return str(Requirement(line))
    except InvalidRequirement:
        return None


def _req_name(line: str) -> str:
    return canonicalize_name(Requirement(line).name)


# --- the key -------------------------------------------------------------------------------------


def autofix_pytest() -> str:
    return metadata.version("pytest")


def env_key(declaration: Declaration, sandbox_name: str, python_version: str) -> str:
    """The cache key: what is declared, where it runs, with which interpreter and pytest."""
    material = {
        "requirements": sorted(declaration.requirements),
        "setup_command": declaration.setup_command,
        "setup_inputs": declaration.setup_inputs,
        "sandbox": sandbox_name,
        "python": python_version,
        "pytest": None if declaration.names_pytest else autofix_pytest(),
        "layout": 1,  # bump when the way envs are built changes
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


_VERSIONS: dict[tuple[str, str], str] = {}


def reset_cache() -> None:
    """Forget the sandbox interpreter versions seen (tests that swap interpreters)."""
    _VERSIONS.clear()


def sandbox_python_version(sandbox: Sandbox, scratch: Path, limits: Limits) -> str:
    """`major.minor.micro` of `sandbox.python`, asked inside the sandbox once per backend."""
    cache = (sandbox.name, sandbox.python)
    if cache not in _VERSIONS:
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="probe-", dir=scratch) as tmp:
            probe = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
            done = sandbox.run(Path(tmp), [sandbox.python, "-c", probe], limits, {"PATH": _SYSTEM_PATH})
        version = done.output.strip().splitlines()[-1] if done.output.strip() else ""
        if done.exit_code != 0 or not re.fullmatch(r"\d+\.\d+\.\d+", version):
            raise EnvBuildFailed(f"{sandbox.python} does not run in the {sandbox.name} sandbox: "
                                 f"{done.output.strip()[-300:]}")
        _VERSIONS[cache] = version
    return _VERSIONS[cache]


# --- building ------------------------------------------------------------------------------------


def ensure_env(repo: Path, envs: Path, sandbox: Sandbox, config: EnvConfig | None = None,
               setup_command: str | None = None) -> RepoEnv:
    """The env for `repo` in `sandbox`, built under `envs/<key>/` unless a complete one is there."""
    config = config or EnvConfig()
    limits = Limits(timeout_s=config.build_timeout_s, memory_mb=4096, output_bytes=8000)
    declaration = declared(repo, setup_command)
    version = sandbox_python_version(sandbox, envs / ".probe", limits)
    key = env_key(declaration, sandbox.name, version)
    root = envs / key
    with exclusive(envs / f"{key}.lock"):
        if (root / MARKER).is_file():
            log.info("env.reused", key=key)
            return RepoEnv(key, root.resolve(), True, version)
        shutil.rmtree(root, ignore_errors=True)  # what a build that died half-way left behind
        root.mkdir(parents=True)
        try:
            _build(repo, root.resolve(), declaration, sandbox, config, limits)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        (root / MARKER).write_text(json.dumps({
            "key": key, "sandbox": sandbox.name, "python": version,
            "requirements": list(declaration.requirements), "sources": list(declaration.sources),
            "setup_command": declaration.setup_command, "skipped": list(declaration.skipped),
        }, indent=1) + "\n")
    log.info("env.built", key=key, requirements=len(declaration.requirements), sources=declaration.sources)
    return RepoEnv(key, root.resolve(), False, version)


def _build(repo: Path, root: Path, declaration: Declaration, sandbox: Sandbox, config: EnvConfig,
           limits: Limits) -> None:
    wheels = root / "wheels"
    ours = ["pip"] if declaration.names_pytest else ["pip", "pytest"]
    try:
        packed = env_wheels.pack_all(ours, wheels)
    except PermanentError as exc:
        raise EnvBuildFailed(f"packing autofix's own {' and '.join(ours)}: {exc}") from exc
    pip_wheel = next(p for p in packed if p.name.startswith("pip-"))
    wanted = list(declaration.requirements)
    if not declaration.names_pytest:
        wanted.append(f"pytest=={autofix_pytest()}")
    (root / "requirements.txt").write_text("".join(f"{r}\n" for r in wanted))
    install = ["-r", "requirements.txt"]
    if declaration.setup_command:
        before = set(wheels.iterdir())
        _host(["sh", "-c", declaration.setup_command], repo, config, {"AUTOFIX_WHEELHOUSE": str(wheels)},
              "the setup command")
        install += [f"wheels/{p.name}" for p in sorted(set(wheels.iterdir()) - before) if p.suffix == ".whl"]
    elif declaration.requirements:
        _host([sys.executable, "-m", "pip", "wheel", "--wheel-dir", str(wheels), "--find-links", str(wheels),
               *_index_args(config), "-r", str(root / "requirements.txt")], root, config, {},
              "fetching the declared requirements")
    env = {**_PIP_ENV, "PATH": _SYSTEM_PATH}
    _inside(sandbox, root, [sandbox.python, "-m", "venv", "--without-pip", "venv"], limits, env, "making the venv")
    _inside(sandbox, root, ["venv/bin/python", f"wheels/{pip_wheel.name}/pip", "install", "--no-index",
                            "--find-links", "wheels", "--no-cache-dir", "--no-compile", *install],
            limits, env, "installing into the venv")


def _index_args(config: EnvConfig) -> list[str]:
    args = [arg for link in config.find_links for arg in ("--find-links", link)]
    return args + (["--no-index"] if config.no_index else [])


def _host(argv: list[str], cwd: Path, config: EnvConfig, extra: Mapping[str, str], what: str) -> None:
    """A host-side step (network allowed; never the patch): pip's own configuration applies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', _SYSTEM_PATH)}"
    env.update(extra)
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False,
                              timeout=config.build_timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise EnvBuildFailed(f"{what} ran over {config.build_timeout_s:.0f} s") from exc
    if done.returncode != 0:
        raise EnvBuildFailed(f"{what} failed (exit {done.returncode}): {_tail(done.stderr or done.stdout)}")


def _inside(sandbox: Sandbox, root: Path, argv: list[str], limits: Limits, env: Mapping[str, str],
            what: str) -> None:
    done = sandbox.run(root, argv, limits, env)
    if done.exit_code != 0 or done.timed_out:
        raise EnvBuildFailed(f"{what} in the {sandbox.name} sandbox failed (exit {done.exit_code}): "
                             f"{_tail(done.output)}")


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-400:] or "(no output)"
