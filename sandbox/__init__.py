"""Sandboxes that run untrusted code (patches, tests) and the workspaces they run in.

Backends implement `pipeline.ports.Sandbox`: `docker` (a container per run, over the docker SDK),
`bwrap` (bubblewrap namespaces), `local` (no isolation, opt-in only); each is imported only when
built. Pick one with `make_sandbox(settings.sandbox)`; prove it isolates with `self_check`. A
`Workspace` is a repo at a commit plus a patch, as a git worktree (`open_workspace`, `commit_for_release`).
A repo's own environment (its declared dependencies and pytest, cached per key) is
`sandbox.env.ensure_env`.
"""

from sandbox.check import CheckResult, self_check
from sandbox.config import (
    BwrapConfig,
    DockerConfig,
    LocalConfig,
    SandboxConfig,
    build_sandbox,
    make_sandbox,
    parse_config,
)
from sandbox.workspace import Workspace, open_workspace

__all__ = [
    "BwrapConfig",
    "CheckResult",
    "DockerConfig",
    "LocalConfig",
    "SandboxConfig",
    "Workspace",
    "build_sandbox",
    "make_sandbox",
    "open_workspace",
    "parse_config",
    "self_check",
]
