"""replace_entities() on scraped HTML with an absurdly large numeric entity raised OverflowError."""

from w3lib.html import replace_entities


def main() -> None:
    scraped = "Price&nbsp;&#163;10 &#99999999999999999999; off"
    text = replace_entities(scraped)
    # known entities are decoded; the impossible code point is an illegal
    # entity, which remove_illegal=True (the default) drops
    assert text == "Price\xa0\xa310  off", repr(text)
    kept = replace_entities("&#99999999999999999999;", remove_illegal=False)
    assert kept == "&#99999999999999999999;", repr(kept)


if __name__ == "__main__":
    main()
