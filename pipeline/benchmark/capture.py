"""Run a crash reproduction script under the real sentry-sdk and write the event it sends.

    python -m pipeline.benchmark.capture --out EVENT.json --in-app PKG [--release R] [--server-name S]
        [--default-in-app] [--in-app-objects] SCRIPT

The SDK is configured as an application would configure it (local variables on, the package under
test in-app); its transport writes the event to a file instead of sending it. `--in-app-objects`
adds the opt-in integration of pipeline/sdk_objects.py, as an app that opted in would. Exit status: 0 when an
event was written, 3 when the script completed without raising.
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path
from typing import Any

import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from pipeline.sdk_objects import InAppObjectsIntegration


class FileTransport(Transport):
    """Writes each error event's JSON payload to `out` (the last one wins)."""

    def __init__(self, out: Path, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.out = out

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            if item.type == "event" and item.payload.json is not None:
                self.out.write_text(json.dumps(item.payload.json, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--in-app", action="append", default=[])
    parser.add_argument("--release", default="bench")
    parser.add_argument("--server-name", default=None)
    parser.add_argument("--default-in-app", action="store_true",
                        help="Leave in-app to the SDK's defaults (the working folder), as an app that sets nothing")
    parser.add_argument("--in-app-objects", action="store_true",
                        help="Add pipeline.sdk_objects.InAppObjectsIntegration (in-app objects sent rebuildable)")
    parser.add_argument("script", type=Path)
    args = parser.parse_args(argv)
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",  # never contacted: the transport writes a file
        transport=FileTransport(args.out),
        include_local_variables=True,
        in_app_include=[] if args.default_in_app else args.in_app,
        in_app_exclude=[] if args.default_in_app else ["__main__", "runpy"],
        default_integrations=False,
        integrations=[InAppObjectsIntegration()] if args.in_app_objects else [],
        release=args.release,
        server_name=args.server_name,
        environment="bench",
    )
    try:
        runpy.run_path(str(args.script), run_name="__main__")
    except Exception:  # noqa: BLE001 - whatever escapes is the event we came for
        sentry_sdk.capture_exception()
        sentry_sdk.flush()
        return 0 if args.out.exists() else 4
    return 3


if __name__ == "__main__":
    sys.exit(main())
