"""Mark a log traceback's frames as the application's own code, from the configured packages.

Sentry SDKs decide in-app themselves; a log file only has paths. Without a package list the log
parser guesses (everything outside site-packages), which counts entry-point scripts as app code and
a virtualenv install as library code, and so splits one crash into several issues.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import PurePosixPath

from pipeline.records import ErrorEvent, Frame


def frame_in_app(frame: Frame, packages: Collection[str]) -> bool:
    if frame.module and frame.module.split(".", 1)[0] in packages:
        return True
    folders = PurePosixPath(frame.filename.replace("\\", "/")).parts[:-1]
    return any(folder in packages for folder in folders)


def mark_in_app(event: ErrorEvent, packages: Collection[str]) -> ErrorEvent:
    """The event with its log frames re-marked; SDK events and an empty list leave it unchanged."""
    if not packages or event.source != "log":
        return event
    exceptions = tuple(
        replace(exc, frames=tuple(replace(f, in_app=frame_in_app(f, packages)) for f in exc.frames))
        for exc in event.exceptions
    )
    return replace(event, exceptions=exceptions)
