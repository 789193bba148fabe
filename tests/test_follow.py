"""Following a growing log: every traceback and error line counted once, across partial writes,
restarts and both kinds of rotation, while running and while stopped. The last tests run the real
`autofix ingest` and `autofix ingest --follow` on a 100,000-line log written by the logging module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.adapters.sql_store import SqlStore
from pipeline.ingest import ingest_events
from pipeline.sources.follow import Follower
from pipeline.sources.in_app import InAppRules

ROOT = Path(__file__).resolve().parents[1]
WRITER = ROOT / "bench" / "log_writer.py"
JOB = re.compile(r"job (\d{6})")


def record(seq: int) -> str:
    """One logging record: a traceback every third one, else an error line without one."""
    stamp = f"2026-05-01 12:{seq // 60 % 60:02d}:{seq % 60:02d},{seq % 1000:03d}"
    if seq % 3:
        return f"{stamp} ERROR [shop.jobs] job {seq:06d} gave up after 3 retries\n"
    return (f"{stamp} ERROR [shop.jobs] job {seq:06d} failed\n"
            "Traceback (most recent call last):\n"
            '  File "/srv/shop/jobs.py", line 12, in run\n'
            "    price(order)\n"
            '  File "/srv/shop/pricing.py", line 3, in price\n'
            "    return order['total'] / order['units']\n"
            "ZeroDivisionError: division by zero\n")


def write(path: Path, seqs: range, mode: str = "a") -> None:
    with path.open(mode) as out:
        out.write("".join(record(s) for s in seqs))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'autofix.db'}")
    yield store
    store.close()


def follower(path: Path, store: SqlStore) -> Follower:
    return Follower(path, store, lambda events: ingest_events(store, events, InAppRules()),
                    poll_s=0.01, idle_flush_s=0.05, rotate_grace_s=0.05)


def drain(f: Follower, until: Callable[[], bool] = lambda: True, timeout: float = 20.0) -> None:
    """Step the follower until it is idle (and `until` holds), idle meaning a quiet flush window."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        if f.step():
            quiet = 0
            continue
        quiet += 1
        if quiet > 20 and until():
            return
        time.sleep(0.01)
    raise AssertionError("the follower did not settle")


def jobs(store: SqlStore) -> list[int]:
    return sorted(int(m[1]) for e in store.list_events(limit=100_000) if (m := JOB.search(e.message or "")))


def test_a_record_written_in_pieces_is_read_once_it_is_whole(tmp_path: Path, store: SqlStore) -> None:
    log = tmp_path / "app.log"
    text = record(0) + record(1)
    log.write_text(text[:150])  # the traceback's header and first frame
    f = follower(log, store)
    assert f.step() is True  # opened
    drain(f)
    time.sleep(0.2)  # longer than the idle flush: a traceback without its exception line still waits
    drain(f)
    assert jobs(store) == []
    with log.open("a") as out:
        out.write(text[150:])
    drain(f, lambda: len(jobs(store)) == 2)
    assert jobs(store) == [0, 1]


def test_a_restarted_follower_reads_on_from_its_cursor(tmp_path: Path, store: SqlStore) -> None:
    log = tmp_path / "app.log"
    write(log, range(0, 30))
    first = follower(log, store)
    drain(first, lambda: len(jobs(store)) == 30)
    write(log, range(30, 60))
    drain(follower(log, store), lambda: len(jobs(store)) == 60)
    assert jobs(store) == list(range(60))
    assert sum(i.count for i in store.list_issues()) == 60


def test_rotation_by_rename_while_following_loses_and_repeats_nothing(tmp_path: Path, store: SqlStore) -> None:
    log = tmp_path / "app.log"
    write(log, range(0, 40))
    f = follower(log, store)
    drain(f)
    write(log, range(40, 50))  # written to the old file just before it is renamed
    os.replace(log, tmp_path / "app.log.1")
    write(tmp_path / "app.log.1", range(50, 55))  # the writer still holds the old file for a moment
    write(log, range(55, 90), mode="w")
    drain(f, lambda: len(jobs(store)) == 90)
    assert jobs(store) == list(range(90)) and f.report.rotations == 1


def test_copytruncate_while_following_loses_and_repeats_nothing(tmp_path: Path, store: SqlStore) -> None:
    log = tmp_path / "app.log"
    write(log, range(0, 40))
    f = follower(log, store)
    drain(f)
    write(log, range(40, 60))  # not read yet when logrotate copies and truncates
    shutil.copyfile(log, tmp_path / "app.log.1")
    os.truncate(log, 0)
    write(log, range(60, 100))
    drain(f, lambda: len(jobs(store)) == 100)
    assert jobs(store) == list(range(100)) and f.report.rotations == 1


def test_rotations_while_stopped_are_caught_up_after_a_restart(tmp_path: Path, store: SqlStore) -> None:
    log = tmp_path / "app.log"
    write(log, range(0, 30))
    drain(follower(log, store))
    write(log, range(30, 40))
    # Two renames while the follower is down: app.log -> .1 -> .2, with a whole generation between.
    os.replace(log, tmp_path / "app.log.1")
    write(log, range(40, 70), mode="w")
    time.sleep(0.02)
    os.replace(tmp_path / "app.log.1", tmp_path / "app.log.2")
    os.replace(log, tmp_path / "app.log.1")
    write(log, range(70, 80), mode="w")
    restarted = follower(log, store)
    drain(restarted, lambda: len(jobs(store)) == 80)
    assert jobs(store) == list(range(80))
    # And two copytruncates while stopped (logrotate shifts the copies: app.log.1 -> app.log.2).
    for name in ("app.log.1", "app.log.2"):
        (tmp_path / name).unlink()
    write(log, range(80, 90))
    shutil.copyfile(log, tmp_path / "app.log.1")
    os.truncate(log, 0)
    write(log, range(90, 95))
    time.sleep(0.02)
    os.replace(tmp_path / "app.log.1", tmp_path / "app.log.2")
    shutil.copyfile(log, tmp_path / "app.log.1")
    os.truncate(log, 0)
    write(log, range(95, 99))
    drain(follower(log, store), lambda: len(jobs(store)) == 99)
    assert jobs(store) == list(range(99))


def test_reading_the_same_generation_again_stores_nothing_twice(tmp_path: Path, store: SqlStore) -> None:
    log = tmp_path / "app.log"
    write(log, range(0, 20))
    drain(follower(log, store))
    cursor = store.get_log_cursor(str(log))
    assert cursor is not None and cursor.offset == log.stat().st_size
    store.save_log_cursor(type(cursor)(cursor.path, 0, cursor.head, cursor.device, cursor.inode))  # as after a crash
    drain(follower(log, store))
    assert jobs(store) == list(range(20))


# --- the real commands on 100,000 lines ----------------------------------------------------------------


def autofix(home: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    env["AUTOFIX_HOME"] = str(home)
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], env=env, cwd=home, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def status(path: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 300.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def read_cursor(home: Path, log: Path) -> Any:
    if not (home / "autofix.db").exists():
        return None
    store = SqlStore(f"sqlite:///{home / 'autofix.db'}")
    try:
        return store.get_log_cursor(str(log))
    finally:
        store.close()


def counted(home: Path) -> list[int]:
    store = SqlStore(f"sqlite:///{home / 'autofix.db'}")
    try:
        return jobs(store)
    finally:
        store.close()


@pytest.mark.slow
def test_autofix_ingest_takes_every_traceback_of_a_100000_line_log(tmp_path: Path) -> None:
    log, state = tmp_path / "app.log", tmp_path / "writer.json"
    subprocess.run([sys.executable, str(WRITER), str(log), "100000", "--status", str(state)], check=True, timeout=300)
    written = status(state)
    assert written["lines"] == 100_000 == len(log.read_text().splitlines())
    home = tmp_path / "home"
    home.mkdir()
    done = autofix(home, "ingest", str(log))
    out, err = done.communicate(timeout=600)
    assert done.returncode == 0, err[-2000:]
    expected = sorted(written["traceback_ids"] + written["error_ids"])
    assert f"stored {len(expected)} event(s)" in out
    assert counted(home) == expected


@pytest.mark.slow
def test_follow_counts_every_traceback_once_while_the_log_grows_rotates_both_ways_and_the_follower_restarts(
    tmp_path: Path,
) -> None:
    log, state = tmp_path / "logs" / "app.log", tmp_path / "writer.json"
    log.parent.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    follow_args = ("ingest", "--follow", str(log), "--poll", "0.05", "--idle-flush", "0.5")
    log.write_text("2026-05-01 12:00:00,000 INFO [shop] log opened\n")
    first = autofix(home, *follow_args)
    wait_for("the first follower to open the log", lambda: (cursor := read_cursor(home, log)) and cursor.offset > 0)
    # Rotated by rename while the first follower runs, copytruncated while none runs, copytruncated
    # again while the second one runs.
    writer = subprocess.Popen([sys.executable, str(WRITER), str(log), "100000", "--status", str(state), "--plan",
                               "30000:rename,50000:pause,60000:copytruncate,75000:pause,85000:copytruncate"])
    second: subprocess.Popen[str] | None = None
    try:
        paused = wait_for("the writer's first pause", lambda: (st := status(state)).get("pauses") == 1 and st)
        so_far = sorted(paused["traceback_ids"] + paused["error_ids"])
        wait_for("the first follower to catch up", lambda: counted(home) == so_far, timeout=600)
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err[-2000:]
        assert f"{len(so_far)} event(s)" in out and "1 rotation(s)" in out
        (tmp_path / "writer.json.resume-1").touch()
        paused = wait_for("the writer's second pause", lambda: (st := status(state)).get("pauses") == 2 and st)
        second = autofix(home, *follow_args)
        so_far = sorted(paused["traceback_ids"] + paused["error_ids"])
        wait_for("the second follower to catch up", lambda: counted(home) == so_far, timeout=600)
        (tmp_path / "writer.json.resume-2").touch()
        assert writer.wait(timeout=300) == 0
        written = status(state)
        expected = sorted(written["traceback_ids"] + written["error_ids"])
        assert written["lines"] >= 100_000 and written["tracebacks"] > 2500
        wait_for("every record", lambda: len(counted(home)) >= len(expected), timeout=600)
        time.sleep(1.5)  # longer than the idle flush: nothing more may arrive
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err[-2000:]
        assert "2 rotation(s)" in out  # the copytruncate it found at its start, and the one it saw
    finally:
        for proc in (first, writer, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert counted(home) == expected
    assert sorted(p.name for p in log.parent.iterdir()) == ["app.log", "app.log.1", "app.log.2"]
