"""An empty payload is a valid utf_8 match, and it uses no multi-byte characters."""

from charset_normalizer import from_bytes

best = from_bytes(b"").best()
assert best is not None
assert best.encoding == "utf_8", best.encoding
usage = best.multi_byte_usage
assert usage == 0.0, usage
