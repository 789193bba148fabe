"""An opt-in sentry-sdk integration: in-app objects in frame locals arrive rebuildable.

    import sentry_sdk
    from pipeline.sdk_objects import InAppObjectsIntegration

    sentry_sdk.init(dsn=..., include_local_variables=True, in_app_include=["myapp"],
                    integrations=[InAppObjectsIntegration()])

By default sentry-sdk sends an object local (a method's `self`, an object argument) as its repr,
`<myapp.models.Cart object at 0x7f...>`, from which nothing can be rebuilt, so autofix cannot replay
the frame. With this integration an instance of a class from the app's own packages (the
integration's `packages`, else the client's `in_app_include`) is sent as a bounded description of
its state instead, made of the same literal reprs the SDK sends for other locals:

    {"__autofix__": "object", "class": "myapp.models:Cart", "id": 0,
     "attrs": {"items": ["'apple'"], "owner": {"__autofix__": "ref", "id": 0}}, "slots": {}}

`attrs` is the instance `__dict__`, `slots` the `__slots__` that are set; nested in-app objects are
described the same way up to `max_depth`, a cycle back to an object being described is a `ref` to
its `id`, tuples and sets are tagged (`{"__autofix__": "tuple", "items": [...]}`), dicts with string
keys stay JSON objects. Anything else keeps the SDK's plain repr, and whatever does not fit the
bounds is replaced by a `<... not sent ...>` text: neither is a literal, so autofix refuses to
rebuild such an object and says which attribute stopped it. No app code runs: attributes are read
with `object.__getattribute__` and the slot descriptors, never through `__getattr__` or properties.

It hooks `sentry_sdk.serializer.add_global_repr_processor` (the SDK's documented extension point for
how values in databags such as frame variables are serialised) once per process, and acts only
while the current client has the integration enabled. The module depends on nothing but sentry-sdk
and the standard library, so an app can import it without autofix's other dependencies. Values are
still scrubbed by autofix on arrival (an attribute named `password` is filtered like any local).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sentry_sdk
from sentry_sdk.integrations import Integration
from sentry_sdk.serializer import add_global_repr_processor
from sentry_sdk.utils import safe_repr

TAG = "__autofix__"
_LEAF_TYPES = (type(None), bool, int, float, complex, str, bytes)
_PLAIN = frozenset((*_LEAF_TYPES, list, dict, tuple, set, frozenset))


class InAppObjectsIntegration(Integration):
    """Describes instances of in-app classes in frame locals so that autofix can rebuild them."""

    identifier = "autofix_in_app_objects"

    def __init__(self, packages: Iterable[str] | None = None, max_depth: int = 3, max_items: int = 20,
                 max_attrs: int = 40, max_string: int = 2048, max_nodes: int = 400) -> None:
        self.packages = tuple(packages) if packages is not None else None
        self.max_depth = max_depth  # in-app objects nested inside one another
        self.max_items = max_items  # items of a list, tuple, set or dict
        self.max_attrs = max_attrs  # attributes of one object
        self.max_string = max_string  # characters of one repr
        self.max_nodes = max_nodes  # values in one local's whole description
        self._include: tuple[str, ...] = ()
        self._exclude: tuple[str, ...] = ()

    @staticmethod
    def setup_once() -> None:
        global _installed
        if not _installed:
            add_global_repr_processor(_processor)
            _installed = True

    def configure(self, options: Mapping[str, Any]) -> InAppObjectsIntegration:
        """Read the client's in-app lists (the SDK calls setup_once_with_options for the first client
        only, so the options are read each time a value is described)."""
        self._include = self.packages if self.packages is not None else tuple(options.get("in_app_include") or ())
        self._exclude = tuple(options.get("in_app_exclude") or ())
        return self

    def in_app(self, cls: type) -> bool:
        module = getattr(cls, "__module__", None)
        if not isinstance(module, str) or "<locals>" in getattr(cls, "__qualname__", "<locals>"):
            return False

        def under(prefixes: tuple[str, ...]) -> bool:
            return any(module == p or module.startswith(p + ".") for p in prefixes)

        return under(self._include) and not under(self._exclude)


_installed = False


def _processor(value: Any, hints: Mapping[str, Any]) -> Any:
    """The SDK's repr processor hook: a description for in-app objects, NotImplemented for the rest."""
    if type(value) in _PLAIN:
        return NotImplemented  # the common case, decided without asking the client
    client = sentry_sdk.get_client()
    integration = client.get_integration(InAppObjectsIntegration)
    if integration is None or isinstance(value, _LEAF_TYPES):
        return NotImplemented
    if not integration.configure(client.options).in_app(type(value)):
        return NotImplemented
    try:
        return _Describer(integration).node(value, depth=0)
    except Exception:  # noqa: BLE001 - never break the SDK's serialisation: fall back to its repr
        return NotImplemented


class _Describer:
    """One local's description: shared bounds, object ids and the chain of objects being described."""

    def __init__(self, config: InAppObjectsIntegration) -> None:
        self.config = config
        self.ids: dict[int, int] = {}  # id(obj) -> its description's id, while it is being described
        self.next_id = 0
        self.nodes = 0

    def node(self, value: Any, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > self.config.max_nodes:
            return "<not sent: the description reached its size limit>"
        if type(value) in _LEAF_TYPES:
            return self.leaf(value)
        if id(value) in self.ids:
            return {TAG: "ref", "id": self.ids[id(value)]}
        if self.config.in_app(type(value)):
            # An in-app str or int subclass holds its value outside __dict__: left as its repr.
            if depth >= self.config.max_depth or isinstance(value, _LEAF_TYPES):
                return self.text(safe_repr(value))
            return self.obj(value, depth)
        if type(value) is list:
            return self.items(value, depth, lambda items: items)
        if type(value) in (tuple, set, frozenset):
            kind = type(value).__name__
            return self.items(value, depth, lambda items: {TAG: kind, "items": items})
        if type(value) is dict:
            if not all(isinstance(k, str) for k in value) or TAG in value:
                return self.text(safe_repr(value))
            if len(value) > self.config.max_items:
                return f"<dict of {len(value)} items: not sent>"
            return self.nested(value, lambda: {k: self.node(v, depth) for k, v in value.items()})
        return self.text(safe_repr(value))

    def leaf(self, value: Any) -> str:
        try:
            text = repr(value)
        except ValueError:  # an int past sys.get_int_max_str_digits()
            return f"<{type(value).__name__} too large: not sent>"
        return self.text(text)

    def text(self, text: str) -> str:
        if len(text) > self.config.max_string:
            return f"<{len(text)} characters: not sent>"
        return text

    def items(self, value: Any, depth: int, wrap: Any) -> Any:
        if len(value) > self.config.max_items:
            return f"<{type(value).__name__} of {len(value)} items: not sent>"
        if isinstance(value, (set, frozenset)):
            try:
                ordered = sorted(value)
            except TypeError:
                ordered = list(value)
        else:
            ordered = list(value)
        return self.nested(value, lambda: wrap([self.node(v, depth) for v in ordered]))

    def nested(self, value: Any, build: Any) -> Any:
        """Containers join the chain too: a list holding itself is a cycle like any other."""
        self.ids[id(value)] = -1  # a container has no id to refer to: a ref to -1 is never rebuilt
        try:
            return build()
        finally:
            del self.ids[id(value)]

    def obj(self, value: Any, depth: int) -> dict[str, Any]:
        cls = type(value)
        own = self.next_id
        self.next_id += 1
        self.ids[id(value)] = own
        try:
            state = _state(value)
            slots = _slot_values(value)
            if len(state) + len(slots) > self.config.max_attrs:
                return {TAG: "object", "class": _qualified(cls), "id": own,
                        "truncated": f"<{len(state) + len(slots)} attributes: not sent>"}
            out: dict[str, Any] = {
                TAG: "object", "class": _qualified(cls), "id": own,
                "attrs": {str(k): self.node(v, depth + 1) for k, v in state.items()},
                "slots": {k: self.node(v, depth + 1) for k, v in slots.items()},
            }
            # A dict or list subclass keeps its contents outside __dict__.
            if isinstance(value, dict):
                out["dict"] = self.node(dict(value), depth + 1)
            elif isinstance(value, list):
                out["list"] = self.node(list(value), depth + 1)
            return out
        finally:
            del self.ids[id(value)]


def _qualified(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _state(value: Any) -> dict[Any, Any]:
    try:
        state = object.__getattribute__(value, "__dict__")
    except AttributeError:
        return {}
    return dict(state) if isinstance(state, dict) else {}


def _slot_values(value: Any) -> dict[str, Any]:
    """Every set slot of the class and its bases, read through the slot descriptors themselves."""
    found: dict[str, Any] = {}
    for klass in type(value).__mro__:
        declared = klass.__dict__.get("__slots__", ())
        for name in (declared,) if isinstance(declared, str) else declared:
            if name in ("__dict__", "__weakref__"):
                continue
            stored = name
            if name.startswith("__") and not name.endswith("__"):
                stored = f"_{klass.__name__.lstrip('_')}{name}"  # private names are mangled
            descriptor = klass.__dict__.get(stored)
            if descriptor is None or not hasattr(descriptor, "__get__") or stored in found:
                continue
            try:
                found[stored] = descriptor.__get__(value, type(value))
            except AttributeError:
                continue  # declared but never set: the rebuilt object leaves it unset too
    return found
