"""Records the crashes of replayapp/ (and of tinyfmt_app/, which needs a third-party package) with the
real sentry-sdk, as the replay and environment tests read them.

Run from the repo root:  .venv/bin/python tests/data/make_replay_fixtures.py [NAME ...]
(names: only those scenarios are recorded again; the other files stay as they are)
Each scenario calls an entry point of the app the way a server would and reports what escapes with
sentry_sdk.capture_exception; a Transport writes the event to replay_events/<name>.json instead of
sending it. The app folder goes first on sys.path and is the project root, so frames name their
files as the app's repo does (`replayapp/stats.py`) and only the app's frames are in-app.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

HERE = Path(__file__).resolve().parent
APP = HERE / "replayapp"
TINY_APP = HERE / "tinyfmt_app"
OUT = HERE / "replay_events"
sys.path[:0] = [str(APP), str(TINY_APP), str(HERE / "tinyfmt_src")]

from replayapp import basket, codes, greeting, meter, notify, ratio, split, stats, trimmed
from tinyapp import labels


class FileTransport(Transport):
    """Writes each event to OUT under the name of the scenario being run."""

    current = "unnamed"

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            (OUT / f"{self.current}.json").write_text(json.dumps(event, indent=1, sort_keys=True) + "\n")


SCENARIOS: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
    ("stats-summary-of-no-ratings", stats.summary, ([],)),
    ("greeting-of-no-name", greeting.greet, (None,)),
    ("notify-scrubbed-email", notify.notify_all, ()),
    ("trimmed-fifteen-readings", trimmed.fifteen_readings, ()),
    ("ratio-reassigned-divisor", ratio.unit_ratio, ()),
    ("split-normalised-guests", split.split_bill, (90, "0")),
    ("basket-receiver-dataclass", basket.empty_basket_share, (5.0,)),
    ("meter-receiver-plain-object", meter.check, ([],)),
    ("tinyapp-label-of-zero", labels.share_label, (0,)),
    ("codes-unknown-currency", codes.same_currency, ("eur", "btc")),
]


def main() -> None:
    OUT.mkdir(exist_ok=True)
    transport = FileTransport()
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",  # never contacted: the transport writes files
        transport=transport,
        include_local_variables=True,
        release="replayapp@1.0.0",
        environment="test",
        in_app_include=["replayapp", "tinyapp"],
        in_app_exclude=["__main__"],
        default_integrations=False,
    )
    only = set(sys.argv[1:])
    for name, entry, args in SCENARIOS:
        if only and name not in only:
            continue
        transport.current = name
        try:
            entry(*args)
        except Exception as exc:  # noqa: BLE001 - whatever escapes is the event we record
            sentry_sdk.capture_exception(exc)
            sentry_sdk.flush()
        else:
            raise SystemExit(f"scenario {name} did not crash")
    sentry_sdk.get_client().close()


if __name__ == "__main__":
    main()
