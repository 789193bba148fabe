"""Wheels of autofix's own installed pure-Python distributions (pytest and what it needs, pip).

Every repo environment gets the pytest autofix itself runs with, so reproductions behave the same
whatever the repo declares. Rather than asking a package index for the exact version again, the
installed distribution is packed back into a wheel: its files are listed in its RECORD, its
dist-info carries METADATA and WHEEL. This needs no network and gives exactly the installed version.
Only pure-Python distributions (WHEEL says `Root-Is-Purelib: true`) are packed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path, PurePosixPath

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pipeline.errors import ConfigError

# Written by the installer, not part of a wheel.
_INSTALLER_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


def closure(names: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions `names` need, themselves included, in a stable order."""
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env["extra"] = ""  # extras of a distribution itself ("extra == 'dev'") are never wanted here
    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise ConfigError(f"{name} is not installed beside autofix; reinstall autofix") from exc
        seen[name] = dist
        for line in dist.requires or ():
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate(env):
                todo.append(req.name)
    return [seen[k] for k in sorted(seen)]


def wheel_name(dist: metadata.Distribution) -> str:
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    return f"{name}-{dist.version}-py3-none-any.whl"


def pack(dist: metadata.Distribution, dest: Path) -> Path:
    """Write `dist` as a wheel into folder `dest`; returns the wheel's path."""
    files = [f for f in dist.files or () if _belongs(f)]
    info = next((f.parts[0] for f in files if f.parts[0].endswith(".dist-info")), None)
    if info is None:
        raise ConfigError(f"{dist.metadata['Name']} has no dist-info among its files")
    wheel_meta = (dist.read_text("WHEEL") or "").lower()
    if "root-is-purelib: true" not in wheel_meta:
        raise ConfigError(f"{dist.metadata['Name']} is not pure Python; it cannot be packed again")
    target = dest / wheel_name(dist)
    partial = target.with_suffix(".part")
    record: list[str] = []
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel in sorted(files, key=str):
            data = Path(str(dist.locate_file(rel))).read_bytes()
            arcname = PurePosixPath(*rel.parts).as_posix()
            zf.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{arcname},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    partial.replace(target)
    return target


def _belongs(path: metadata.PackagePath) -> bool:
    parts = path.parts
    if not parts or ".." in parts or "__pycache__" in parts or path.suffix == ".pyc":
        return False  # console scripts outside site-packages are made again by the installer
    return not (parts[0].endswith(".dist-info") and parts[-1] in _INSTALLER_FILES)


def pack_all(names: Iterable[str], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    return [pack(dist, dest) for dist in closure(names)]
