"""Grouping on events recorded from real runs: the sentry-sdk capturing the grocer programs, and
the logs their workers write under logging, structlog and python-json-logger on hosts that install
the code under different prefixes (bench/grouping/make_set.py). The same crash groups together
across line numbers, releases, hosts, formats and the ids in its message, with and without
configured in-app packages; different crashes with the same message do not.

The committed files are checked first; the last tests run the real code again on fresh hosts.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pipeline.ingest import prepare
from pipeline.log_templates import Templates
from pipeline.records import ErrorEvent, Issue
from pipeline.source_lines import SourceLines
from pipeline.sources import load_path
from pipeline.sources.in_app import InAppRules

SET = Path(__file__).resolve().parents[1] / "bench" / "grouping"
EVENTS = SET / "events"
HOSTS = [f"host-{h}-worker.log" for h in "abcdefgh"]
CONFIGURATIONS = [pytest.param(InAppRules(), id="nothing-configured"),
                  pytest.param(InAppRules.of(["grocer", "shop"]), id="in_app_packages")]


class Grouper:
    """Groups events in the order given, as one `autofix ingest` run does."""

    def __init__(self, rules: InAppRules) -> None:
        self.rules, self.templates, self.lines = rules, Templates(), SourceLines()

    def issue(self, event: ErrorEvent) -> Issue:
        return prepare(event, self.rules, self.templates, self.lines)[1]

    def fingerprints(self, events: list[ErrorEvent]) -> list[str]:
        return [self.issue(e).fingerprint for e in events]


def sdk(name: str) -> ErrorEvent:
    [event] = load_path(EVENTS / f"{name}.json")
    return event


def host_event(host: str, index: int, events_dir: Path = EVENTS) -> ErrorEvent:
    return load_path(events_dir / host)[index]


def crash_frame_line(event: ErrorEvent) -> int | None:
    frame = event.crash_frame()
    return frame.lineno if frame else None


def innermost_path(event: ErrorEvent) -> str:
    assert event.primary is not None
    return event.primary.frames[-1].abs_path or ""


@pytest.mark.parametrize("rules", CONFIGURATIONS)
def test_one_crash_groups_across_line_numbers_releases_hosts_and_log_formats(rules: InAppRules) -> None:
    recorded = [sdk("grocer-checkout-1"), sdk("grocer-checkout-2"), sdk("grocer-checkout-shifted"),
                sdk("grocer-checkout-release-2"), sdk("grocer-checkout-sdk-defaults")]
    logged = [host_event(host, 0) for host in HOSTS]
    # The variants really differ: lines, releases and servers, install paths and formats.
    assert crash_frame_line(recorded[0]) != crash_frame_line(recorded[2])
    assert recorded[0].release != recorded[3].release and recorded[3].raw["server_name"] == "web-2"
    paths = {innermost_path(e).rsplit("/grocer/", 1)[0] for e in logged}
    assert len(paths) == len(HOSTS)
    assert any("site-packages" in p for p in paths) and any("/srv/" in p for p in paths)
    assert {e.raw["text"][:1] for e in logged} == {"T", "{"}  # text tracebacks and JSON lines

    grouper = Grouper(rules)
    assert len(set(grouper.fingerprints(recorded + logged))) == 1


@pytest.mark.parametrize("rules", CONFIGURATIONS)
def test_the_ids_in_a_message_do_not_split_its_group(rules: InAppRules) -> None:
    grouper = Grouper(rules)
    accounts = [sdk(f"grocer-account-{i}") for i in range(1, 5)]
    assert len({e.primary.value for e in accounts}) == 4  # type: ignore[union-attr]
    assert len(set(grouper.fingerprints(accounts))) == 1
    payments = [sdk(f"grocer-message-payment-{i}") for i in range(1, 5)] + [host_event(h, 4) for h in HOSTS]
    assert len({e.message for e in payments}) == len(payments)
    assert len(set(grouper.fingerprints(payments))) == 1
    stock = [sdk(f"grocer-logged-stock-{i}") for i in range(1, 4)] + [host_event(h, 3) for h in HOSTS]
    assert stock[0].message_template and not stock[-1].message_template
    assert len(set(grouper.fingerprints(stock))) == 1


@pytest.mark.parametrize("rules", CONFIGURATIONS)
def test_different_crashes_with_the_same_message_do_not_group(rules: InAppRules) -> None:
    grouper = Grouper(rules)
    quantity = [sdk("grocer-import-quantity-1"), host_event("host-a-worker.log", 2), host_event("host-e-worker.log", 2)]
    discount = [sdk("grocer-import-discount-1"), host_event("host-a-worker.log", 5), host_event("host-e-worker.log", 5)]
    assert {e.primary.value for e in quantity + discount} == {"invalid value"}  # type: ignore[union-attr]
    q, d = set(grouper.fingerprints(quantity)), set(grouper.fingerprints(discount))
    assert len(q) == len(d) == 1 and q != d
    assert len({grouper.issue(e).cluster_id for e in quantity + discount}) == 2
    pickup, country = grouper.issue(sdk("grocer-shipping-pickup-1")), grouper.issue(sdk("grocer-shipping-country-1"))
    assert pickup.fingerprint != country.fingerprint and pickup.cluster_id != country.cluster_id
    low, high = grouper.issue(sdk("grocer-message-stock-low-1")), grouper.issue(sdk("grocer-message-stock-high-1"))
    assert low.fingerprint != high.fingerprint


@pytest.mark.parametrize("rules", CONFIGURATIONS)
def test_two_call_paths_to_one_crash_site_are_two_issues_of_one_cluster(rules: InAppRules) -> None:
    grouper = Grouper(rules)
    checkout = [grouper.issue(e) for e in (sdk("grocer-checkout-1"), host_event("host-c-worker.log", 0))]
    labels = [grouper.issue(e) for e in (sdk("grocer-shelf-labels-1"), host_event("host-c-worker.log", 1))]
    assert len({i.fingerprint for i in checkout}) == len({i.fingerprint for i in labels}) == 1
    assert checkout[0].fingerprint != labels[0].fingerprint
    assert len({i.cluster_id for i in checkout + labels}) == 1


def test_a_log_traceback_joins_the_sentry_event_of_its_crash_and_its_chained_cousin_joins_the_cluster() -> None:
    grouper = Grouper(InAppRules())
    summary, digest = load_path(EVENTS / "example-app.log")
    assert grouper.issue(summary).fingerprint == grouper.issue(sdk("example-4-summary-of-empty-draft")).fingerprint
    profile = grouper.issue(sdk("example-3-profile-without-nickname"))
    wrapped = grouper.issue(digest)
    assert wrapped.fingerprint != profile.fingerprint and wrapped.cluster_id == profile.cluster_id


# --- the real code, run again ------------------------------------------------------------------------


def _make_set() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_set", SET / "make_set.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_set"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fresh_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Two hosts per format, one from a checkout and one from a virtualenv grocer is pip-installed
    into, plus the sentry-sdk capturing the same crash, written now."""
    make_set = _make_set()
    root = tmp_path_factory.mktemp("hosts")
    out = root / "events"
    out.mkdir()
    hosts = {"host-a": "plain", "host-c": "plain", "host-d": "structlog", "host-e": "structlog",
             "host-f": "json-logger", "host-g": "structlog-dict", "host-h": "structlog-dict"}
    for host in hosts:
        make_set.write_host_log(host, root / "installs", out)
    capture = ("checkout-now", "zero-bundle-at-checkout", "checkout", make_set._CART_1)
    make_set.capture_program(capture, make_set.PROGRAMS, out)
    return out, hosts


@pytest.mark.parametrize("rules", CONFIGURATIONS)
def test_freshly_written_logs_group_with_a_fresh_sentry_event(fresh_logs: tuple[Path, dict[str, str]],
                                                            rules: InAppRules) -> None:
    out, hosts = fresh_logs
    grouper = Grouper(rules)
    event = load_path(out / "checkout-now.json")[0]
    crashes = [host_event(f"{host}-worker.log", 0, out) for host in hosts]
    venv_paths = [innermost_path(e) for e in crashes if "/venv/" in innermost_path(e)]
    assert len(venv_paths) == 4 and all("site-packages/grocer/" in p for p in venv_paths)
    assert len(set(grouper.fingerprints([event, *crashes]))) == 1
    imports = [host_event(f"{host}-worker.log", 2, out) for host in hosts]
    discounts = [host_event(f"{host}-worker.log", 5, out) for host in hosts]
    assert len(set(grouper.fingerprints(imports))) == 1
    assert set(grouper.fingerprints(imports)).isdisjoint(grouper.fingerprints(discounts))


def test_the_virtualenv_host_runs_the_virtualenvs_own_python(fresh_logs: tuple[Path, dict[str, str]]) -> None:
    out, _ = fresh_logs
    record = json.loads((out / "host-e-worker.log").read_text().splitlines()[1])
    assert "/opt/grocer-e/venv/lib/python" in record["exception"]
