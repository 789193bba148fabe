"""What a model-written patch may not do, checked on the diff before anything runs it.

A patch is dropped, with the reason recorded, when it touches a file outside the localised set or
under a protected path (globs such as **/auth/**), deletes or empties a test, adds an import or call
of a network, process or filesystem-walking module, or adds a line the secret scrubber would filter
(a key, a token, a password in a URL). The rules read the diff itself, never what the model says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from pipeline.fixers.diffing import diff_files
from pipeline.scrub import is_secret_key, scrub_text

# Modules whose import reaches the network, starts processes or walks the filesystem.
FORBIDDEN_MODULES = frozenset({
    "socket", "ssl", "subprocess", "multiprocessing", "shutil", "requests", "urllib", "urllib2", "urllib3",
    "httpx", "http", "aiohttp", "ftplib", "smtplib", "telnetlib", "paramiko", "pty", "ctypes", "glob",
    "pathlib", "webbrowser", "asyncio.subprocess", "importlib", "pickle", "marshal",
})
# Calls that do the same through an already imported module, or run code.
_FORBIDDEN_CALLS = re.compile(
    r"\bos\.(system|popen|walk|scandir|listdir|remove|unlink|rmdir|removedirs|exec\w*|spawn\w*|fork|kill)\b"
    r"|\b(eval|exec|__import__|compile)\s*\(|\bPath\s*\([^)]*\)\s*\.\s*(glob|rglob|iterdir|unlink|rmdir)\b"
)
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w., ]+))")


def _glob_match(path: str, pattern: str) -> bool:
    """gitignore-like: ** spans folders; a pattern with no slash matches any path component."""
    if "/" not in pattern.strip("/"):
        return any(fnmatchcase(part, pattern.strip("/")) for part in PurePosixPath(path).parts)
    regex = re.escape(pattern.strip("/")).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*") \
        .replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    return re.fullmatch(regex, path) is not None or re.fullmatch(regex, path + "/") is not None


def protected(path: str, globs: Iterable[str]) -> str | None:
    for pattern in globs:
        if _glob_match(path, pattern) or (pattern.endswith("/**") and _glob_match(path + "/x", pattern)):
            return pattern
    return None


def _is_test(path: str) -> bool:
    p = PurePosixPath(path)
    return (p.name.startswith("test_") or p.name.endswith("_test.py") or p.name == "conftest.py"
            or any(part in ("tests", "test", "testing") for part in p.parts[:-1]))


def _added_removed(diff: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    added: list[tuple[str, str]] = []
    removed: list[tuple[str, str]] = []
    deleted: list[str] = []
    current = ""
    old = ""
    for line in diff.splitlines():
        if line.startswith("--- "):
            old = line[4:].split("\t")[0].strip()
        elif line.startswith("+++ "):
            new = line[4:].split("\t")[0].strip()
            if new == "/dev/null":
                deleted.append(old[2:] if old.startswith("a/") else old)
                current = old[2:] if old.startswith("a/") else old
            else:
                current = new[2:] if new.startswith("b/") else new
        elif line.startswith("+"):
            added.append((current, line[1:]))
        elif line.startswith("-"):
            removed.append((current, line[1:]))
    return added, removed, deleted


_LITERAL = re.compile(r"""(?P<q>['"])(?P<body>(?:\\.|(?!(?P=q)).)*)(?P=q)""")
_ASSIGNED_LITERAL = re.compile(r"""([\w.\[\]'"-]+?)['"]?\]?\s*[=:]\s*[bru]*['"]([^'"]{4,})['"]""")


def adds_secret(line: str) -> bool:
    """A string literal the scrubber would filter, or a literal assigned to a secret-named key. Code
    itself (`token = tokens[0]`) is not a secret: only literals are judged."""
    for m in _LITERAL.finditer(line):
        if scrub_text(m["body"]) != m["body"]:
            return True
    for m in _ASSIGNED_LITERAL.finditer(line):
        name = m.group(1).strip("'\"[].").rsplit(".", 1)[-1]
        if is_secret_key(name):
            return True
    return False


def _imported(line: str) -> list[str]:
    m = _IMPORT.match(line)
    if not m:
        return []
    if m.group(1):
        return [m.group(1)]
    return [part.strip().split(" as ")[0].strip() for part in m.group(2).split(",") if part.strip()]


def violations(diff: str, localised: Sequence[str], protected_globs: Sequence[str]) -> list[str]:
    """Why the patch must be dropped; empty when it may be verified."""
    reasons: list[str] = []
    files = diff_files(diff)
    allowed = set(localised)
    for path in files:
        if path not in allowed:
            reasons.append(f"touches {path}, outside the localised files ({', '.join(sorted(allowed)) or 'none'})")
        pattern = protected(path, protected_globs)
        if pattern:
            reasons.append(f"touches {path}, a protected path ({pattern})")
    added, removed, deleted = _added_removed(diff)
    for path in deleted:
        if _is_test(path):
            reasons.append(f"deletes the test file {path}")
    removed_tests = [text for path, text in removed if _is_test(path) and re.match(r"\s*(async\s+)?def\s+test", text)]
    if removed_tests:
        reasons.append(f"deletes a test ({removed_tests[0].strip()})")
    for path, text in added:
        code = text.split("#", 1)[0]
        for module in _imported(code):
            top = module.split(".")[0]
            if module in FORBIDDEN_MODULES or top in FORBIDDEN_MODULES:
                reasons.append(f"adds an import of {module} ({path}): network, process and filesystem modules "
                               "are not allowed in a fix")
        call = _FORBIDDEN_CALLS.search(code)
        if call:
            reasons.append(f"adds a call of {call.group(0).rstrip('(').strip()} ({path})")
        if adds_secret(text):
            reasons.append(f"adds a line that looks like a secret ({path})")
    return list(dict.fromkeys(reasons))
