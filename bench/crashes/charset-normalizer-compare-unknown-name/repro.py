"""Equality with an unknown encoding name (here MySQL's 'utf8mb4') is simply False."""

from charset_normalizer import from_bytes

best = from_bytes(b"Hello, world. Plain text.").best()
assert best is not None
assert (best == "utf8mb4") is False
assert best == "ascii", best.encoding
