"""Which frames of a log traceback are the application's own code (in-app).

Sentry SDKs mark their frames themselves and those marks are kept as sent (but for frozen
standard-library modules, see InAppRules.mark). A log file only has paths, so log frames are
marked here, and with no configuration in the common case:

- the guess: a frame under site-packages or dist-packages, in the standard library
  (``lib/pythonX.Y/``), in a virtualenv (``.venv/``, ``venv/``, ``.tox/``, ...), in a console script
  (a ``bin/`` file with no ``.py``) or not in a file at all (``<frozen runpy>``) is not in-app; the
  rest is. Then the logger that reported the traceback refines it: an application pip-installed
  into a virtualenv runs from site-packages, but by convention (``logging.getLogger(__name__)``)
  its own loggers carry its package name, so when the traceback goes from the guessed app frames
  into that package and never comes back, that package's frames are in-app too.
- configured (package names: AUTOFIX_IN_APP_PACKAGES and each repo's ``packages``, else the
  packages and modules its checkout holds; stack-trace prefixes: the keys of each repo's
  ``path_mappings``): a
  log frame is in-app exactly when it lies in one of those packages, even inside site-packages, or
  under one of those prefixes.

Marking recomputes every log frame from its path, so `autofix regroup` can re-mark stored events
after the configuration changed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pipeline.records import ErrorEvent, ExceptionInfo, Frame

if TYPE_CHECKING:
    from pipeline.settings import Settings

_INSTALLED = re.compile(r"/(?:site|dist)-packages/", re.IGNORECASE)
_LIBRARY = re.compile(
    r"/(?:site|dist)-packages/"  # installed distributions
    r"|/lib(?:64)?/python\d+(?:\.\d+)?t?/"  # the standard library of a Unix install, pyenv, conda
    r"|/(?:\.?venv|\.?virtualenvs|\.tox|\.nox|__pypackages__|\.pyenv|\.eggs|pipx/venvs)/"
    r"|/bin/[^/.]+$"  # a console script (gunicorn, celery): a launcher, not the app's code
    r"|^<",  # <frozen runpy>, <string>: not a file
    re.IGNORECASE,
)
_SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", "tests", "test", "docs"})
_NOT_APP_MODULES = frozenset({"setup", "conftest", "noxfile", "fabfile"})


def normalised(path: str) -> str:
    return path.replace("\\", "/")


def is_library_path(path: str) -> bool:
    """Installed, standard-library, virtualenv or console-script code, judged by the path alone."""
    return bool(_LIBRARY.search(normalised(path)))


def guess_in_app(path: str) -> bool:
    return not is_library_path(path)


def installed_package(path: str) -> str | None:
    """The top-level package (or module) of a file under site-packages or dist-packages."""
    path = normalised(path)
    matches = list(_INSTALLED.finditer(path))
    if not matches:
        return None
    first = path[matches[-1].end() :].split("/", 1)[0]
    return first.removesuffix(".py") or None


@dataclass(frozen=True)
class InAppRules:
    """What marks log frames in-app: nothing configured (the guess), or packages and prefixes."""

    packages: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()  # stack-trace path prefixes of the apps' own files

    @property
    def configured(self) -> bool:
        return bool(self.packages or self.prefixes)

    @classmethod
    def of(cls, packages: Iterable[str] = (), prefixes: Iterable[str] = ()) -> InAppRules:
        return cls(frozenset(p for p in packages if p), tuple(sorted({normalised(p) for p in prefixes if p})))

    @classmethod
    def from_settings(cls, settings: Settings) -> InAppRules:
        """AUTOFIX_IN_APP_PACKAGES plus, per repo, its packages (named, else found in its checkout)
        and its path-mapping prefixes."""
        packages = set(settings.in_app_packages)
        prefixes: list[str] = []
        for repo in settings.repos:
            packages.update(repo.packages or (repo_packages(repo.path) if repo.path is not None else ()))
            prefixes.extend(prefix for prefix in repo.path_mappings if prefix.strip("/"))
        return cls.of(packages, prefixes)

    def frame_in_app(self, frame: Frame) -> bool:
        """A configured verdict on one frame (module or path); the guess when nothing is configured."""
        path = normalised(frame.abs_path or frame.filename)
        if not self.configured:
            return guess_in_app(path)
        if frame.module and frame.module.split(".", 1)[0] in self.packages:
            return True
        if any(path.startswith(prefix) for prefix in self.prefixes) and not _INSTALLED.search(path):
            return True
        return _in_packages(path, self.packages)

    def mark(self, event: ErrorEvent) -> ErrorEvent:
        """The event with its log frames marked; events from an SDK keep the marks it sent, except
        that a frozen standard-library module is never in-app (sentry-python's default rule joins
        "<frozen runpy>" to the working folder and then counts it as the project's)."""
        if event.source != "log":
            if not any(f.in_app and _frozen(f) for exc in event.exceptions for f in exc.frames):
                return event
            return replace(event, exceptions=tuple(
                replace(exc, frames=tuple(replace(f, in_app=False) if f.in_app and _frozen(f) else f
                                          for f in exc.frames))
                for exc in event.exceptions))
        exceptions = tuple(self._mark_stack(exc, event.logger) for exc in event.exceptions)
        return replace(event, exceptions=exceptions)

    def _mark_stack(self, exc: ExceptionInfo, logger: str | None) -> ExceptionInfo:
        flags = [self.frame_in_app(f) for f in exc.frames]
        if not self.configured:
            flags = _logger_refined(exc.frames, flags, logger)
        frames = tuple(f if f.in_app == flag else replace(f, in_app=flag) for f, flag in zip(exc.frames, flags, strict=True))
        return exc if frames == exc.frames else replace(exc, frames=frames)


def _frozen(frame: Frame) -> bool:
    return frame.filename.startswith("<frozen ") or "/<frozen " in normalised(frame.abs_path or "")


def _in_packages(path: str, packages: Collection[str]) -> bool:
    installed = installed_package(path)
    if installed is not None:
        return installed in packages
    if is_library_path(path):
        return False
    pure = PurePosixPath(path)
    return any(part in packages for part in pure.parts[:-1]) or pure.stem in packages


def _logger_refined(frames: tuple[Frame, ...], flags: list[bool], logger: str | None) -> list[bool]:
    """Mark the reporting logger's installed package in-app when the stack enters it from the
    guessed app frames and no guessed app frame lies deeper (the app called into it; it did not
    call back). A framework that logs the traceback (uvicorn.error, celery) sits outermost instead,
    below the app's own frames, and is left alone."""
    package = _logger_package(logger)
    if package is None:
        return flags
    inside = [installed_package(normalised(f.abs_path or f.filename)) == package for f in frames]
    if not any(inside):
        return flags
    first = inside.index(True)
    if any(flags[first:]):
        return flags
    return [flag or here for flag, here in zip(flags, inside, strict=True)]


def _logger_package(logger: str | None) -> str | None:
    if not logger:
        return None
    top = logger.split(".", 1)[0]
    if top in ("root", "__main__") or top in sys.stdlib_module_names or not top.isidentifier():
        return None
    return top


def repo_packages(root: Path) -> set[str]:
    """The top-level packages and modules of a checkout, at its root or under src/: folders with an
    __init__.py and .py files (not setup.py, conftest.py and the like)."""
    found: set[str] = set()
    for base in (root, root / "src"):
        try:
            children = list(base.iterdir())
        except OSError:
            continue
        for child in children:
            name = child.name.removesuffix(".py")
            if child.name in _SKIP_DIRS or name in _NOT_APP_MODULES or not name.isidentifier():
                continue
            if child.is_dir() and (child / "__init__.py").is_file():
                found.add(name)
            elif child.is_file() and child.suffix == ".py":
                found.add(name)
    return found


def mark_in_app(event: ErrorEvent, rules: InAppRules | Collection[str] = ()) -> ErrorEvent:
    """The event with its log frames marked by `rules` (or by a plain collection of packages)."""
    if not isinstance(rules, InAppRules):
        rules = InAppRules.of(rules)
    return rules.mark(event)
