"""A garbage charset declaration is ignored; detection falls back to the bytes themselves."""

import chardet

page = b'<html><head><meta charset="\x00utf-8"></head><body>hello</body></html>'
result = chardet.detect(page)
assert result["encoding"] == "ascii", result
