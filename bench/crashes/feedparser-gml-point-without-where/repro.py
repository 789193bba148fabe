"""A GML point directly inside an entry still becomes the entry's 'where' geometry."""

import feedparser

FEED = """<feed xmlns="http://www.w3.org/2005/Atom" xmlns:gml="http://www.opengis.net/gml">
  <entry>
    <gml:Point>
      <gml:pos>36.9382 31.1732</gml:pos>
    </gml:Point>
  </entry>
</feed>"""

parsed = feedparser.parse(FEED)
where = parsed.entries[0]["where"]
assert where["type"] == "Point", where
assert where["coordinates"] == (31.1732, 36.9382), where
