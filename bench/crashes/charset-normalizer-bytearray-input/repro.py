"""from_bytes is documented to take bytes or bytearray; a bytearray payload is detected like bytes."""

from charset_normalizer import from_bytes

text = "Bonjour, ceci est un texte en français."
best = from_bytes(bytearray(text.encode("utf-8"))).best()
assert best is not None
assert best.encoding == "utf_8", best.encoding
assert str(best) == text, str(best)
