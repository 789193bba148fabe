"""Sandboxes that run untrusted code (patches, tests) and the workspaces they run in.

Backends implement `pipeline.ports.Sandbox`: `bwrap` (bubblewrap namespaces), `local` (no isolation,
opt-in only), and room for `docker`. Pick one with `make_sandbox(settings.sandbox)`; prove it isolates
with `self_check`. A `Workspace` is a repo at a commit plus a patch, as a git worktree.
"""

from sandbox.config import BwrapConfig, LocalConfig, SandboxConfig, build_sandbox, make_sandbox

__all__ = ["BwrapConfig", "LocalConfig", "SandboxConfig", "build_sandbox", "make_sandbox"]
