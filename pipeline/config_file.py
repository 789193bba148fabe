"""Reading autofix.toml strictly: where it is, what is in it, and what is wrong with it, in one line.

The file is found the way git finds its repository: `AUTOFIX_CONFIG` when set, else the nearest
`autofix.toml` in the current folder or one of its parents. Its keys are checked against the
Settings model itself, walked through the field annotations (nested models, lists and dicts of
models), so adding a field to Settings or to any model it holds is all it takes for the file to
accept that key; an unknown key is refused with the closest valid one. Relative paths in the file
(any field typed `Path`) are relative to the file's folder, not to wherever autofix runs.

Errors are ConfigError with one line each: `FILE:LINE:COLUMN: message` for TOML syntax,
`FILE:LINE: unknown key ...` for keys, and `SOURCE: field: message` for values pydantic refuses,
where SOURCE is the file or the environment variable the value came from.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePath
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr, ValidationError

from pipeline.errors import ConfigError

CONFIG_NAME = "autofix.toml"
STATE_DIR_NAME = ".autofix"
ENV_PREFIX = "AUTOFIX_"


# --- where ---------------------------------------------------------------------------------------


def find_config(environ: Mapping[str, str], cwd: Path) -> Path | None:
    """`AUTOFIX_CONFIG` (which must be a file), else the nearest autofix.toml from cwd upwards."""
    explicit = environ.get("AUTOFIX_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"AUTOFIX_CONFIG names {path}, which is not a file")
        return path
    for folder in (cwd, *cwd.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def default_home(config: Path | None) -> Path:
    """The state folder when AUTOFIX_HOME is not set: beside the config file, else ./.autofix."""
    return config.resolve().parent / STATE_DIR_NAME if config is not None else Path(STATE_DIR_NAME)


# --- what ----------------------------------------------------------------------------------------


def load(path: Path, model: type[BaseModel]) -> dict[str, Any]:
    """The file's table, checked against `model` and with relative paths made absolute."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(syntax_message(path, exc)) from None
    problems = list(_unknown_keys(data, model, (), text.splitlines()))
    if problems:
        raise ConfigError("; ".join(f"{path}:{line}: {what}" if line else f"{path}: {what}"
                                    for line, what in problems))
    resolved = _resolve_paths(data, model, path.resolve().parent)
    assert isinstance(resolved, dict)
    return resolved


def syntax_message(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    """`FILE:LINE:COLUMN: what` from tomllib's "what (at line L, column C)"."""
    found = re.match(r"^(?P<what>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", str(exc))
    if found is None:
        return f"{path}: {exc}"
    return f"{path}:{found['line']}:{found['col']}: {found['what']}"


# --- the model, walked through its annotations ------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _alternatives(annotation: Any) -> list[Any]:
    """The members of a union (X | None counts), else the annotation alone."""
    annotation = _unwrap(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [_unwrap(a) for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [a for a in _alternatives(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]


def _items(annotation: Any) -> tuple[str, Any] | None:
    """("seq", item type) for list/tuple/set, ("map", value type) for dict, else None."""
    for alt in _alternatives(annotation):
        origin, args = get_origin(alt), get_args(alt)
        if origin in (list, tuple, set, frozenset) and args:
            return "seq", args[0]
        if origin is dict and len(args) == 2:
            return "map", args[1]
    return None


def _is_path(annotation: Any) -> bool:
    return any(isinstance(a, type) and issubclass(a, PurePath) for a in _alternatives(annotation))


def _fields(models: list[type[BaseModel]]) -> dict[str, Any]:
    """Every key the models accept (field names and string aliases) -> the field's annotation."""
    accepted: dict[str, Any] = {}
    for model in models:
        for name, info in model.model_fields.items():
            accepted[name] = info.annotation
            if isinstance(info.alias, str):
                accepted[info.alias] = info.annotation
    return accepted


Where = tuple[str | int, ...]


def _unknown_keys(data: Any, annotation: Any, where: Where, lines: list[str]) -> Iterator[tuple[int | None, str]]:
    """(line, message) for every key the annotation's models do not have, at any depth."""
    models = _models(annotation)
    if models and isinstance(data, dict):
        accepted = _fields(models)
        for key, value in data.items():
            if key in accepted:
                yield from _unknown_keys(value, accepted[key], (*where, key), lines)
            else:
                yield _unknown_key_message(key, value, where, sorted(accepted), lines)
        return
    items = _items(annotation)
    if items is None:
        return
    kind, inner = items
    if kind == "seq" and isinstance(data, list):
        for index, item in enumerate(data):
            yield from _unknown_keys(item, inner, (*where, index), lines)
    elif kind == "map" and isinstance(data, dict):
        for key, value in data.items():
            yield from _unknown_keys(value, inner, (*where, key), lines)


def _unknown_key_message(key: str, value: Any, where: Where, accepted: list[str],
                         lines: list[str]) -> tuple[int | None, str]:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        kind, shown, hint = "section", f"[[{_dotted((*where, key))}]]", "[[{}]]"
    elif isinstance(value, dict):
        kind, shown, hint = "section", f"[{_dotted((*where, key))}]", "[{}]"
    else:
        kind, shown, hint = "key", f'"{key}"', '"{}"'
    table = _dotted(where)
    inside = f" in [{table}]" if table else ""
    close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
    if close:
        suggestion = "did you mean " + hint.format(_dotted((*where, close[0])) if kind == "section" else close[0]) + "?"
    else:
        suggestion = "valid keys here: " + ", ".join(accepted)
    return _line_of(key, where, lines), f"unknown {kind} {shown}{inside}; {suggestion}"


def _dotted(where: Where) -> str:
    parts: list[str] = []
    for part in where:
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
        else:
            parts.append(part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"')
    return ".".join(parts)


def _line_of(key: str, where: Where, lines: list[str]) -> int | None:
    """Best effort: the line that writes `key`, searched from its table's header on."""
    tables = [p for p in where if isinstance(p, str)]
    start = 0
    if tables:
        header = re.compile(r"^\s*\[\[?\s*" + r"\s*\.\s*".join(re.escape(t) for t in tables) + r"\s*\]\]?\s*(#.*)?$")
        nth = next((p for p in reversed(where) if isinstance(p, int)), 0)
        hits = [i for i, text in enumerate(lines) if header.match(text)]
        if len(hits) > nth:
            start = hits[nth]
    own_key = re.compile(r'^\s*"?' + re.escape(key) + r'"?\s*=')
    own_header = re.compile(r"^\s*\[\[?\s*(.+\.)?\s*" + re.escape(key) + r"\s*\]\]?")
    for index in range(start, len(lines)):
        if own_key.match(lines[index]) or own_header.match(lines[index]):
            return index + 1
    return None


def _resolve_paths(data: Any, annotation: Any, base: Path) -> Any:
    if _is_path(annotation) and isinstance(data, str):
        path = Path(data).expanduser()
        return str(path if path.is_absolute() else base / path)
    models = _models(annotation)
    if models and isinstance(data, dict):
        accepted = _fields(models)
        return {k: _resolve_paths(v, accepted[k], base) if k in accepted else v for k, v in data.items()}
    items = _items(annotation)
    if items is not None:
        kind, inner = items
        if kind == "seq" and isinstance(data, list):
            return [_resolve_paths(v, inner, base) for v in data]
        if kind == "map" and isinstance(data, dict):
            return {k: _resolve_paths(v, inner, base) for k, v in data.items()}
    return data


# --- values pydantic refused ------------------------------------------------------------------------


def describe(exc: ValidationError, model: type[BaseModel], config: Path | None, file_keys: set[str],
             environ: Mapping[str, str]) -> str:
    """One line naming, for each refused value, where it came from and what is wrong with it."""
    accepted = _fields([model])
    prefix = str(model.model_config.get("env_prefix", ENV_PREFIX))
    lines = config.read_text(encoding="utf-8").splitlines() if config is not None else []
    parts = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        top = str(loc[0]) if loc else ""
        env_name = prefix + top.upper()
        if env_name in environ and top in accepted:
            source, field = env_name, _dotted(loc[1:])
        elif top in file_keys and config is not None:
            keys = [p for p in loc if isinstance(p, str)]
            line = _line_of(keys[-1], loc[:loc.index(keys[-1])], lines) if keys else None
            source, field = f"{config}:{line}" if line else str(config), _dotted(loc)
        else:
            source, field = "", _dotted(loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        shown = _shown_input(error.get("input"), accepted.get(top))
        text = ": ".join(p for p in (source, field, message) if p)
        parts.append(text + (f" (got {shown})" if shown and str(error.get("input")) not in message else ""))
    return "; ".join(parts)


def _shown_input(value: Any, annotation: Any) -> str | None:
    secret = annotation is not None and any(a is SecretStr for a in _alternatives(annotation))
    if secret or isinstance(value, dict | list) or value is None:
        return None
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- value checks shared by the settings models --------------------------------------------------------


def http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL such as https://host/path")
    return value


def redis_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "redis+socket", "sentinel") or not (parts.netloc or parts.path):
        raise ValueError(f"{value!r} is not a Redis URL such as redis://127.0.0.1:6379/0")
    return value


def store_url(value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(value).get_backend_name()
    except ArgumentError:
        raise ValueError(
            f"{value!r} is not a SQLAlchemy URL such as postgresql+psycopg://user@host/db or sqlite:////path/autofix.db"
        ) from None
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"the store must be SQLite or PostgreSQL, not {backend!r}")
    return value


def existing_dir(value: Path) -> Path:
    path = value.expanduser()
    if not path.is_dir():
        raise ValueError(f"no such folder: {path}" if not path.exists() else f"not a folder: {path}")
    return path


# --- showing the effective configuration -------------------------------------------------------------


MASK = "********"


def masked(value: Any) -> Any:
    """Plain data for display: secrets replaced by a mask, passwords in URLs too."""
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, BaseModel):
        return {name: masked(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, str) and "://" in value:
        return _url_without_password(value)
    return value


def _url_without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:{MASK}@{netloc[1]}").geturl()
