"""The example shop's crash scenarios (examples/record_events.py) under the real sentry-sdk,
sending over HTTP to the DSN given instead of writing files.

    python tests/data/sdk_shop.py DSN
"""

from __future__ import annotations

import sys
from pathlib import Path

import sentry_sdk

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

import record_events  # noqa: E402 - after the examples folder is on the path
from shop import __version__  # noqa: E402 - record_events puts the service on the path


def main() -> None:
    sentry_sdk.init(
        dsn=sys.argv[1], include_local_variables=True, release=f"shop@{__version__}", environment="production",
        server_name="shop-web-1", in_app_include=["shop"], in_app_exclude=["__main__", "record_events"],
        project_root=str(record_events.SERVICE), default_integrations=False,
    )
    for name, route, handler, request, _expected in record_events.SCENARIOS:
        if record_events.serve(route, handler, request)["status"] != 500:
            raise SystemExit(f"scenario {name} did not crash")
    sentry_sdk.flush(timeout=10)


if __name__ == "__main__":
    main()
