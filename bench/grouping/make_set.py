"""(Re)build the grouping benchmark's labelled set: bench/grouping/events/ and labels.json.

    .venv/bin/python bench/grouping/make_set.py

Every event is real: recorded by the real sentry-sdk, or written by the stdlib logging module,
structlog or python-json-logger while real code crashed. Three sources:

* the example service's recorded events and log (examples/events, examples/logs/app.log);
* the grocer programs beside this script (programs/), run under pipeline.benchmark.capture to make
  the variants that test grouping: one crash reached through two call paths, one crash with ids in
  its message, one crash after an edit shifted its lines, one message raised from two crash sites,
  message-only events with varying ids, releases and server names, and the logs of worker hosts
  that install the code under different prefixes (a checkout, a release folder, a real virtualenv
  the package is pip-installed into) and log in different formats (logging's text lines,
  structlog's JSON with the traceback as text or as dicts, python-json-logger);
* crash cases of bench/crashes, their repro.py run under the capture module as the bench runner
  does (some also at a second buggy release of the package).

labels.json maps each event file to its true group (a log file to one label per event, in file
order), says per group why its events are one bug, and names the root-cause clusters that join
groups (one crash site reached through two call paths; a wrapped exception and its cause). The rule a triager would apply: one
bug is one crash site reached through one call path in the application's own code; entry points
outside it (the script, the worker loop, the web framework) and the values in the message do not
make a different bug.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.benchmark import runner
from pipeline.sources import load_path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EVENTS = HERE / "events"
PROGRAMS = HERE / "programs"
EXAMPLES = REPO / "examples"
CRASHES = REPO / "bench" / "crashes"
TIMEOUT_S = 120

GROUPS: dict[str, str] = {
    # examples/
    "coupon-none-at-checkout": "Examples 1 and 2: billing.coupon_code calls .strip() on a missing or null "
    "coupon; two customers, one bug.",
    "profile-without-nickname": "Example 3: users.display_name indexes profile['nickname'] for a profile "
    "imported without one, reached from the profile API.",
    "empty-draft-average": "Example 4 and the first traceback of examples' app.log: orders.average_item_price "
    "divides by zero units for an empty draft, through api.get_order_summary. The log comes from the "
    "recorder's logging wrapper instead of the Sentry one: the entry point is not the bug.",
    "gift-card-shipping": "Example 5: orders.shipping_country subscripts a null shipping address.",
    "digest-missing-nickname": "The chained traceback of app.log: the weekly digest job wraps the missing "
    "nickname KeyError in DigestError. Same root cause as example 3 but another call path (jobs, not "
    "the API) and another escaping exception, so Sentry and autofix keep it apart.",
    # programs/
    "zero-bundle-at-checkout": "pricing.unit_price divides by bundle_size 0, reached from cart.checkout -> "
    "cart_total; different carts and customers, a copy of the code with lines shifted by an edit above "
    "the crash, another release and server, and the worker logs of eight hosts whatever their install "
    "prefix and log format.",
    "zero-bundle-in-shelf-labels": "The same division in pricing.unit_price reached from "
    "reports.shelf_labels: another call path, so another group (Sentry's rule, which autofix follows).",
    "account-not-found": "accounts.load_account raises AccountNotFound for an unknown id; the message "
    "carries the uuid, the e-mail and the shard number, which vary per event.",
    "invalid-bundle-size": "imports.parse_quantity raises ValueError('invalid value') for a non-numeric "
    "bundle size.",
    "invalid-discount": "imports.parse_discount raises the same ValueError('invalid value') for a discount "
    "without '%': same message as invalid-bundle-size, another crash site.",
    "pickup-order-without-address": "shipping.shipping_label reads order['address'] of a pickup order, which "
    "has none (KeyError 'address').",
    "unknown-country-code": "shipping.shipping_label looks up a country code missing from COUNTRY_NAMES "
    "(KeyError 'XK', 'IS'): another line of the same function, another bug.",
    "payment-retry-exhausted": "capture_message, no stack: 'payment retry budget exhausted for order ...'; "
    "order ids, attempt counts, e-mails and request uuids vary; the hosts' workers log the same line "
    "(payments.settle) as an error without a traceback.",
    "stock-reservation-timeout": "A logging.error sent by the SDK's EventHandler, no stack: the template "
    "'stock reservation for %s timed out after %dms' with different skus and durations; the hosts' "
    "workers log the same call (stock.reserve) as a formatted error line.",
    "stock-low": "capture_message, no stack: 'stock for <sku> below reorder level' - a different message "
    "from the same code area as stock-reservation-timeout.",
    "stock-high": "capture_message, no stack: 'stock for <sku> above reorder level (40 > 24)' - a near miss "
    "of stock-low (two words differ, the same length), another condition.",
}

Capture = tuple[str, str, str, Any]  # file stem, label, scenario, its JSON input


def _line(sku: str, price: float, size: int, units: int = 1) -> dict[str, Any]:
    return {"sku": sku, "bundle_price": price, "bundle_size": size, "units": units}


_CART_1 = {"id": "c-1001", "customer": "u-17", "lines": [_line("EGG-6", 3.0, 6), _line("BANANA", 0.25, 0, 5)]}
_CART_2 = {"id": "c-1002", "customer": "u-204", "lines": [_line("LEEK", 0.9, 0, 2)]}
_CART_3 = {"id": "c-20480", "customer": "u-9", "lines": [_line("MILK-1L", 1.1, 1), _line("LIME", 0.3, 0, 12)]}
_CATALOG_1 = [_line("EGG-6", 3.0, 6), _line("BANANA", 0.25, 0)]
_CATALOG_2 = [_line("WATER-24", 7.2, 24), _line("LIME", 0.3, 0)]
_ROW = {"sku": "OAT-500", "bundle_size": "6", "discount": "5%"}


def _logged(sku: str, ms: int) -> dict[str, Any]:
    return {
        "logger": "grocer.stock",
        "template": "stock reservation for %s timed out after %dms",
        "args": [sku, ms],
    }


def _payment(order: str, attempts: int, email: str, request: str) -> dict[str, Any]:
    text = f"payment retry budget exhausted for order {order} after {attempts} attempts (customer {email}, request {request})"
    return {"text": text}


PROGRAM_CAPTURES: list[Capture] = [
    ("grocer-checkout-1", "zero-bundle-at-checkout", "checkout", _CART_1),
    ("grocer-checkout-2", "zero-bundle-at-checkout", "checkout", _CART_2),
    ("grocer-checkout-3", "zero-bundle-at-checkout", "checkout", _CART_3),
    ("grocer-shelf-labels-1", "zero-bundle-in-shelf-labels", "shelf-labels", _CATALOG_1),
    ("grocer-shelf-labels-2", "zero-bundle-in-shelf-labels", "shelf-labels", _CATALOG_2),
    (
        "grocer-account-1",
        "account-not-found",
        "greeting",
        {"account_id": "8c7e3f4a-1b2d-4e5f-9a6b-7c8d9e0f1a2b", "email": "grace@example.com"},
    ),
    (
        "grocer-account-2",
        "account-not-found",
        "greeting",
        {"account_id": "0f9e8d7c-6b5a-4f3e-8d2c-1b0a9f8e7d6c", "email": "alan.turing@example.org"},
    ),
    (
        "grocer-account-3",
        "account-not-found",
        "greeting",
        {"account_id": "5d41402a-bc4b-42a7-9e1c-2f7a8b9c0d1e", "email": "ada+shop@lovelace.co.uk"},
    ),
    (
        "grocer-account-4",
        "account-not-found",
        "greeting",
        {"account_id": "11111111-2222-4333-8444-555555555555", "email": "x@example.com"},
    ),
    ("grocer-import-quantity-1", "invalid-bundle-size", "import-row", {**_ROW, "bundle_size": "six"}),
    ("grocer-import-quantity-2", "invalid-bundle-size", "import-row", {**_ROW, "bundle_size": "1/2"}),
    ("grocer-import-discount-1", "invalid-discount", "import-row", {**_ROW, "discount": "0.05"}),
    ("grocer-import-discount-2", "invalid-discount", "import-row", {**_ROW, "discount": "ten"}),
    (
        "grocer-shipping-pickup-1",
        "pickup-order-without-address",
        "shipping-label",
        {"id": "o-1001", "name": "Grace Hopper", "pickup": "store-3"},
    ),
    (
        "grocer-shipping-pickup-2",
        "pickup-order-without-address",
        "shipping-label",
        {"id": "o-1077", "name": "Alan Turing", "pickup": "store-1"},
    ),
    (
        "grocer-shipping-country-1",
        "unknown-country-code",
        "shipping-label",
        {
            "id": "o-2001",
            "name": "Ada",
            "address": {"street": "1 Main St", "city": "Pristina", "country": "XK"},
        },
    ),
    (
        "grocer-shipping-country-2",
        "unknown-country-code",
        "shipping-label",
        {
            "id": "o-2002",
            "name": "Bob",
            "address": {"street": "Laugavegur 1", "city": "Reykjavik", "country": "IS"},
        },
    ),
    (
        "grocer-message-payment-1",
        "payment-retry-exhausted",
        "message",
        _payment("o-1001", 3, "grace@example.com", "3f2b8c1e-9d4a-4e6b-8f7c-0a1b2c3d4e5f"),
    ),
    (
        "grocer-message-payment-2",
        "payment-retry-exhausted",
        "message",
        _payment("o-20417", 5, "alan.turing@example.org", "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"),
    ),
    (
        "grocer-message-payment-3",
        "payment-retry-exhausted",
        "message",
        _payment("o-77", 3, "ada+shop@lovelace.co.uk", "00000000-1111-4222-8333-444444444444"),
    ),
    (
        "grocer-message-payment-4",
        "payment-retry-exhausted",
        "message",
        _payment("o-31337", 12, "x@example.com", "c0ffee00-beef-4bad-a55e-123456789abc"),
    ),
    ("grocer-logged-stock-1", "stock-reservation-timeout", "logged", _logged("EGG-6", 1500)),
    ("grocer-logged-stock-2", "stock-reservation-timeout", "logged", _logged("BANANA", 2250)),
    ("grocer-logged-stock-3", "stock-reservation-timeout", "logged", _logged("WATER-24", 1500)),
    (
        "grocer-message-stock-low-1",
        "stock-low",
        "message",
        {"text": "stock for EGG-6 below reorder level (4 < 10)"},
    ),
    (
        "grocer-message-stock-low-2",
        "stock-low",
        "message",
        {"text": "stock for LIME-12 below reorder level (0 < 24)"},
    ),
    ("grocer-message-stock-high-1", "stock-high", "message", {"text": "stock for EGG-6 above reorder level (40 > 24)"}),
    ("grocer-message-stock-high-2", "stock-high", "message", {"text": "stock for OAT-500 above reorder level (90 > 48)"}),
]
SHIFTED_CAPTURE: Capture = ("grocer-checkout-shifted", "zero-bundle-at-checkout", "checkout", _CART_1)
# The same crash from another release of the app, reported by another server.
RELEASE_CAPTURE: Capture = ("grocer-checkout-release-2", "zero-bundle-at-checkout", "checkout", _CART_3)
RELEASE = ("grocer@2.0.1", "web-2")
# The same crash from an app that configures no in-app rules: the SDK counts everything under its
# working folder, the entry script (__main__) included.
SDK_DEFAULTS_CAPTURE: Capture = ("grocer-checkout-sdk-defaults", "zero-bundle-at-checkout", "checkout", _CART_2)

# Root-cause clusters: groups with one crash site (pipeline/grouping.py). A group not named here
# is a cluster of its own.
CLUSTERS: dict[str, str] = {
    "zero-bundle-at-checkout": "zero-bundle-size",
    "zero-bundle-in-shelf-labels": "zero-bundle-size",
    "profile-without-nickname": "missing-nickname",
    "digest-missing-nickname": "missing-nickname",
}


def host_jobs(n: int) -> list[tuple[str, Any]]:
    """The jobs each host's worker runs (ids vary per host); HOST_LABELS says what each logs."""
    return [
        ("checkout", {"id": f"c-{n}02", "customer": f"u-{n}4", "lines": [_line("LEEK", 0.9, 0, 2)]}),
        ("checkout", {"id": f"c-{n}03", "customer": "u-5", "lines": [_line("EGG-6", 3.0, 6)]}),  # succeeds
        ("shelf-labels", _CATALOG_2),
        ("import-row", {**_ROW, "bundle_size": "a dozen"}),
        ("reserve-stock", {"sku": ["EGG-6", "LIME", "WATER-24"][n % 3], "waited_ms": 1200 + 100 * n}),
        ("settle-payment", {"order": f"o-{7000 + n}", "attempts": 3, "customer": f"buyer{n}@example.com",
                            "request": f"{n:08x}-1b2d-4e5f-9a6b-7c8d9e0f1a2b"}),
        ("reserve-stock", {"sku": "OAT-500", "waited_ms": 200}),  # succeeds
        ("import-row", {**_ROW, "discount": "ten"}),
    ]


HOST_LABELS = ["zero-bundle-at-checkout", "zero-bundle-in-shelf-labels", "invalid-bundle-size",
               "stock-reservation-timeout", "payment-retry-exhausted", "invalid-discount"]
_SITE = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"


@dataclass(frozen=True)
class Host:
    """How a host runs the worker: its log format, and where grocer and the worker are installed.

    layout "checkout": grocer/ beside worker.py in `root`; "site-packages": grocer copied into
    root/venv/<site-packages>, the worker in root/bin; "venv": a real virtualenv at root/venv with
    grocer pip-installed from a wheel, the worker in root/app run by the virtualenv's python."""

    log_format: str
    layout: str
    root: str


HOSTS: dict[str, Host] = {
    "host-a": Host("plain", "checkout", "srv/grocer/current"),
    "host-b": Host("plain", "checkout", "home/deploy/releases/2024-05-01T1200"),
    "host-c": Host("plain", "site-packages", "opt/grocer"),
    "host-d": Host("structlog", "checkout", "srv/shop/app"),
    "host-e": Host("structlog", "venv", "opt/grocer-e"),
    "host-f": Host("json-logger", "venv", "opt/grocer-f"),
    "host-g": Host("structlog-dict", "checkout", "srv/grocer-g/app"),
    "host-h": Host("structlog-dict", "venv", "opt/grocer-h"),
}


# Bench cases: (case id, release). None is the case's buggy_version; another release is the same bug
# met in an older version of the package, where the code around it differs. attrs-self-referencing-repr
# is left out: its RecursionError event holds a thousand frames (385 KB) and adds no variant.
# The applications whose log files are in the set, as a deployment would configure them
# (AUTOFIX_IN_APP_PACKAGES): log tracebacks carry no in-app marks of their own.
IN_APP_PACKAGES = ("shop", "grocer")

CASE_CAPTURES: list[tuple[str, str | None]] = [
    ("pyflakes-global-in-class", None),
    ("pyflakes-print-augassign", None),
    ("charset-normalizer-compare-unknown-name", None),
    ("charset-normalizer-compare-unknown-name", "3.4.4"),
    ("charset-normalizer-empty-multi-byte-usage", None),
    ("boltons-complement-issubset", None),
    ("boltons-histogram-zero-spread", None),
    ("boltons-multireplace-empty-map", None),
    ("tomlkit-dotted-key-in-subtables", None),
    ("w3lib-replace-entities-huge-codepoint", None),
    ("wcwidth-wcswidth-n-beyond-length", None),
    ("jsonpickle-readonly-str-attrs", None),
    ("jsonpickle-readonly-str-attrs", "4.0.0"),
]
RULE = (
    "One bug is one crash site reached through one call path in the application's own code (for a "
    "message-only event: one message template). Entry points outside that code (the script, the worker "
    "loop, the web framework's wrapper), the install prefix, line numbers, other releases of the same "
    "code and the values in the message do not make a different bug."
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AUTOFIX_"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", **extra)
    return env


def capture_program(capture: Capture, programs: Path, out_dir: Path, release: tuple[str, str] | None = None,
                    sdk_defaults: bool = False) -> Path:
    """Run one grocer scenario under the capture module; the event file it wrote."""
    stem, _label, scenario, payload = capture
    out = out_dir / f"{stem}.json"
    extra = ["--release", release[0], "--server-name", release[1]] if release else []
    extra += ["--default-in-app"] if sdk_defaults else []
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.benchmark.capture",
            "--out",
            str(out),
            "--in-app",
            "grocer",
            *extra,
            str(programs / "crash.py"),
        ],
        env=_env(
            PYTHONPATH=os.pathsep.join([str(programs), str(REPO)]),
            GROUPING_SCENARIO=scenario,
            GROUPING_INPUT=json.dumps(payload),
        ),
        cwd=programs,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    # 3: the script returned normally, as the message scenarios do after sending their event.
    if done.returncode not in (0, 3) or not out.is_file():
        raise SystemExit(f"{stem}: capture exited {done.returncode} without an event: {done.stderr[-500:]}")
    return out


def shifted_copy(dest: Path) -> Path:
    """A copy of programs/ as after an unrelated edit: lines added above the crash site and its caller."""
    shutil.copytree(PROGRAMS, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pricing.py", "cart.py"):
        path = dest / "grocer" / name
        head, sep, rest = path.read_text().partition('"""\n\n')  # after the module docstring
        path.write_text(
            head + sep + "# Prices are in the shop's currency (settings.CURRENCY).\n\n\n\n" + rest
        )
    return dest


def write_host_log(host: str, root: Path, out_dir: Path) -> Path:
    """Install grocer and the worker as the host does, run the jobs, return the worker's log."""
    spec, base = HOSTS[host], root / host / HOSTS[host].root
    python = sys.executable
    if spec.layout == "checkout":
        shutil.copytree(PROGRAMS / "grocer", base / "grocer", ignore=shutil.ignore_patterns("__pycache__"))
        worker_dir, path = base, str(base)
    elif spec.layout == "site-packages":
        site = base / "venv" / _SITE
        shutil.copytree(PROGRAMS / "grocer", site / "grocer", ignore=shutil.ignore_patterns("__pycache__"))
        worker_dir, path = base / "bin", str(site)
    else:
        python = str(make_venv(base / "venv"))
        worker_dir, path = base / "app", ""
    worker_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROGRAMS / "worker.py", worker_dir / "worker.py")
    log_file = out_dir / f"{host}-worker.log"
    number = sorted(HOSTS).index(host) + 1
    subprocess.run(
        [python, str(worker_dir / "worker.py"), str(log_file), json.dumps(host_jobs(number)), spec.log_format],
        env=_env(PYTHONPATH=path) if path else _env(),
        cwd=worker_dir,
        check=True,
        timeout=TIMEOUT_S,
    )
    return log_file


def make_venv(venv: Path) -> Path:
    """A real virtualenv with grocer pip-installed into it from a wheel; its python.

    structlog and python-json-logger come from this interpreter's environment through a .pth file
    (the machine is offline); grocer itself is installed by pip, as a deployment installs it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=TIMEOUT_S)
    site = next((venv / "lib").glob("python*/site-packages"))
    wheel = build_wheel(venv.parent / "dist")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--target", str(site), str(wheel)],
                   check=True, timeout=TIMEOUT_S, env=_env())
    deps = sorted({p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "structlog").is_dir()})
    (site / "host-deps.pth").write_text("".join(f"{p}\n" for p in deps))
    return venv / "bin" / "python"


def build_wheel(dist: Path) -> Path:
    """grocer as a pure-Python wheel (a zip with its dist-info), which pip installs like any other."""
    dist.mkdir(parents=True, exist_ok=True)
    wheel = dist / "grocer-1.0-py3-none-any.whl"
    files = {f"grocer/{p.name}": p.read_bytes() for p in sorted((PROGRAMS / "grocer").glob("*.py"))}
    info = "grocer-1.0.dist-info"
    files[f"{info}/METADATA"] = b"Metadata-Version: 2.1\nName: grocer\nVersion: 1.0\n"
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: make_set\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{name},sha256={_b64_sha(data)},{len(data)}" for name, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def _b64_sha(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def capture_case(case: Any, version: str | None, corpus: Any, out_dir: Path) -> Path | None:
    """Run a bench case's repro under the capture module as the runner does; None if it did not crash
    as the case says (another release may not have the bug)."""
    source = corpus.unpack_sdist(case.package, version or case.buggy_version)
    deps = corpus.install_requires(case.requires)
    stem = f"crash-{case.id}" + (f"-{version}" if version else "")
    out = out_dir / stem / "event.json"
    out.parent.mkdir()
    problem = runner._capture(case, source / case.source_root, deps, out)
    if problem:
        print(f"skipped {stem}: {problem}", file=sys.stderr)
        return None
    primary = load_path(out)[0].primary
    if primary is None or primary.type != case.exception:
        print(f"skipped {stem}: raised {primary and primary.type}, not {case.exception}", file=sys.stderr)
        return None
    return out.rename(out_dir / f"{stem}.json")


def build(events: Path = EVENTS) -> dict[str, Any]:
    """Rewrite `events` and return the labels document."""
    shutil.rmtree(events, ignore_errors=True)
    events.mkdir(parents=True)
    labels: dict[str, str | list[str]] = {}
    groups = dict(GROUPS)

    def add(path: Path, label: str | list[str]) -> None:
        labels[path.name] = label
        print(f"{path.name}: {label}")

    for src in sorted((EXAMPLES / "events").glob("*.json")):
        example_labels = {
            "1": "coupon-none-at-checkout",
            "2": "coupon-none-at-checkout",
            "3": "profile-without-nickname",
            "4": "empty-draft-average",
            "5": "gift-card-shipping",
        }
        add(Path(shutil.copy(src, events / f"example-{src.name}")), example_labels[src.name.split("-")[0]])
    add(
        Path(shutil.copy(EXAMPLES / "logs" / "app.log", events / "example-app.log")),
        ["empty-draft-average", "digest-missing-nickname"],
    )

    with tempfile.TemporaryDirectory(prefix="grouping-") as tmp:
        work = Path(tmp)
        for capture in PROGRAM_CAPTURES:
            add(capture_program(capture, PROGRAMS, events), capture[1])
        add(capture_program(SHIFTED_CAPTURE, shifted_copy(work / "shifted"), events), SHIFTED_CAPTURE[1])
        add(capture_program(RELEASE_CAPTURE, PROGRAMS, events, RELEASE), RELEASE_CAPTURE[1])
        add(capture_program(SDK_DEFAULTS_CAPTURE, PROGRAMS, events, sdk_defaults=True), SDK_DEFAULTS_CAPTURE[1])
        for host in HOSTS:
            add(write_host_log(host, work / "hosts", events), HOST_LABELS)
        corpus = runner.load_corpus_module(CRASHES)
        (work / "cases").mkdir()
        for case_id, version in CASE_CAPTURES:
            case = corpus.load_case(CRASHES / case_id)
            path = capture_case(case, version, corpus, work / "cases")
            if path is not None:
                add(Path(shutil.move(path, events / path.name)), case.id)
                releases = sorted({v or case.buggy_version for c, v in CASE_CAPTURES if c == case.id})
                groups[case.id] = (
                    f"bench/crashes/{case.id} ({case.package} {', '.join(releases)}): {case.summary}"
                )
    check(events, labels)
    return {"rule": RULE, "in_app_packages": list(IN_APP_PACKAGES), "groups": groups, "clusters": CLUSTERS,
            "events": labels}


def check(events: Path, labels: dict[str, str | list[str]]) -> None:
    """Every file parses into as many events as it has labels, so the set cannot drift silently."""
    for name, label in labels.items():
        parsed = load_path(events / name)
        wanted = len(label) if isinstance(label, list) else 1
        if len(parsed) != wanted:
            raise SystemExit(f"{name}: {len(parsed)} events parsed, {wanted} labelled")


def main() -> None:
    document = build()
    (HERE / "labels.json").write_text(json.dumps(document, indent=1) + "\n")
    print(f"{len(document['events'])} files, {len(document['groups'])} groups -> {HERE / 'labels.json'}")


if __name__ == "__main__":
    main()
