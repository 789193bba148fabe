"""Where the examples/, bench/ and deploy/sandbox/ folders are, from a checkout or an installed wheel.

In a checkout (an editable install included) they sit beside the `pipeline` package. A wheel
carries a copy of each inside the package, under `pipeline/_bundled/` (setup.py puts them there at
build time), so `autofix demo`, `autofix bench` and the docker sandbox (which finds its image by the
recipe's hash) work after `pip install .` or `pipx install .` from any folder, the deployment's
image included. The current folder plays no part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pipeline.errors import ConfigError

Name = Literal["examples", "bench", "sandbox"]
_PACKAGE = Path(__file__).resolve().parent
# Where each folder is in a checkout (setup.py's BUNDLED says the same).
CHECKOUT_PATHS: dict[Name, str] = {"examples": "examples", "bench": "bench", "sandbox": "deploy/sandbox"}
# What each folder must hold to be the real one (a stray folder of the same name is not).
_MARKERS: dict[Name, tuple[str, ...]] = {"examples": ("service", "events"), "bench": ("crashes", "check_corpus.py"),
                                         "sandbox": ("recipe.toml", "finish-rootfs.sh")}


def candidates(name: Name) -> list[Path]:
    return [_PACKAGE.parent / CHECKOUT_PATHS[name], _PACKAGE / "_bundled" / name]


def folder(name: Name) -> Path:
    """The checkout's folder, else the installed copy; ConfigError when neither is there."""
    for path in candidates(name):
        if all((path / marker).exists() for marker in _MARKERS[name]):
            return path
    tried = ", ".join(str(p) for p in candidates(name))
    raise ConfigError(f"{name}/ not found (looked in {tried}); reinstall autofix, or pass its folder explicitly")
