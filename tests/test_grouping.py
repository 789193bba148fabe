"""Grouping: same bug -> same fingerprint; different bugs apart; fix classes, titles, culprits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.grouping import (
    cluster_id,
    components,
    crash_site,
    culprit,
    fingerprint,
    fix_class,
    group,
    parameterize,
    root_cause,
    title,
    without_launchers,
)
from pipeline.records import ErrorEvent, ExceptionInfo, Frame, IssueStatus
from pipeline.sources.sentry import parse_event

DATA = Path(__file__).parent / "data"
AT = datetime(2024, 5, 1, tzinfo=UTC)


def recorded(name: str) -> ErrorEvent:
    return parse_event(json.loads((DATA / f"{name}.json").read_text()), name)


def frame(
    function: str, line: str, lineno: int = 10, module: str = "shop.orders", in_app: bool = True
) -> Frame:
    return Frame(
        function=function,
        filename=module.replace(".", "/") + ".py",
        module=module,
        lineno=lineno,
        context_line=line,
        in_app=in_app,
    )


def crash(
    *frames: Frame, exc_type: str = "AttributeError", value: str = "'NoneType' object has no attribute 'name'"
) -> ErrorEvent:
    return ErrorEvent(
        id="x",
        source="sentry-event",
        platform="python",
        received_at=AT,
        exceptions=(ExceptionInfo(type=exc_type, value=value, frames=frames),),
    )


def message(text: str) -> ErrorEvent:
    return ErrorEvent(
        id="m", source="sentry-event", platform="python", received_at=AT, exceptions=(), message=text
    )


def shift_lines(event: ErrorEvent, by: int) -> ErrorEvent:
    return replace(
        event,
        exceptions=tuple(
            replace(e, frames=tuple(replace(f, lineno=(f.lineno or 0) + by) for f in e.frames))
            for e in event.exceptions
        ),
    )


def test_same_crash_at_other_line_numbers_groups() -> None:
    event = recorded("event_chained_from")
    assert fingerprint(shift_lines(event, 7)) == fingerprint(event)


def test_extra_spaces_in_a_source_line_do_not_split_a_group() -> None:
    a = crash(frame("view", "return order.customer.name"))
    b = crash(frame("view", "return   order.customer.name "))
    assert fingerprint(a) == fingerprint(b)


def test_different_call_paths_to_the_same_crash_do_not_group() -> None:
    leaf = frame("customer_name", "return customer.name")
    from_checkout = crash(frame("checkout", "name = customer_name(order)", module="shop.checkout"), leaf)
    from_invoice = crash(
        frame("render_invoice", "header = customer_name(order)", module="shop.invoice"), leaf
    )
    assert fingerprint(from_checkout) != fingerprint(from_invoice)


def test_same_message_from_different_crashes_does_not_group() -> None:
    a = crash(frame("customer_name", "return customer.name"))
    b = crash(frame("shipping_label", "return address.customer.name"))
    assert a.primary is not None and b.primary is not None and a.primary.value == b.primary.value
    assert fingerprint(a) != fingerprint(b)


def test_library_frames_do_not_move_the_group() -> None:
    app = frame("load", "return json.loads(raw)")
    a = crash(
        app, frame("decode", "obj = self.raw_decode(s)", lineno=337, module="json.decoder", in_app=False)
    )
    b = crash(
        app,
        frame(
            "decode", "obj, end = self.raw_decode(s, idx=0)", lineno=340, module="json.decoder", in_app=False
        ),
    )
    assert fingerprint(a) == fingerprint(b)


def test_a_stack_with_no_in_app_frame_groups_on_all_its_frames() -> None:
    a = crash(frame("get", "return self._data[key]", module="lib.cache", in_app=False))
    b = crash(frame("set", "self._data[key] = v", module="lib.cache", in_app=False))
    assert fingerprint(a) != fingerprint(b)


def test_a_different_cause_in_the_chain_makes_a_different_group() -> None:
    event = recorded("event_chained_from")
    other_cause = replace(
        event, exceptions=(replace(event.exceptions[0], type="IndexError"), *event.exceptions[1:])
    )
    assert fingerprint(other_cause) != fingerprint(event)


def test_messages_that_differ_only_in_ids_group() -> None:
    assert fingerprint(message("payment 8812 failed for order o-1001")) == fingerprint(
        message("payment 9917 failed for order o-2002")
    )
    assert fingerprint(message("payment failed for order o-1001")) != fingerprint(
        message("refund failed for order o-1001")
    )


def test_stackless_exceptions_group_on_type_and_parameterised_value() -> None:
    a = crash(value="timeout after 30s talking to 10.0.0.7", exc_type="TimeoutError")
    b = crash(value="timeout after 45s talking to 10.0.0.9", exc_type="TimeoutError")
    c = crash(value="timeout after 30s talking to 10.0.0.7", exc_type="ConnectionError")
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user 550e8400-e29b-41d4-a716-446655440000 missing", "user <uuid> missing"),
        ("GET https://api.example.com/v1/users/123?x=1 failed", "GET <url> failed"),
        ("mail to jane@example.com bounced", "mail to <email> bounced"),
        ("at 2024-05-01T12:00:00.123Z and 12:30:01", "at <datetime> and <time>"),
        ("object at 0x7f3a2b10 hash deadbeef12345678", "object at <hex> hash <hex>"),
        ("took 2.5ms, retry 3 of 5 from 192.168.0.1", "took <float>ms, retry <int> of <int> from <ip>"),
        ("KeyError 'user_id' in utf8 codec v2", "KeyError <quoted> in utf8 codec v2"),
        ('no template "weekly" for user\'s digest', "no template <quoted> for user's digest"),
        ("sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 on 01/05/2024", "sha1 <hex> on <datetime>"),
    ],
)
def test_parameterize_replaces_variable_parts_and_keeps_names(text: str, expected: str) -> None:
    assert parameterize(text) == expected


@pytest.mark.parametrize(
    ("exc_type", "value", "expected"),
    [
        ("AttributeError", "'NoneType' object has no attribute 'name'", "none-attribute"),
        ("AttributeError", "'Order' object has no attribute 'nme'", "missing-attribute"),
        ("TypeError", "'NoneType' object is not subscriptable", "none-subscript"),
        ("TypeError", "'NoneType' object is not callable", "none-call"),
        ("TypeError", "'NoneType' object is not iterable", "none-iterable"),
        ("TypeError", "cannot unpack non-iterable NoneType object", "none-iterable"),
        ("TypeError", "unsupported operand type(s) for +: 'int' and 'str'", "type-mismatch"),
        ("TypeError", 'can only concatenate str (not "int") to str', "type-mismatch"),
        ("TypeError", 'can only concatenate str (not "NoneType") to str', "none-operand"),
        ("TypeError", "unsupported operand type(s) for +=: 'int' and 'NoneType'", "none-operand"),
        ("TypeError", "'<' not supported between instances of 'NoneType' and 'int'", "none-operand"),
        ("TypeError", "object of type 'NoneType' has no len()", "none-operand"),
        ("TypeError", "'<' not supported between instances of 'str' and 'int'", "type-mismatch"),
        ("TypeError", "f() missing 1 required positional argument: 'x'", "wrong-arguments"),
        ("TypeError", "Object of type datetime is not JSON serializable", "type-error"),
        ("KeyError", "'sku'", "missing-key"),
        ("IndexError", "list index out of range", "index-range"),
        ("ZeroDivisionError", "float division by zero", "zero-division"),
        ("ValueError", "invalid literal for int() with base 10: 'two'", "parse-value"),
        ("JSONDecodeError", "Expecting value: line 1 column 1 (char 0)", "parse-value"),
        ("ValueError", "math domain error", "value-error"),
        ("UnboundLocalError", "cannot access local variable 'total' where it is not associated with a value",
         "unbound-local"),
        ("StopIteration", "", "exhausted-iterator"),
        ("ModuleNotFoundError", "No module named 'yaml'", "import-error"),
        ("RecursionError", "maximum recursion depth exceeded", "recursion"),
        ("NameError", "name 'totl' is not defined", "undefined-name"),
        ("TimeoutError", "timed out", "external"),
        ("ConnectionRefusedError", "[Errno 111] Connection refused", "external"),
        ("ReadTimeout", "HTTPSConnectionPool(host='api', port=443): Read timed out.", "external"),
        ("RuntimeError", "upstream timed out after 30s", "external"),
        ("FileNotFoundError", "[Errno 2] No such file or directory: '/etc/shop.toml'", "external"),
        ("OrderNotFound", "order 4 not found", "other"),
    ],
)
def test_fix_class_comes_from_the_escaping_exception(exc_type: str, value: str, expected: str) -> None:
    assert fix_class(crash(exc_type=exc_type, value=value)) == expected


def test_fix_class_of_a_message_event() -> None:
    assert fix_class(message("payment failed")) == "message"
    assert fix_class(message("stock reservation for EGG-6 timed out after 1500ms")) == "external"


def test_an_exception_raised_on_purpose_is_raised_and_one_wrapping_a_timeout_is_external() -> None:
    site = frame("load_account", "raise AccountNotFound(f'no account {account_id}')")
    assert fix_class(crash(site, exc_type="AccountNotFound", value="no account 7")) == "raised"
    wrapped = crash(site, exc_type="ServiceDown", value="accounts unavailable")
    timeout = ExceptionInfo(type="TimeoutError", value="timed out", frames=(frame("fetch", "sock.recv(1024)"),))
    assert fix_class(replace(wrapped, exceptions=(timeout, *wrapped.exceptions))) == "external"


def test_title_and_culprit_are_sentry_like() -> None:
    event = recorded("event_attribute_error")
    assert title(event) == "AttributeError: 'NoneType' object has no attribute 'name'"
    assert culprit(event) == "fixture_app.customer_name"
    assert title(message("first line\nsecond")) == "first line"
    assert culprit(message("x")) == ""


def test_group_sets_the_fingerprint_and_opens_a_new_issue() -> None:
    event = recorded("event_chained_from")
    grouped, issue = group(event)
    assert grouped.fingerprint == issue.fingerprint == fingerprint(event)
    assert len(issue.fingerprint) == 32 and int(issue.fingerprint, 16) >= 0
    assert (issue.count, issue.status, issue.latest_event_id) == (1, IssueStatus.NEW, event.id)
    assert issue.first_seen == issue.last_seen == event.timestamp
    assert (issue.fix_class, issue.culprit) == ("raised", "fixture_app.fetch_order")
    assert issue.cluster_id is not None and len(issue.cluster_id) == 16
    assert issue.title == "OrderNotFound: order o-4040 not found for jane.doe@example.com"


def test_group_falls_back_to_received_at_without_a_timestamp() -> None:
    _, issue = group(message("boom"))
    assert issue.first_seen == AT



def test_log_tracebacks_from_hosts_with_different_install_prefixes_group_together() -> None:
    from pipeline.sources.logs import parse_log_text

    def traceback_at(prefix: str) -> bytes:
        return (
            "Traceback (most recent call last):\n"
            f'  File "{prefix}/shop/api.py", line 40, in get_order_summary\n'
            "    price = orders.average_item_price(order)\n"
            f'  File "{prefix}/shop/orders.py", line 24, in average_item_price\n'
            "    return round(total / units, 2)\n"
            "ZeroDivisionError: division by zero\n"
        ).encode()

    one = parse_log_text(traceback_at("/srv/app"), "host-a.log")[0]
    other = parse_log_text(traceback_at("/opt/releases/42"), "host-b.log")[0]
    assert fingerprint(one) == fingerprint(other)


def test_configured_app_packages_decide_which_log_frames_count() -> None:
    from pipeline.sources.in_app import mark_in_app
    from pipeline.sources.logs import parse_log_text

    def traceback_from(entry: str, package_root: str) -> bytes:
        return (
            "Traceback (most recent call last):\n"
            f'  File "{entry}", line 9, in run\n'
            "    handler(payload)\n"
            f'  File "{package_root}/shop/orders.py", line 24, in average_item_price\n'
            "    return round(total / units, 2)\n"
            "ZeroDivisionError: division by zero\n"
        ).encode()

    # One host runs from a checkout, the other from a virtualenv; the entry scripts differ.
    checkout = parse_log_text(traceback_from("/srv/app/bin/serve.py", "/srv/app"), "a.log")[0]
    venv = parse_log_text(traceback_from("/opt/run.py", "/opt/venv/lib/python3.11/site-packages"), "b.log")[0]
    assert fingerprint(checkout) != fingerprint(venv)  # the guess: scripts in, site-packages out
    marked = [mark_in_app(e, {"shop"}) for e in (checkout, venv)]
    assert fingerprint(marked[0]) == fingerprint(marked[1])
    assert [f.in_app for f in marked[1].primary.frames] == [False, True]  # type: ignore[union-attr]


def test_log_messages_group_by_their_template_not_their_arguments() -> None:
    from pipeline.sources.sentry import parse_event

    def message_event(event_id: str, sku: str) -> dict[str, object]:
        template = "stock reservation for %s timed out after %dms"
        return {"event_id": event_id, "platform": "python", "level": "error",
                "logentry": {"message": template, "params": [sku, 250], "formatted": template % (sku, 250)}}

    one = parse_event(message_event("a" * 32, "EGG-6"))
    other = parse_event(message_event("b" * 32, "BANANA"))
    assert one.message_template == "stock reservation for %s timed out after %dms"
    assert fingerprint(one) == fingerprint(other)


# --- the event's own fingerprint -------------------------------------------------------------------


def test_an_sdk_fingerprint_replaces_the_default_grouping() -> None:
    a = replace(crash(frame("view", "return order.customer.name")), client_fingerprint=("payments", "card-declined"))
    b = replace(crash(frame("other", "x = y")), client_fingerprint=("payments", "card-declined"))
    assert fingerprint(a) == fingerprint(b)
    assert components(a) == ["custom", "payments", "card-declined"]


def test_default_in_an_sdk_fingerprint_extends_the_default_grouping_and_variables_are_filled() -> None:
    site = crash(frame("view", "return order.customer.name"))
    a = replace(site, client_fingerprint=("{{ default }}", "{{ transaction }}"), tags={"transaction": "/orders"})
    b = replace(site, client_fingerprint=("{{default}}", "{{ transaction }}"), tags={"transaction": "/users"})
    assert fingerprint(a) != fingerprint(b)
    assert components(a)[:-1] == ["custom", *components(site)]
    assert components(a)[-1] == "/orders"
    typed = replace(site, client_fingerprint=("{{ error.type }}", "{{ function }}"))
    assert components(typed) == ["custom", "AttributeError", "view"]


# --- frames ------------------------------------------------------------------------------------------


def test_recursion_counts_a_repeated_frame_once_and_comments_do_not_count() -> None:
    once = crash(frame("walk", "return walk(node.child)"), frame("leaf", "return node.value  # None at the end"))
    deep = crash(*[frame("walk", "return walk(node.child)", lineno=9)] * 50, frame("leaf", "return node.value"))
    assert fingerprint(once) == fingerprint(deep)


def test_the_entry_script_run_as_main_does_not_count() -> None:
    leaf = frame("customer_name", "return customer.name")
    via_script = crash(frame("<module>", "main()", module="__main__"), frame("main", "run(order)", module="__main__"), leaf)
    assert fingerprint(via_script) == fingerprint(crash(leaf))


def _log_frame(path: str, function: str, line: str) -> Frame:
    return Frame(function=function, filename=path, abs_path=path, lineno=3, context_line=line)


def test_a_script_in_a_folder_above_the_package_it_calls_is_a_launcher_and_package_code_is_not() -> None:
    leaf = _log_frame("/srv/app/shop/orders.py", "total", "return a / b")
    launched = crash(_log_frame("/srv/app/worker.py", "run", "handler(job)"), leaf)
    alone = crash(leaf)
    assert fingerprint(launched) == fingerprint(alone)
    # A caller inside the package is part of the call path, not a launcher.
    inside = crash(_log_frame("/srv/app/shop/api/views.py", "summary", "total(order)"), leaf)
    assert fingerprint(inside) != fingerprint(alone)
    assert without_launchers(list(inside.exceptions[0].frames)) == list(inside.exceptions[0].frames)


def test_a_script_running_a_package_installed_in_a_virtualenv_is_a_launcher() -> None:
    site = "/opt/venv/lib/python3.11/site-packages/shop/orders.py"
    installed = replace(_log_frame(site, "total", "return a / b"), in_app=True)
    launched = crash(_log_frame("/opt/bin-scripts/worker.py", "run", "handler(job)"), installed)
    assert fingerprint(launched) == fingerprint(crash(installed))


def test_only_system_frames_count_when_no_frame_is_in_app() -> None:
    a = crash(frame("get", "return self._data[key]", module="lib.cache", in_app=False),
              frame("_lookup", "raise KeyError(key)", module="lib.cache", in_app=False))
    assert [c.split("|")[1] for c in components(a) if c.startswith("frame:")] == ["get", "_lookup"]


# --- clusters ----------------------------------------------------------------------------------------


def test_issues_with_one_crash_site_share_a_cluster_whatever_their_outer_frames_and_messages() -> None:
    leaf = frame("unit_price", "return round(price / size, 4)", module="grocer.pricing")
    checkout = crash(frame("checkout", "total = cart_total(cart)", module="grocer.cart"), leaf,
                     exc_type="ZeroDivisionError", value="float division by zero")
    labels = crash(frame("shelf_labels", "labels.append(label(line))", module="grocer.reports"), leaf,
                   exc_type="ZeroDivisionError", value="division by zero")
    assert fingerprint(checkout) != fingerprint(labels)
    assert cluster_id(checkout) == cluster_id(labels)
    assert crash_site(checkout) == "ZeroDivisionError at pricing.unit_price: return round(price / size, 4)"


def test_another_line_of_the_same_function_is_another_cluster() -> None:
    a = crash(frame("shipping_label", "address = order['address']"), exc_type="KeyError", value="'address'")
    b = crash(frame("shipping_label", "country = NAMES[address['country']]"), exc_type="KeyError", value="'XK'")
    assert cluster_id(a) != cluster_id(b)


def test_a_wrapper_raised_from_its_cause_is_clustered_with_the_cause() -> None:
    cause_site = frame("display_name", 'nickname = profile["nickname"]', module="shop.users")
    cause = ExceptionInfo(type="KeyError", value="'nickname'", frames=(cause_site,))
    wrapper = ExceptionInfo(type="DigestError", value="profile u-3 is incomplete", module="shop.jobs", frames=(
        frame("digest_line", 'raise DigestError(f"profile {pid} is incomplete") from exc', module="shop.jobs"),))
    wrapped = replace(crash(), exceptions=(cause, wrapper))
    direct = crash(frame("get_profile", "name = users.display_name(profile)", module="shop.api"), cause_site,
                   exc_type="KeyError", value="'nickname'")
    assert root_cause(wrapped) is cause
    assert cluster_id(wrapped) == cluster_id(direct)
    assert fingerprint(wrapped) != fingerprint(direct)


def test_an_exception_raised_while_handling_another_keeps_its_own_site() -> None:
    handled = ExceptionInfo(type="KeyError", value="'k'", frames=(frame("get", "return cache[k]"),))
    bug = ExceptionInfo(type="ZeroDivisionError", value="division by zero", frames=(frame("get", "return a / b"),))
    event = replace(crash(), exceptions=(handled, bug))
    assert root_cause(event) is bug


def test_message_events_are_clusters_of_their_own() -> None:
    assert cluster_id(message("payment failed")) != cluster_id(message("refund failed"))


# --- message templates -----------------------------------------------------------------------------


def test_messages_group_by_their_mined_template_and_near_misses_stay_apart() -> None:
    from pipeline.log_templates import Templates

    templates = Templates()

    def fp(text: str) -> str:
        return fingerprint(message(text), templates)

    low = fp("stock for EGG-6 below reorder level (4 < 10)")
    assert fp("stock for LIME-12 below reorder level (0 < 24)") == low
    assert fp("stock for LEEK below reorder level (1 < 3)") == low
    assert fp("stock for EGG-6 above reorder level (40 > 24)") != low
    assert fp("payment failed for order o-1001") != fp("refund failed for order o-1001")


def test_an_sdk_logging_template_and_the_lines_it_formats_share_a_template() -> None:
    from pipeline.log_templates import Templates

    templates = Templates()
    sdk = replace(message("stock reservation for EGG-6 timed out after 1500ms"),
                  message_template="stock reservation for %s timed out after %dms")
    line = message("stock reservation for WATER-24 timed out after 2250ms")
    assert fingerprint(sdk, templates) == fingerprint(line, templates)
