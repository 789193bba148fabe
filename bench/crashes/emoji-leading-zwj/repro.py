"""A stray zero width joiner at the start of the text is kept as a plain character."""

import emoji

text = "\u200dPython is fun \U0001f44d"
result = emoji.demojize(text)
assert result == "\u200dPython is fun :thumbs_up:", repr(result)
