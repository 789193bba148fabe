"""The symbol index of a repo at one commit: definitions with spans, imports and call sites.

Built with `ast` over the repo's Python files that the context policy allows (an excluded file is
never parsed, so nothing of it is stored), once per (commit, policy): the JSON form is cached under
AUTOFIX_HOME/context/index/ and a second build of the same key only reads it. A working tree with
uncommitted changes keys by the commit plus the changed files' sizes and modification times; a
folder that is no git checkout keys by every Python file's size and modification time.

What it holds, per symbol: kind (function, method, class, constant), qualified name, file, line span,
the names it calls with the line of each call, the names it reads, and its BM25 tokens. Per file: the
module name and its imports (local name -> dotted target). `definitions(name, path)` answers "where
is NAME, used in PATH, defined?" through the file's own definitions, its imports, then a unique
definition anywhere in the repo.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from pipeline.context.mapping import _python_files
from pipeline.context.policy import ALLOW_ALL, ContextPolicy
from pipeline.context.tokens import code_tokens
from pipeline.pysource import Undecodable, read_source

log = structlog.get_logger(__name__)

INDEX_VERSION = 2  # bump when the stored shape or the tokens change: old caches are then ignored
_MAX_FILE_BYTES = 2_000_000  # generated or vendored blobs: not code anyone fixes by hand


@dataclass(frozen=True)
class Symbol:
    kind: str  # function | method | class | constant
    qualname: str  # inside its module: "Stats._get_bin_bounds", "outer.<locals>.inner", "RATE"
    path: str  # repo-relative, POSIX
    start: int  # 1-based, decorators included
    end: int
    # (called name, line): `f(x)` gives "f", `self.f(x)` "self.f", `mod.f(x)` "mod.f", `a.b.f(x)` ".f"
    calls: tuple[tuple[str, int], ...] = ()
    names: tuple[str, ...] = ()  # names and attributes it reads, spelled as in calls, first use first
    tokens: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    @property
    def is_test(self) -> bool:
        return is_test_path(self.path)


@dataclass(frozen=True)
class FileInfo:
    path: str
    module: str  # dotted module name ("pkg.sub.mod"; a src/ prefix dropped)
    imports: Mapping[str, str] = field(default_factory=dict)  # local name -> "module" or "module.name"


def is_test_path(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    name = parts[-1] if parts else ""
    return (any(p in {"tests", "test", "testing"} for p in parts[:-1]) or name.startswith("test_")
            or name.endswith("_test.py") or name == "conftest.py")


def module_name(rel: str) -> str:
    parts = list(PurePosixPath(rel).with_suffix("").parts)
    if parts and parts[0] in {"src", "lib"} and len(parts) > 1:
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@dataclass
class SymbolIndex:
    root: Path
    key: str
    files: dict[str, FileInfo]
    symbols: list[Symbol]
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why it is not indexed (syntax, encoding)
    from_cache: bool = False
    build_seconds: float = 0.0

    def __post_init__(self) -> None:
        self._by_name: dict[str, list[int]] = defaultdict(list)
        self._by_path: dict[str, list[int]] = defaultdict(list)
        self._by_module: dict[str, str] = {}
        for i, sym in enumerate(self.symbols):
            self._by_name[sym.name].append(i)
            self._by_path[sym.path].append(i)
        for info in self.files.values():
            self._by_module.setdefault(info.module, info.path)

    # --- lookups ---------------------------------------------------------------------------------

    def in_file(self, path: str) -> list[Symbol]:
        return [self.symbols[i] for i in self._by_path.get(path, ())]

    def named(self, name: str) -> list[Symbol]:
        return [self.symbols[i] for i in self._by_name.get(name, ())]

    def get(self, path: str, qualname: str) -> Symbol | None:
        return next((s for s in self.in_file(path) if s.qualname == qualname), None)

    def enclosing(self, path: str, line: int) -> Symbol | None:
        """The innermost function or method whose span holds the line."""
        inside = [s for s in self.in_file(path) if s.kind in ("function", "method") and s.start <= line <= s.end]
        return min(inside, key=lambda s: s.end - s.start) if inside else None

    def module_file(self, module: str) -> str | None:
        if module in self._by_module:
            return self._by_module[module]
        tails = [p for m, p in self._by_module.items() if m.endswith("." + module)]
        return tails[0] if len(tails) == 1 else None

    def definitions(self, name: str, used_in: str, within_class: str | None = None) -> list[Symbol]:
        """Where NAME, read in file `used_in` (inside class `within_class`, if a method), is defined.

        NAME is as the index records uses: `f` for a bare name, `self.f` / `cls.f` for the class's
        own attribute, `mod.f` for an attribute of a name (an imported module, say), `.f` for an
        attribute of anything else, which is never guessed.
        """
        base, dot, attr = name.rpartition(".")
        if dot:
            if base in ("self", "cls"):
                found = self.get(used_in, f"{within_class}.{attr}") if within_class else None
                return [found] if found is not None else []
            info = self.files.get(used_in)
            target = info.imports.get(base) if base and info else None
            path = self.module_file(target) if target else None
            return [s for s in self.in_file(path) if s.qualname == attr] if path else []
        local = [s for s in self.in_file(used_in) if s.qualname == name]
        if local:
            return local
        info = self.files.get(used_in)
        target = info.imports.get(name) if info else None
        if target:  # imported: from the module it names, or nothing (an outside package's name)
            module, _, attr = target.rpartition(".")
            path = self.module_file(module) if module else None
            return [s for s in self.in_file(path) if s.qualname == attr] if path else []
        everywhere = [s for s in self.named(name) if "<locals>" not in s.qualname and not s.is_test]
        top = [s for s in everywhere if s.kind in ("function", "class", "constant")]
        if len(top) == 1:
            return top
        return everywhere if len(everywhere) == 1 else []

    def callers(self, name: str) -> list[tuple[Symbol, int]]:
        """Call sites of NAME (by its last name component): the calling symbol and the line."""
        return [(s, line) for s in self.symbols for called, line in s.calls if called.rsplit(".", 1)[-1] == name]

    # --- storage -----------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"version": INDEX_VERSION, "key": self.key,
                "files": {p: asdict(f) for p, f in self.files.items()},
                "symbols": [asdict(s) for s in self.symbols], "skipped": self.skipped}

    @classmethod
    def from_json(cls, root: Path, data: Mapping[str, Any]) -> SymbolIndex:
        files = {p: FileInfo(f["path"], f["module"], dict(f["imports"])) for p, f in data["files"].items()}
        symbols = [Symbol(s["kind"], s["qualname"], s["path"], s["start"], s["end"],
                          tuple((c[0], c[1]) for c in s["calls"]), tuple(s["names"]), tuple(s["tokens"]))
                   for s in data["symbols"]]
        return cls(root, data["key"], files, symbols, dict(data.get("skipped", {})), from_cache=True)


# --- building ------------------------------------------------------------------------------------


_MEMO: dict[tuple[str, str], SymbolIndex] = {}
_MEMO_SIZE = 4


def _remember(root: Path, key: str, index: SymbolIndex) -> None:
    _MEMO[(str(root), key)] = index
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.pop(next(iter(_MEMO)))


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _stat_digest(root: Path, rels: Iterable[str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(rels):
        try:
            st = (root / rel).stat()
        except OSError:
            h.update(f"{rel}:gone\n".encode())
            continue
        h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def source_key(root: Path) -> str:
    """What the index's content depends on: the commit (plus any uncommitted change), else file stats."""
    top = _git(root, "rev-parse", "--show-toplevel")
    head = _git(root, "rev-parse", "HEAD") if top is not None and Path(top.strip()).resolve() == root else None
    if head is None:  # no checkout of its own (a folder inside another repo counts as none)
        return "nogit-" + _stat_digest(root, _python_files(root))
    status = _git(root, "status", "--porcelain", "--untracked-files=all") or ""
    dirty = [line[3:].split(" -> ")[-1] for line in status.splitlines() if line[3:].endswith(".py")]
    return head.strip() + ("-dirty-" + _stat_digest(root, dirty) if dirty else "")


def index_key(root: Path, policy: ContextPolicy) -> str:
    return f"v{INDEX_VERSION}-{source_key(root)}-{policy.digest}"


def build_index(root: Path, policy: ContextPolicy = ALLOW_ALL, cache_dir: Path | None = None) -> SymbolIndex:
    """The index for the checkout at `root`, read from `cache_dir` when it was built before."""
    started = time.monotonic()
    root = root.resolve()
    key = index_key(root, policy)
    memo = _MEMO.get((str(root), key))
    if memo is not None:  # the flow built it for ranking; fixers ask again for their context
        return memo
    cache = cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            data = json.loads(cache.read_text(encoding="utf-8"))
            if data.get("version") == INDEX_VERSION and data.get("key") == key:
                index = SymbolIndex.from_json(root, data)
                index.build_seconds = round(time.monotonic() - started, 3)
                _remember(root, key, index)
                log.info("context.index_cached", files=len(index.files), symbols=len(index.symbols))
                return index
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            log.warning("context.index_cache_unreadable", path=str(cache))
    files: dict[str, FileInfo] = {}
    symbols: list[Symbol] = []
    skipped: dict[str, str] = {}
    for rel in sorted(policy.filter(_python_files(root))):
        path = root / rel
        try:
            if path.stat().st_size > _MAX_FILE_BYTES:
                skipped[rel] = "too large"
                continue
            source = read_source(path)
            tree = ast.parse(source, filename=rel)
        except (OSError, Undecodable, SyntaxError, ValueError) as exc:
            skipped[rel] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        info, found = _index_module(rel, source, tree)
        files[rel] = info
        symbols.extend(found)
    index = SymbolIndex(root, key, files, symbols, skipped)
    index.build_seconds = round(time.monotonic() - started, 3)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index.to_json(), separators=(",", ":")), encoding="utf-8")
        tmp.replace(cache)  # atomic: a concurrent reader sees the old file or the whole new one
    _remember(root, key, index)
    log.info("context.index_built", files=len(files), symbols=len(symbols), seconds=index.build_seconds)
    return index


def _resolve_relative(rel: str, level: int, module: str | None) -> str:
    package = module_name(rel).split(".") if module_name(rel) else []
    if not rel.endswith("__init__.py"):
        package = package[:-1]
    if level > 1:
        package = package[: len(package) - (level - 1)]
    return ".".join([*package, *([module] if module else [])])


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _statements(body: Sequence[ast.stmt]) -> Iterable[ast.stmt]:
    """Every statement in a body, nested blocks and definitions' bodies included (no expressions)."""
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        for part in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(node, part, None)
            if isinstance(inner, list):
                stack.extend(reversed(inner))


def _imports(rel: str, tree: ast.Module) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(rel, node.level, node.module) if node.level else (node.module or "")
            for alias in node.names:
                if alias.name != "*":
                    out[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
    return out


class _Uses(ast.NodeVisitor):
    """Calls and names read inside one definition, not descending into nested definitions' bodies."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.names: dict[str, None] = {}

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            self.calls.append((func.id, node.lineno))
        elif isinstance(func, ast.Attribute):
            self.calls.append((_attribute(func), node.lineno))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.names.setdefault(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.names.setdefault(_attribute(node))
        self.generic_visit(node)

    def _definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        # A nested definition's decorators, defaults and bases run in the enclosing body; its own
        # body is indexed as a symbol of its own.
        for part in node.decorator_list:
            self.visit(part)
        if isinstance(node, ast.ClassDef):
            for base in (*node.bases, *node.keywords):
                self.visit(base)
        else:
            for default in (*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)):
                self.visit(default)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _definition


def _attribute(node: ast.Attribute) -> str:
    return f"{node.value.id}.{node.attr}" if isinstance(node.value, ast.Name) else f".{node.attr}"


def _uses(body: Sequence[ast.AST]) -> _Uses:
    uses = _Uses()
    for node in body:
        uses.visit(node)
    return uses


def _index_module(rel: str, source: str, tree: ast.Module) -> tuple[FileInfo, list[Symbol]]:
    lines = source.splitlines()
    symbols: list[Symbol] = []

    def text(start: int, end: int) -> str:
        return "\n".join(lines[start - 1 : end])

    def visit(body: Sequence[ast.stmt], prefix: str, in_class: bool) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = f"{prefix}{node.name}"
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                end = node.end_lineno or node.lineno
                uses = _uses(node.body)
                args = [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)]
                own = _own_text(lines, node, start, end)
                tokens = code_tokens(qual) * 3 + code_tokens(" ".join(args)) + code_tokens(own)
                symbols.append(Symbol("method" if in_class else "function", qual, rel, start, end,
                                      tuple(uses.calls), tuple(uses.names), tuple(tokens)))
                visit(node.body, f"{qual}.<locals>.", False)
            elif isinstance(node, ast.ClassDef):
                qual = f"{prefix}{node.name}"
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                end = node.end_lineno or node.lineno
                uses = _uses([*node.bases, *node.keywords, *node.body])  # class-level statements only
                tokens = code_tokens(qual) * 3 + code_tokens(_own_text(lines, node, start, end))
                symbols.append(Symbol("class", qual, rel, start, end, tuple(uses.calls), tuple(uses.names),
                                      tuple(tokens)))
                visit(node.body, f"{qual}.", True)
            elif not prefix and isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                end = node.end_lineno or node.lineno
                for target in targets:
                    if isinstance(target, ast.Name):
                        uses = _uses([node.value] if node.value is not None else [])
                        tokens = code_tokens(target.id) * 3 + code_tokens(text(node.lineno, min(end, node.lineno + 20)))
                        symbols.append(Symbol("constant", target.id, rel, node.lineno, end, tuple(uses.calls),
                                              tuple(uses.names), tuple(tokens)))
            elif isinstance(node, (ast.If, ast.Try, ast.With)) and not prefix:
                # `if TYPE_CHECKING:`, `try: import x except ImportError: ...`: definitions inside count.
                inner: list[ast.stmt] = []
                for part in ("body", "orelse", "finalbody"):
                    inner.extend(getattr(node, part, []) or [])
                for handler in getattr(node, "handlers", []) or []:
                    inner.extend(handler.body)
                visit(inner, prefix, in_class)

    visit(tree.body, "", False)
    return FileInfo(rel, module_name(rel), _imports(rel, tree)), symbols


def _own_text(lines: list[str], node: ast.AST, start: int, end: int) -> str:
    """A definition's source without the bodies of the definitions nested in it (indexed on their own)."""
    body = getattr(node, "body", [])
    nested = sorted((n.lineno, n.end_lineno or n.lineno) for n in _statements(body) if isinstance(n, _DEFS))
    drop: set[int] = set()
    for a, b in nested:
        drop.update(range(a + 1, b + 1))  # keep each nested def's first line: its name belongs here too
    return "\n".join(lines[i - 1] for i in range(start, min(end, len(lines)) + 1) if i not in drop)
