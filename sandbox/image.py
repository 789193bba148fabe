"""The docker backend's image: its recipe (deploy/sandbox/), the recipe's hash, finding and building it.

The image is a Debian root filesystem made by debootstrap and imported into the engine as one layer,
tagged `<name>:<hash>` and labelled with the hash, so a recipe is built once per engine and found
again by its label whatever name the engine gave it (Podman prefixes short names). Images are never
pulled. Building needs root and debootstrap (and the Debian mirror); finding needs neither.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline import bundled
from pipeline.errors import ConfigError, SandboxUnavailable

if TYPE_CHECKING:
    from docker import DockerClient

log = structlog.get_logger(__name__)

RECIPE_LABEL = "org.autofix.sandbox.recipe"
_STEP_TIMEOUT_S = 1800.0


def default_recipe_dir() -> Path:
    """deploy/sandbox/ of the checkout this module runs from, else the copy an installed wheel carries
    (the same files, so the same hash finds the same image)."""
    try:
        return bundled.folder("sandbox")
    except ConfigError:
        return bundled.candidates("sandbox")[0]  # load_recipe names it as missing


class Recipe(BaseModel):
    """recipe.toml, plus where it was read from and the hash of its folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    suite: str
    variant: str
    mirror: str
    packages: tuple[str, ...]
    python: str
    user: str
    uid: int
    gid: int
    folder: Path
    digest: str

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.digest[:12]}"


def load_recipe(folder: Path | None = None) -> Recipe:
    folder = (folder or default_recipe_dir()).resolve()
    path = folder / "recipe.toml"
    try:
        data = tomllib.loads(path.read_text())
        return Recipe(**data, folder=folder, digest=recipe_digest(folder))
    except FileNotFoundError as exc:
        raise SandboxUnavailable(
            f"no sandbox image recipe at {path}: set AUTOFIX_SANDBOX_IMAGE to an image the engine has, "
            "or run from a checkout that has deploy/sandbox/ (or pass --recipe DIR)"
        ) from exc
    except (tomllib.TOMLDecodeError, ValidationError, TypeError) as exc:
        raise SandboxUnavailable(f"the sandbox image recipe {path} is invalid: {exc}") from exc


def recipe_digest(folder: Path) -> str:
    """sha256 over every file of the recipe folder but its documentation, names included."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".md"):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class ImageRef:
    id: str
    tag: str
    digest: str
    built: bool = False
    seconds: float = 0.0


def find_image(client: DockerClient, recipe: Recipe) -> ImageRef | None:
    """The image this recipe built on this engine, if any."""
    images = client.images.list(filters={"label": f"{RECIPE_LABEL}={recipe.digest}"})
    if not images:
        return None
    return ImageRef(id=str(images[0].id), tag=recipe.tag, digest=recipe.digest)


def ensure_image(client: DockerClient, recipe: Recipe, rebuild: bool = False) -> ImageRef:
    """Find the recipe's image, or build it when there is none (or when asked to).

    Builders on one host take turns (a lock file per recipe): two fix workers, or two test workers,
    starting together on a fresh engine build the image once, and the second finds it."""
    found = None if rebuild else find_image(client, recipe)
    if found is not None:
        log.info("sandbox_image.found", tag=found.tag, id=found.id[:19])
        return found
    lock = Path(tempfile.gettempdir()) / f"autofix-sandbox-image-{recipe.digest[:12]}.lock"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file is closed
        found = None if rebuild else find_image(client, recipe)
        if found is not None:
            log.info("sandbox_image.found", tag=found.tag, id=found.id[:19], after="another builder")
            return found
        return build_image(client, recipe)


def build_image(client: DockerClient, recipe: Recipe) -> ImageRef:
    """debootstrap the recipe's rootfs, finish it, import it as one layer, tag and label it."""
    if os.geteuid() != 0:
        raise SandboxUnavailable("building the sandbox image runs debootstrap, which needs root")
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise SandboxUnavailable("debootstrap is not installed; apt-get install debootstrap")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autofix-rootfs-") as tmp:
        rootfs, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        _step("debootstrap", [debootstrap, f"--variant={recipe.variant}",
                              f"--include={','.join(recipe.packages)}", recipe.suite, str(rootfs), recipe.mirror])
        _step("finish", ["sh", str(recipe.folder / "finish-rootfs.sh"), str(rootfs), recipe.user,
                         str(recipe.uid), str(recipe.gid)])
        _step("tar", ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."])
        step_started = time.monotonic()
        repository, tag = recipe.tag.split(":")
        client.api.import_image(src=str(tarball), repository=repository, tag=tag, changes=_changes(recipe))
        log.info("sandbox_image.step_finished", step="import", seconds=round(time.monotonic() - step_started, 1))
    imported = find_image(client, recipe)
    if imported is None:
        raise SandboxUnavailable(f"the engine accepted the import of {recipe.tag} but does not list it")
    # Podman's import ignores the tag it is given; tagging afterwards names it the same on both engines.
    client.api.tag(imported.id, repository, tag)
    seconds = round(time.monotonic() - started, 1)
    log.info("sandbox_image.built", tag=recipe.tag, id=imported.id[:19], seconds=seconds)
    return ImageRef(id=imported.id, tag=recipe.tag, digest=recipe.digest, built=True, seconds=seconds)


def _changes(recipe: Recipe) -> list[str]:
    return [
        f"USER {recipe.uid}:{recipe.gid}",
        "WORKDIR /tmp",
        "ENV LANG=C.UTF-8",
        "ENV PATH=/usr/local/bin:/usr/bin:/bin",
        f"LABEL {RECIPE_LABEL}={recipe.digest}",
        f'CMD ["{recipe.python}"]',
    ]


def _step(name: str, argv: list[str]) -> None:
    started = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_STEP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"building the sandbox image failed at {name}: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-2000:]
        raise SandboxUnavailable(f"building the sandbox image failed at {name} (exit {done.returncode}): {tail}")
    log.info("sandbox_image.step_finished", step=name, seconds=round(time.monotonic() - started, 1))
