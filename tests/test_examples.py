"""The example service and its recorded evidence: the bugs are real, recorded faithfully, and fixable.

The demo relies on three things checked here: the service's own tests pass on the buggy code, each
recorded event still matches the code it was recorded from (so frames point at the right lines), and
the crashing function, called again with the arguments captured in its frame, crashes the same way
before the obvious defensive fix and returns the neutral value after it.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SERVICE = EXAMPLES / "service"
EVENTS = EXAMPLES / "events"

EXPECTED = {
    "1-checkout-coupon-null": ("AttributeError", "shop/billing.py", "coupon_code"),
    "2-checkout-coupon-absent": ("AttributeError", "shop/billing.py", "coupon_code"),
    "3-profile-without-nickname": ("KeyError", "shop/users.py", "display_name"),
    "4-summary-of-empty-draft": ("ZeroDivisionError", "shop/orders.py", "average_item_price"),
    "5-summary-of-gift-card-order": ("TypeError", "shop/orders.py", "shipping_country"),
}

# The fix each bug should get: (path, crashing line, replacement lines, what the replay then returns).
FIXES: dict[str, tuple[str, str, list[str], object]] = {
    "coupon_code": ("shop/billing.py", '    return customer.get("coupon").strip().upper()', [
        '    coupon = customer.get("coupon")',
        "    if coupon is None:",
        '        return ""',
        "    return coupon.strip().upper()",
    ], ""),
    "display_name": ("shop/users.py", '    nickname = profile["nickname"]', [
        '    nickname = profile.get("nickname", "")',
    ], "Alan Turing"),
    "average_item_price": ("shop/orders.py", "    return round(total / units, 2)", [
        "    if units == 0:",
        "        return 0.0",
        "    return round(total / units, 2)",
    ], 0.0),
    "shipping_country": ("shop/orders.py", '    return order.get("shipping")["country"].upper()', [
        '    shipping = order.get("shipping")',
        "    if shipping is None:",
        "        return None",
        '    return shipping["country"].upper()',
    ], None),
}

# Calls a crashing function again with the arguments its frame captured; prints what came of it.
REPLAY = """
import ast, importlib, inspect, json, sys

def rebuild(value):
    if isinstance(value, dict):
        return {key: rebuild(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rebuild(item) for item in value]
    return ast.literal_eval(value)

for path in sys.argv[1:]:
    frame = [f for f in json.load(open(path))["exception"]["values"][-1]["stacktrace"]["frames"]
             if f.get("in_app")][-1]
    function = getattr(importlib.import_module(frame["module"]), frame["function"])
    args = {name: rebuild(frame["vars"][name]) for name in inspect.signature(function).parameters}
    try:
        print(json.dumps({"returned": function(**args)}))
    except Exception as exc:
        print(json.dumps({"raised": type(exc).__name__}))
"""


def python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def load(path: Path) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(path.read_text())
    return payload


def crash_frame(event: dict[str, Any]) -> dict[str, Any]:
    frames: list[dict[str, Any]] = event["exception"]["values"][-1]["stacktrace"]["frames"]
    return [frame for frame in frames if frame.get("in_app")][-1]


def parameters(path: Path, function: str) -> list[str]:
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    return [arg.arg for arg in node.args.args]


def replay(service: Path, events: list[Path]) -> list[dict[str, Any]]:
    result = python("-c", REPLAY, *map(str, events), cwd=service)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_service_tests_pass_on_the_buggy_code() -> None:
    result = python("-m", "pytest", "-q", cwd=SERVICE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_expected_event_was_recorded_and_nothing_else() -> None:
    assert sorted(path.stem for path in EVENTS.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_event_names_its_exception_and_crash_site(name: str) -> None:
    exc_type, filename, function = EXPECTED[name]
    event = load(EVENTS / f"{name}.json")
    assert event["exception"]["values"][-1]["type"] == exc_type
    frame = crash_frame(event)
    assert (frame["filename"], frame["function"]) == (filename, function)
    # A stale recording would send the demo to the wrong line: the code must still say what was seen.
    source_line = (SERVICE / filename).read_text().splitlines()[frame["lineno"] - 1]
    assert source_line == frame["context_line"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_crash_frame_captured_every_argument_of_the_crashing_function(name: str) -> None:
    _, filename, function = EXPECTED[name]
    frame = crash_frame(load(EVENTS / f"{name}.json"))
    assert set(parameters(SERVICE / filename, function)) <= set(frame["vars"])


def test_crashing_functions_have_in_app_callers_in_the_api() -> None:
    for name in EXPECTED:
        frames = load(EVENTS / f"{name}.json")["exception"]["values"][-1]["stacktrace"]["frames"]
        callers = [frame["filename"] for frame in frames if frame.get("in_app")][:-1]
        assert "shop/api.py" in callers, name


def test_replaying_the_captured_arguments_raises_the_recorded_exception() -> None:
    events = [EVENTS / f"{name}.json" for name in sorted(EXPECTED)]
    outcomes = replay(SERVICE, events)
    assert outcomes == [{"raised": EXPECTED[name][0]} for name in sorted(EXPECTED)]


def test_the_defensive_fixes_stop_the_crashes_and_keep_the_tests_green(tmp_path: Path) -> None:
    service = tmp_path / "service"
    shutil.copytree(SERVICE, service, ignore=shutil.ignore_patterns("__pycache__"))
    for path, old, new, _ in FIXES.values():
        source = (service / path).read_text()
        assert source.count(old + "\n") == 1, old
        (service / path).write_text(source.replace(old + "\n", "\n".join(new) + "\n"))
    assert python("-m", "pytest", "-q", cwd=service).returncode == 0
    names = sorted(EXPECTED)
    outcomes = replay(service, [EVENTS / f"{name}.json" for name in names])
    assert outcomes == [{"returned": FIXES[EXPECTED[name][2]][3]} for name in names]


def test_log_file_holds_a_chained_traceback_among_ordinary_lines() -> None:
    text = (EXAMPLES / "logs" / "app.log").read_text()
    assert " INFO [shop.api] order summary served for o-1001" in text
    assert "ZeroDivisionError: division by zero" in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert "shop.jobs.DigestError: profile u-3 is incomplete" in text


def test_recorder_reproduces_the_same_events_and_log(tmp_path: Path) -> None:
    result = python(str(EXAMPLES / "record_events.py"), "--out", str(tmp_path / "events"),
                    "--log", str(tmp_path / "app.log"), cwd=EXAMPLES.parent)
    assert result.returncode == 0, result.stderr
    for name, (exc_type, filename, function) in EXPECTED.items():
        event = load(tmp_path / "events" / f"{name}.json")
        assert event["exception"]["values"][-1]["type"] == exc_type
        frame = crash_frame(event)
        assert (frame["filename"], frame["function"]) == (filename, function)
    log = (tmp_path / "app.log").read_text()
    assert log.count("Traceback (most recent call last):") == 3
    assert "The above exception was the direct cause" in log
