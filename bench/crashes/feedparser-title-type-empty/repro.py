"""An empty type attribute on an entry title leaves the title text as it is."""

import feedparser

FEED = """<feed xmlns="http://www.w3.org/2005/Atom">
<entry>
  <title type="">evil</title>
</entry>
</feed>"""

parsed = feedparser.parse(FEED)
assert parsed.entries[0]["title"] == "evil", parsed.entries[0]
