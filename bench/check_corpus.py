"""Verify the crash-bug benchmark cases under bench/crashes/ against the real released sdists.

For every case (or each ``--case ID``) this owns the whole check:

* ``case.toml`` is well formed (keys, types, id matching its folder, pinned ``requires``);
* the buggy and fixed sdists download (``pip download --no-binary :all:``) into
  ``bench/.cache/sdists/`` and unpack into ``bench/.cache/src/<package>-<version>/``;
* both sdists contain ``fixed_files``, every ``fixed_functions`` name is defined in the buggy copy,
  and the fix really changed those files (at least one listed function's text differs);
* ``repro.py`` run against the buggy tree exits non-zero with the case's exception as the last line
  of stderr and the innermost traceback frame inside the imported package;
* ``repro.py`` run against the fixed tree exits 0.

The repro runs with ``python -S`` so that nothing in the virtualenv's site-packages leaks in: only the
standard library, the unpacked source root and the case's ``requires`` (installed once per distinct
requirement set with ``pip install --target`` under ``bench/.cache/deps/``) are importable.

Usage::

    .venv/bin/python bench/check_corpus.py                # every case
    .venv/bin/python bench/check_corpus.py --case ID ...  # only these

Prints one line per case (``ok`` or ``FAIL`` with the reason) and exits 1 if any case fails.
Several checkers may share the cache at once, so every cache entry is built in a scratch folder and
moved into place with one atomic rename.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from pipeline.errors import InvalidInput

BENCH = Path(__file__).resolve().parent
CRASHES = BENCH / "crashes"
CACHE = BENCH / ".cache"
CASE_FILES = {"case.toml", "repro.py"}
REPRO_TIMEOUT_S = 60
PIP_TIMEOUT_S = 600

_ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
_PIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!_-]+$")
_DOTTED_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FRAME_RE = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')


class CaseFailed(Exception):
    """One check of one case did not hold; the message says which and why."""


@dataclass(frozen=True)
class Case:
    id: str
    folder: Path
    package: str
    import_name: str
    buggy_version: str
    fixed_version: str
    exception: str
    source_root: str
    requires: tuple[str, ...]
    fixed_files: tuple[str, ...]
    fixed_functions: tuple[str, ...]
    summary: str
    reference: str


# ----------------------------------------------------------------------------- case.toml


def load_case(folder: Path) -> Case:
    """Read and validate ``folder/case.toml``; raise InvalidInput naming the file and the problem."""
    source = str(folder / "case.toml")
    try:
        data = tomllib.loads((folder / "case.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(source, f"unreadable: {exc}") from exc

    def text(key: str, *, allow_empty: bool = False) -> str:
        value = data.get(key)
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise InvalidInput(source, f"{key!r} must be a {'string' if allow_empty else 'non-empty string'}")
        return value

    def strings(key: str, *, allow_empty: bool = False) -> tuple[str, ...]:
        value = data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InvalidInput(source, f"{key!r} must be a list of non-empty strings")
        if not value and not allow_empty:
            raise InvalidInput(source, f"{key!r} must not be empty")
        return tuple(value)

    known = set(Case.__dataclass_fields__) - {"folder"}
    unknown = set(data) - known
    if unknown:
        raise InvalidInput(source, f"unknown keys {sorted(unknown)}")
    case = Case(
        id=text("id"),
        folder=folder,
        package=text("package"),
        import_name=text("import_name"),
        buggy_version=text("buggy_version"),
        fixed_version=text("fixed_version"),
        exception=text("exception"),
        source_root=text("source_root", allow_empty=True),
        requires=strings("requires", allow_empty=True),
        fixed_files=strings("fixed_files"),
        fixed_functions=strings("fixed_functions"),
        summary=text("summary"),
        reference=text("reference"),
    )
    _validate(case, source)
    return case


def _validate(case: Case, source: str) -> None:
    if case.id != case.folder.name:
        raise InvalidInput(source, f"id {case.id!r} differs from its folder {case.folder.name!r}")
    if not _ID_RE.match(case.id):
        raise InvalidInput(source, "id must be lowercase words joined by dashes (<package>-<slug>)")
    try:
        if Version(case.fixed_version) <= Version(case.buggy_version):
            raise InvalidInput(source, "fixed_version must be later than buggy_version")
    except InvalidVersion as exc:
        raise InvalidInput(source, f"bad version: {exc}") from exc
    for name in (case.import_name, case.exception, *case.fixed_functions):
        if not _DOTTED_RE.match(name):
            raise InvalidInput(source, f"{name!r} is not a dotted Python name")
    for req in case.requires:
        if not _PIN_RE.match(req):
            raise InvalidInput(source, f"requirement {req!r} must be pinned as name==version")
    for rel in (case.source_root, *case.fixed_files):
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise InvalidInput(source, f"path {rel!r} must be relative and stay inside the sdist")
    present = {p.name for p in case.folder.iterdir() if p.name != "__pycache__"}
    if present != CASE_FILES:
        raise InvalidInput(
            source, f"case folder must hold exactly {sorted(CASE_FILES)}, has {sorted(present)}"
        )


# ----------------------------------------------------------------------------- cache


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise CaseFailed(f"pip {args[0]} timed out") from exc
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise CaseFailed(f"pip {' '.join(args[:1])} {' '.join(a for a in args if '==' in a)} failed: {tail}")


def _publish(scratch: Path, final: Path) -> None:
    """Move a finished cache entry into place; if another checker won the race, keep theirs."""
    try:
        os.rename(scratch, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(scratch, ignore_errors=True)


def fetch_sdist(package: str, version: str) -> Path:
    """Return the sdist archive of ``package==version``, downloading it once."""
    folder = CACHE / "sdists" / f"{package.lower()}-{version}"
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".dl-", dir=folder.parent))
        try:
            _pip("download", "--no-deps", "--no-binary", ":all:", "-d", str(scratch), f"{package}=={version}")
            _publish(scratch, folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    archives = [p for p in folder.iterdir() if p.name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".zip"))]
    if len(archives) != 1:
        raise CaseFailed(f"expected one sdist archive in {folder}, found {[p.name for p in archives]}")
    return archives[0]


def unpack_sdist(package: str, version: str) -> Path:
    """Return the unpacked sdist root ``bench/.cache/src/<package>-<version>/``."""
    final = CACHE / "src" / f"{package.lower()}-{version}"
    if final.is_dir():
        return final
    archive = fetch_sdist(package, version)
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=final.parent))
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise CaseFailed(f"{archive.name} holds an unsafe path {member!r}")
                zf.extractall(scratch)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(scratch, filter="data")
        tops = [p for p in scratch.iterdir()]
        # An sdist holds one top folder <name>-<version>/; that folder is the sdist root.
        root = tops[0] if len(tops) == 1 and tops[0].is_dir() else scratch
        if root is scratch:
            _publish(scratch, final)
        else:
            _publish(root, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final


def install_requires(requires: tuple[str, ...]) -> Path | None:
    """Install a requirement set once into ``bench/.cache/deps/<hash>/``; None when nothing is needed."""
    if not requires:
        return None
    # One folder per distinct requirement set, so two cases pinning different versions never clash.
    key = hashlib.sha256("\n".join(sorted(requires)).encode()).hexdigest()[:12]
    final = CACHE / "deps" / key
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".deps-", dir=final.parent))
    try:
        _pip("install", "--no-compile", "--target", str(scratch), *sorted(requires))
        _publish(scratch, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final


# ----------------------------------------------------------------------------- source checks


def _module_of(rel: str, source_root: str) -> str | None:
    """Dotted module name of sdist path ``rel`` under ``source_root``, or None if it is no module."""
    path = Path(rel)
    if path.suffix != ".py":
        return None
    if source_root:
        try:
            path = path.relative_to(source_root)
        except ValueError:
            return None
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


_Def = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _find_def(tree: ast.Module, qualname: list[str]) -> _Def | None:
    """The definition ``A.b`` names in ``tree``; the last one wins, as it does at import time."""
    scope: list[ast.stmt] = tree.body
    found: _Def | None = None
    for name in qualname:
        found = None
        for node in scope:
            if isinstance(node, _Def) and node.name == name:
                found = node
        if found is None:
            return None
        scope = found.body
    return found


def _def_source(root: Path, rel: str, qualname: list[str]) -> str | None:
    text = (root / rel).read_text(encoding="utf-8", errors="replace")
    node = _find_def(ast.parse(text), qualname)
    return None if node is None else ast.get_source_segment(text, node)


def check_sources(case: Case, buggy: Path, fixed: Path) -> str:
    """Check fixed_files and fixed_functions against both sdists; return a short size note."""
    added = removed = 0
    for rel in case.fixed_files:
        for root, version in ((buggy, case.buggy_version), (fixed, case.fixed_version)):
            if not (root / rel).is_file():
                raise CaseFailed(f"sdist {version} has no {rel}")
        old = (buggy / rel).read_text(encoding="utf-8", errors="replace")
        new = (fixed / rel).read_text(encoding="utf-8", errors="replace")
        plus, minus = _diff_size(old, new)
        added, removed = added + plus, removed + minus
    if added == removed == 0:
        raise CaseFailed("fixed_files are identical in the buggy and fixed sdists")

    fn_added = fn_removed = 0
    modules = {m: rel for rel in case.fixed_files if (m := _module_of(rel, case.source_root)) is not None}
    changed = 0
    for dotted in case.fixed_functions:
        owner = max((m for m in modules if dotted.startswith(m + ".")), key=len, default=None)
        if owner is None:
            raise CaseFailed(f"fixed function {dotted} lies in none of fixed_files")
        qualname = dotted[len(owner) + 1 :].split(".")
        before = _def_source(buggy, modules[owner], qualname)
        if before is None:
            raise CaseFailed(f"{modules[owner]} in {case.buggy_version} defines no {'.'.join(qualname)}")
        after = _def_source(fixed, modules[owner], qualname)
        if before != after:
            changed += 1
            plus, minus = _diff_size(before, after or "")
            fn_added, fn_removed = fn_added + plus, fn_removed + minus
    if changed == 0:
        raise CaseFailed("none of fixed_functions changed between the buggy and fixed sdists")
    return f"files +{added} -{removed}, functions +{fn_added} -{fn_removed}"


def _diff_size(old: str, new: str) -> tuple[int, int]:
    """Lines added and removed between two texts."""
    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


# ----------------------------------------------------------------------------- running repro.py


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def _run(case: Case, code_root: Path, deps: Path | None, argv: list[str]) -> Run:
    path = [str(code_root)] + ([str(deps)] if deps else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=os.pathsep.join(path), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    with tempfile.TemporaryDirectory(prefix=f"repro-{case.id}-") as cwd:
        try:
            done = subprocess.run(
                # -S keeps the virtualenv's site-packages out: only stdlib, the sdist and requires.
                [sys.executable, "-S", *argv],
                check=False,
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=REPRO_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise CaseFailed(f"{' '.join(argv[:1])} ran over {REPRO_TIMEOUT_S}s") from exc
    return Run(done.returncode, done.stdout, done.stderr)


def _import_origin(case: Case, code_root: Path, deps: Path | None, version: str) -> Path:
    """Where ``import_name`` is imported from; it must be the unpacked sdist, not anything else."""
    probe = f"import importlib.util as u; s = u.find_spec({case.import_name!r}); print(s and s.origin)"
    run = _run(case, code_root, deps, ["-c", probe])
    origin = run.stdout.strip()
    if run.returncode != 0 or origin in ("", "None"):
        raise CaseFailed(f"{case.import_name} not importable from sdist {version}: {_last_line(run.stderr)}")
    path = Path(origin).resolve()
    if not path.is_relative_to(code_root.resolve()):
        raise CaseFailed(f"{case.import_name} in {version} imports from {path}, outside the sdist")
    # A package is the folder of its __init__.py; a single-module distribution is its file.
    return path.parent if path.name == "__init__.py" else path


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def check_buggy(case: Case, code_root: Path, deps: Path | None) -> str:
    package = _import_origin(case, code_root, deps, case.buggy_version)
    run = _run(case, code_root, deps, [str(case.folder / "repro.py")])
    if run.returncode == 0:
        raise CaseFailed(f"repro.py exits 0 on buggy {case.buggy_version}")
    last = _last_line(run.stderr)
    raised = last.split(":", 1)[0].strip()
    if raised != case.exception and not raised.endswith("." + case.exception):
        raise CaseFailed(f"buggy {case.buggy_version} raised {last!r}, not {case.exception}")
    frames = [m for line in run.stderr.splitlines() if (m := _FRAME_RE.match(line))]
    if not frames:
        raise CaseFailed(f"buggy {case.buggy_version} printed no traceback")
    innermost = Path(frames[-1]["path"]).resolve()
    inside = innermost == package or (package.is_dir() and innermost.is_relative_to(package))
    if not inside:
        raise CaseFailed(f"innermost frame {innermost} is outside {package}")
    return f"{raised} at {innermost.relative_to(code_root.resolve())}:{frames[-1]['line']}"


def check_fixed(case: Case, code_root: Path, deps: Path | None) -> None:
    _import_origin(case, code_root, deps, case.fixed_version)
    run = _run(case, code_root, deps, [str(case.folder / "repro.py")])
    if run.returncode != 0:
        raise CaseFailed(f"repro.py fails on fixed {case.fixed_version}: {_last_line(run.stderr)}")


# ----------------------------------------------------------------------------- driver


def check_case(folder: Path) -> str:
    """Run every check on one case folder; return the ok note or raise CaseFailed/InvalidInput."""
    case = load_case(folder)
    buggy = unpack_sdist(case.package, case.buggy_version)
    fixed = unpack_sdist(case.package, case.fixed_version)
    size = check_sources(case, buggy, fixed)
    deps = install_requires(case.requires)
    raised = check_buggy(case, buggy / case.source_root, deps)
    check_fixed(case, fixed / case.source_root, deps)
    return f"{case.buggy_version}: {raised}; {case.fixed_version}: exit 0; {size}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--case", action="append", default=[], metavar="ID", help="check only this case")
    parser.add_argument("--crashes", type=Path, default=CRASHES, help="folder holding the case folders")
    args = parser.parse_args(argv)

    crashes: Path = args.crashes
    if args.case:
        folders = [crashes / case_id for case_id in args.case]
    else:
        folders = sorted(p for p in crashes.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    failed = 0
    for folder in folders:
        try:
            if not folder.is_dir():
                raise CaseFailed(f"no case folder {folder}")
            note = check_case(folder)
        except (CaseFailed, InvalidInput) as exc:
            failed += 1
            print(f"FAIL {folder.name}: {exc}", flush=True)
        else:
            print(f"ok   {folder.name}: {note}", flush=True)
    print(f"{len(folders) - failed}/{len(folders)} cases ok", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
