"""A reStructuredText source handed over as a binary file object is decoded, then rendered."""

import io

from docutils.core import publish_file

source = io.BytesIO("Title\n=====\n\nHällo, Welt.\n".encode())
output = publish_file(
    source=source,
    destination=io.BytesIO(),
    writer="pseudoxml",
    settings_overrides={"_disable_config": True},
)
text = output.decode("utf-8") if isinstance(output, bytes) else output
assert "<title>" in text and "Title" in text, text
assert "Hällo, Welt." in text, text
