"""The opt-in sentry-sdk integration (pipeline/sdk_objects.py) and the replays it makes possible.

Serialisation runs the real sentry-sdk in this process with a client of its own (an isolation scope
and a transport that records envelopes); the replays capture the crash of tests/data/replayapp's
ledger with the real SDK in a subprocess (pipeline.benchmark.capture, with and without
`--in-app-objects`) and verify the templates' patch in bubblewrap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from helpers_fix import init_repo, write_tree
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from pipeline.fixers.templates import TemplateFixer
from pipeline.flow import FixOutcome, FixRequest, fix_issue
from pipeline.grouping import group
from pipeline.records import CodeContext, Location, ReplayStatus
from pipeline.replay_args import NotRebuildable, ObjectSpec, Ref, rebuild
from pipeline.repro import plan_replays
from pipeline.scrub import scrub_event
from pipeline.sdk_objects import InAppObjectsIntegration
from pipeline.sources import load_path
from sandbox.config import make_sandbox

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
MODELS = "sdkobj_models"  # a package made for these tests, imported from tmp_path


class Recording(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(dict(event))


MODELS_SOURCE = '''
class Leaf:
    __slots__ = ("value", "__hidden", "never_set")

    def __init__(self, value):
        self.value = value
        self.__hidden = (1, "two")


class Tree:
    def __init__(self, name, password=None):
        self.name = name
        self.parent = None
        self.children = []
        self.leaf = Leaf({"k": [1, 2.5, None]})
        self.flags = {"a", "b"}
        self.password = password
        self.handle = open  # a builtin function: not a literal

    def add(self, child):
        child.parent = self
        self.children.append(child)
        return child


class Chain:
    def __init__(self, depth):
        self.next = Chain(depth - 1) if depth else None


class Big:
    def __init__(self):
        self.text = "x" * 5000
        self.many = list(range(50))


class Crashes:
    def go(self, other):
        raise ValueError("boom")
'''


@pytest.fixture
def models(tmp_path: Path) -> Iterator[Any]:
    write_tree(tmp_path / "pkgs", {f"{MODELS}/__init__.py": MODELS_SOURCE})
    sys.path.insert(0, str(tmp_path / "pkgs"))
    try:
        import importlib

        yield importlib.import_module(MODELS)
    finally:
        sys.path.remove(str(tmp_path / "pkgs"))
        sys.modules.pop(MODELS, None)


def captured_vars(models: Any, receiver: Any, other: Any, integration: bool = True,
                  **options: Any) -> dict[str, Any]:
    """The `vars` of the in-app frame that raised, as the real SDK sends them."""
    transport = Recording()
    client = sentry_sdk.Client(dsn="http://public@127.0.0.1:9/1", transport=transport,
                               include_local_variables=True, in_app_include=[MODELS], default_integrations=False,
                               integrations=[InAppObjectsIntegration(**options)] if integration else [])
    with sentry_sdk.isolation_scope() as scope:
        scope.set_client(client)
        try:
            receiver.go(other)
        except ValueError:
            sentry_sdk.capture_exception()
        client.flush()
    (event,) = transport.events
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    crash = [f for f in frames if f["function"] == "go"]
    assert crash and crash[-1]["in_app"]
    return dict(crash[-1]["vars"])


def test_an_in_app_object_is_sent_as_its_attributes_slots_nested_objects_and_cycles(models: Any) -> None:
    root = models.Tree("root", password="hunter2")
    root.add(models.Tree("child"))
    sent = captured_vars(models, models.Crashes(), root)
    assert sent["self"] == {"__autofix__": "object", "class": f"{MODELS}:Crashes", "id": 0, "attrs": {},
                            "slots": {}}
    other = sent["other"]
    assert (other["__autofix__"], other["class"], other["id"]) == ("object", f"{MODELS}:Tree", 0)
    attrs = other["attrs"]
    assert attrs["name"] == "'root'" and attrs["parent"] == "None" and attrs["password"] == "'hunter2'"
    assert attrs["flags"] == {"__autofix__": "set", "items": ["'a'", "'b'"]}
    assert attrs["handle"].startswith("<built-in function open")  # not a literal: stays a plain repr
    leaf = attrs["leaf"]
    assert leaf["attrs"] == {}  # a slotted class has no __dict__
    assert leaf["slots"] == {"value": {"k": ["1", "2.5", "None"]},
                             "_Leaf__hidden": {"__autofix__": "tuple", "items": ["1", "'two'"]}}  # mangled name
    assert "never_set" not in leaf["slots"]
    (child,) = attrs["children"]
    assert child["class"] == f"{MODELS}:Tree" and child["id"] != 0
    assert child["attrs"]["parent"] == {"__autofix__": "ref", "id": 0}  # the cycle back to root


def test_descriptions_are_bounded_and_what_does_not_fit_is_said_not_cut(models: Any) -> None:
    sent = captured_vars(models, models.Crashes(), models.Chain(6), max_depth=2)
    inner = sent["other"]["attrs"]["next"]["attrs"]["next"]
    assert isinstance(inner, str) and inner.startswith(f"<{MODELS}.Chain object at 0x")  # past max_depth

    big = captured_vars(models, models.Crashes(), models.Big())["other"]["attrs"]
    assert big["text"] == "<5002 characters: not sent>"
    assert big["many"] == "<list of 50 items: not sent>"
    tight = captured_vars(models, models.Crashes(), models.Tree("t"), max_attrs=3)["other"]
    assert tight["truncated"] == "<7 attributes: not sent>" and "attrs" not in tight


def test_without_the_integration_or_for_a_class_outside_the_app_the_sdk_sends_its_repr(models: Any) -> None:
    plain = captured_vars(models, models.Crashes(), models.Tree("t"), integration=False)
    assert plain["other"].startswith(f"<{MODELS}.Tree object at 0x")
    outside = captured_vars(models, models.Crashes(), models.Tree("t"), packages=["someotherapp"])
    assert outside["other"].startswith(f"<{MODELS}.Tree object at 0x")


def test_rebuild_turns_a_description_into_specs_with_references_and_refuses_what_is_not_literal(
    models: Any,
) -> None:
    root = models.Tree("root")
    root.handle = None
    root.add(models.Tree("child")).handle = None
    spec = rebuild(captured_vars(models, models.Crashes(), root)["other"])
    assert isinstance(spec, ObjectSpec) and (spec.module, spec.qualname) == (MODELS, "Tree")
    assert spec.dict_attrs["flags"] == {"a", "b"}
    assert spec.dict_attrs["leaf"].slot_attrs == {"value": {"k": [1, 2.5, None]}, "_Leaf__hidden": (1, "two")}
    (child,) = spec.dict_attrs["children"]
    assert child.dict_attrs["parent"] == Ref(spec.id)

    with pytest.raises(NotRebuildable, match="Tree has an attribute that is not a literal: <built-in function"):
        rebuild(captured_vars(models, models.Crashes(), models.Tree("t"))["other"])
    with pytest.raises(NotRebuildable, match="not one of its enclosing objects"):
        rebuild({"__autofix__": "object", "class": "m:C", "id": 0, "attrs": {"x": {"__autofix__": "ref", "id": 7}}})
    with pytest.raises(NotRebuildable, match="without its attributes"):
        rebuild(captured_vars(models, models.Crashes(), models.Tree("t"), max_attrs=3)["other"])


# --- replays on a repo: the ledger's method crash ------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(DATA / "replayapp", root, ignore=shutil.ignore_patterns("__pycache__"))
    return init_repo(root, {})


def capture(repo: Path, tmp_path: Path, script: str, objects: bool) -> Path:
    """The crash of `script` as the real sentry-sdk sends it (pipeline.benchmark.capture)."""
    (tmp_path / "run.py").write_text(script)
    out = tmp_path / ("objects.json" if objects else "default.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.benchmark.capture", "--out", str(out), "--in-app", "replayapp",
         "--release", "replayapp@1.0.0", *(["--in-app-objects"] if objects else []), str(tmp_path / "run.py")],
        env={**env, "PYTHONPATH": f"{repo}{os.pathsep}{ROOT}"}, cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out


def fix(event_file: Path, repo: Path, tmp_path: Path, cache: Path, name: str) -> FixOutcome:
    event, issue = group(scrub_event(load_path(event_file)[0]))
    request = FixRequest(event, issue, repo, tmp_path / f"work-{name}", env_home=cache)
    return fix_issue(request, [TemplateFixer()], make_sandbox("bwrap"))


LEDGER = "from replayapp.ledger import Account, Ledger\nLedger(Account('ada', [])).average()\n"


def test_a_method_crash_is_verified_only_when_the_app_sends_its_objects(
    repo: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    default = fix(capture(repo, tmp_path, LEDGER, objects=False), repo, tmp_path, repo_env_cache, "default")
    assert default.status == "unverified" and not default.queued
    assert default.plan is not None and default.plan.replays == ()
    assert "its receiver 'self' is '<replayapp.ledger.Ledger object at 0x" in default.plan.not_replayable[0]

    outcome = fix(capture(repo, tmp_path, LEDGER, objects=True), repo, tmp_path, repo_env_cache, "objects")
    assert outcome.status == "verified", outcome.reason
    assert outcome.queued
    assert outcome.plan is not None
    (replay,) = outcome.plan.replays
    assert replay.name == "replayapp.ledger.Ledger.average" and replay.receiver is not None
    account = replay.receiver.dict_attrs["account"]
    assert account.cls == "replayapp.ledger.Account" and account.dict_attrs["ledger"] == Ref(replay.receiver.id)
    assert "cls.__new__(cls)" in outcome.plan.source
    v = outcome.best.verification  # type: ignore[union-attr]
    assert v is not None
    assert [(r.before, r.after) for r in v.replays] == [(ReplayStatus.REPRODUCED, ReplayStatus.PASSED)]


def test_a_secret_attribute_is_scrubbed_at_ingestion_and_its_object_is_not_rebuilt(
    repo: Path, tmp_path: Path
) -> None:
    script = "from replayapp.ledger import Account, Ledger\nLedger(Account('ada', [], 'hunter2')).average()\n"
    raw = json.loads(capture(repo, tmp_path, script, objects=True).read_text())
    frames = raw["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["vars"]["self"]["attrs"]["account"]["attrs"]["password"] == "'hunter2'"  # as sent

    event = scrub_event(load_path(tmp_path / "objects.json")[0])
    sent = event.exceptions[-1].frames[-1].vars["self"]
    assert sent["attrs"]["account"]["attrs"]["password"] == "[Filtered:secret]"
    # Nowhere in any frame's variables (the script's own source line, which is code, keeps it).
    assert "hunter2" not in json.dumps([f.vars for e in event.exceptions for f in e.frames])
    raw_frames = event.raw["exception"]["values"][0]["stacktrace"]["frames"]
    assert "hunter2" not in json.dumps([f.get("vars") for f in raw_frames])
    context = CodeContext(str(repo), (Location("replayapp/ledger.py", "Ledger.average", frames[-1]["lineno"],
                                               role="crash"),))
    plan = plan_replays(event, context)
    assert plan.replays == ()
    assert "argument 'self' was scrubbed ([Filtered:secret] is not the user's data)" in plan.not_replayable[0]


def test_an_object_whose_class_is_not_in_the_repo_is_not_rebuilt(repo: Path, tmp_path: Path) -> None:
    event = scrub_event(load_path(capture(repo, tmp_path, LEDGER, objects=True))[0])
    line = event.exceptions[-1].frames[-1].lineno
    (repo / "replayapp" / "ledger.py").write_text(
        (repo / "replayapp" / "ledger.py").read_text().replace("class Account:", "class Holder:"))
    context = CodeContext(str(repo), (Location("replayapp/ledger.py", "Ledger.average", line or 0, role="crash"),))
    plan = plan_replays(event, context)
    assert plan.replays == ()
    assert ("the class replayapp.ledger.Account of a rebuilt object is not defined in the repo at this commit"
            in plan.not_replayable[0])


SHAPES = '''
class Base:
    def __init__(self, items):
        self.items = items

    def mean(self, scale):
        return scale.factor * sum(self.items) / len(self.items)

    @property
    def first_share(self):
        return self.items[0] / sum(self.items)


class Sub(Base):
    def mean(self, scale):  # an override: the replay must still call Base.mean
        return 0


class Scale:
    __slots__ = ("factor",)

    def __init__(self, factor):
        self.factor = factor


class Bag(dict):
    def total(self):
        return 1 / len(self)
'''


def test_subclass_receivers_properties_dict_subclasses_and_object_arguments_replay_as_captured(
    tmp_path: Path,
) -> None:
    from helpers_fix import line_of
    from test_repro import _run_pytest

    from pipeline.records import ErrorEvent
    from pipeline.sources.sentry import parse_event

    repo = write_tree(tmp_path / "repo", {"shapes/__init__.py": "", "shapes/core.py": SHAPES})
    sys.path.insert(0, str(repo))
    try:
        import shapes.core as core

        transport = Recording()
        client = sentry_sdk.Client(dsn="http://public@127.0.0.1:9/1", transport=transport,
                                   include_local_variables=True, in_app_include=["shapes"],
                                   default_integrations=False, integrations=[InAppObjectsIntegration()])
        with sentry_sdk.isolation_scope() as scope:
            scope.set_client(client)
            calls: list[Callable[[], Any]] = [lambda: core.Base.mean(core.Sub([]), core.Scale(2)),
                                              lambda: core.Base([0]).first_share, lambda: core.Bag().total()]
            for call in calls:
                try:
                    call()
                except ZeroDivisionError:
                    sentry_sdk.capture_exception()
            client.flush()
    finally:
        sys.path.remove(str(repo))
        for name in ("shapes", "shapes.core"):
            sys.modules.pop(name, None)
    source = SHAPES
    wanted = [("Base.mean", "scale.factor * sum"), ("Base.first_share", "self.items[0] / sum"),
              ("Bag.total", "1 / len(self)")]
    for payload, (function, crash) in zip(transport.events, wanted, strict=True):
        ev: ErrorEvent = scrub_event(parse_event(payload))
        ctx = CodeContext(str(repo), (Location("shapes/core.py", function, line_of(source, crash), role="crash"),))
        plan = plan_replays(ev, ctx)
        assert [r.qualname for r in plan.replays] == [function], plan.not_replayable
        out = _run_pytest(repo, plan.path, plan.source)
        assert "AUTOFIX-REPRODUCED ZeroDivisionError" in out, out
    (sub_replay,) = plan_replays(scrub_event(parse_event(transport.events[0])), CodeContext(
        str(repo), (Location("shapes/core.py", "Base.mean", line_of(source, "scale.factor * sum"), role="crash"),)
    )).replays
    assert sub_replay.receiver is not None and sub_replay.receiver.cls == "shapes.core.Sub"
    (scale,) = sub_replay.args or tuple(sub_replay.kwargs.values())
    assert isinstance(scale, ObjectSpec) and scale.slot_attrs == {"factor": 2}
