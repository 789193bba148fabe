"""A slotted str subclass (like Django's SafeString) round-trips when decoding with handle_readonly."""

import jsonpickle


class SafeData:
    __slots__ = ()


class SafeString(str, SafeData):
    __slots__ = ()


original = SafeString("test")
encoded = jsonpickle.encode(original)
restored = jsonpickle.decode(encoded, handle_readonly=True)
assert restored == original, restored
assert type(restored) is SafeString, type(restored)
